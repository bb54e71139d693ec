"""What the async web integrations (Sanic, Tornado, aiohttp.web) share.

Each of them runs an `AsyncClient` on the server's own loop and gives every request a fresh scope
bound to that client (`request_scope`). A request pays for this with two context
variable writes and one small `LazyRequest` (`_lazy`): the protocol's `request` dict is only built
if an event is captured while the request runs. On the unhandled-error path the integration builds
it eagerly instead (it may add what only that path can read, such as an aiohttp body), and passes
the route as `transaction`.

Which exceptions are reported is decided the same way everywhere, by `capture_status_codes`
(see `_http_errors`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from ._http_errors import capture_status_codes_option
from ._sdk import AsyncClient, ClientCore, ClientOptions, Dsn, Options, build_options


def qualified_name(obj: object) -> str | None:
    """``module.QualName`` of a function or class, the transaction of a route without a name."""
    name = getattr(obj, "__qualname__", None)
    if not isinstance(name, str):
        return None
    module = getattr(obj, "__module__", None)
    return f"{module}.{name}" if isinstance(module, str) else name


def content_length(value: object) -> int | None:
    if value is None:
        return None
    try:
        length = int(str(value))
    except ValueError:
        return None
    return length if length >= 0 else None


def excluding_library_frames(options: ClientOptions, modules: tuple[str, ...]) -> ClientOptions:
    """`options` with `modules` added to `in_app_exclude`, unless the user's rules name them.

    Frames of the framework and of errlink's own hooks are library code wherever the packages
    are installed from (an editable install is outside site-packages). Sanic also compiles
    `Sanic.handle_request` anew under the file name "handle_request", which no path rule can
    tell from application code; its module can.
    """
    include, exclude = options.get("in_app_include", ()), options.get("in_app_exclude", ())
    for rules in (include, exclude):
        if isinstance(rules, str) or not isinstance(rules, Iterable):
            return options  # invalid: option validation says so
    include, exclude = tuple(include), tuple(exclude)
    mentioned = [p for p in (*include, *exclude) if isinstance(p, str)]
    added = tuple(
        module
        for module in modules
        if not any(p == module or p.startswith(f"{module}.") for p in mentioned)
    )
    if not added:
        return options
    return {**options, "in_app_include": include, "in_app_exclude": (*exclude, *added)}


class AsyncWebIntegration:
    """The part of the Sanic, Tornado and aiohttp extension objects that is the same."""

    name: ClassVar[str]

    def __init__(
        self, dsn: str | Dsn | None, capture_status_codes: object, options: ClientOptions
    ) -> None:
        options = excluding_library_frames(options, (self.name, "errlink"))
        # Validated now, so a bad DSN or option fails where the app is set up, not at start-up.
        self.options: Options = build_options(dsn, options)
        # Read on every request; Options is frozen, so the property's answer never changes.
        self.max_request_body_bytes = self.options.max_request_body_bytes
        self.capture_status_codes = capture_status_codes_option(capture_status_codes)
        self._dsn = dsn
        self._client_options = options
        self.client: AsyncClient | None = None

    def new_client(self) -> AsyncClient:
        client = AsyncClient(self._dsn, **self._client_options)
        client.core.add_integration(self.name)
        return client

    def active_core(self) -> ClientCore | None:
        """The core of an enabled, open client: what a request binds (else it does nothing)."""
        client = self.client
        if client is None or not client.enabled:
            return None
        return client.core

    async def capture_unhandled(
        self, exc: BaseException, request: Mapping[str, Any] | None, transaction: str | None
    ) -> str | None:
        """Report an exception the framework is about to turn into an error response."""
        client = self.client
        if client is None or not client.enabled:
            return None
        return await client.capture_exception(
            exc, handled=False, mechanism=self.name, **_event_fields(request, transaction)
        )

    def capture_unhandled_now(
        self, exc: BaseException, request: Mapping[str, Any] | None, transaction: str | None
    ) -> str | None:
        """`capture_unhandled` for a synchronous hook running on the client's loop."""
        client = self.client
        if client is None or not client.enabled:
            return None
        return client.capture_exception_now(
            exc, handled=False, mechanism=self.name, **_event_fields(request, transaction)
        )


def _event_fields(request: Mapping[str, Any] | None, transaction: str | None) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if request:
        fields["request"] = request
    if transaction:
        fields["transaction"] = transaction
    return fields
