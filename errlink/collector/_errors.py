"""The one way a handler refuses a request: raise Rejected, the app turns it into JSON."""

from __future__ import annotations

from collections.abc import Mapping


class Rejected(Exception):
    """The request is refused with an HTTP status and a reason shown to the client as `detail`."""

    def __init__(
        self, status: int, detail: str, *, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail
        self.headers = dict(headers or {})
