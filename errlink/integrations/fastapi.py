"""FastAPI integration: the Starlette one (`errlink.integrations.starlette`), for a FastAPI app.

Usage::

    from fastapi import FastAPI
    from errlink.integrations.fastapi import Errlink

    app = FastAPI()
    Errlink(app, dsn="https://key@sentry.example.com/1", environment="prod")

What FastAPI adds: a request that fails validation (`RequestValidationError`, answered with a
422) counts as status 422 for `capture_status_codes`, so it is not reported by default. Errors
raised in dependencies and in `BackgroundTasks` travel through the middleware stack and are
reported like any other. Starlette's frames are library code, as FastAPI's are.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, ClassVar

from ._async_web import excluding_library_frames
from ._framework import require
from ._http_errors import DEFAULT_CAPTURE_STATUS_CODES
from ._sdk import ClientOptions, Dsn

# 0.110.1: the first FastAPI on Starlette 0.37, the Starlette integration's minimum.
require("fastapi", distribution="fastapi", extra="fastapi", minimum=(0, 110, 1))

from fastapi import FastAPI  # noqa: E402
from fastapi.exceptions import RequestValidationError  # noqa: E402
from starlette.applications import Starlette  # noqa: E402

from . import starlette  # noqa: E402

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["Errlink"]

# The status FastAPI answers a request that fails validation with.
VALIDATION_ERROR_STATUS = 422


class Errlink(starlette.Errlink):
    """The FastAPI extension, one per application: ``Errlink(app, dsn=..., **client options)``.

    Takes the options of the Starlette extension: `capture_status_codes` (default
    ``range(500, 600)``), `transaction_style` (``"url"`` or ``"endpoint"``) and every client
    option. `client` is the `AsyncClient` while the app runs.
    """

    name = "fastapi"
    app_class: ClassVar[type[Starlette]] = FastAPI

    def __init__(
        self,
        app: FastAPI,
        dsn: str | Dsn | None = None,
        *,
        capture_status_codes: Iterable[int] = DEFAULT_CAPTURE_STATUS_CODES,
        transaction_style: starlette.TransactionStyle = "url",
        **options: Unpack[ClientOptions],
    ) -> None:
        super().__init__(
            app,
            dsn,
            capture_status_codes=capture_status_codes,
            transaction_style=transaction_style,
            **excluding_library_frames(options, ("starlette",)),
        )

    def status_of(self, exc: Exception) -> int | None:
        if isinstance(exc, RequestValidationError):
            return VALIDATION_ERROR_STATUS
        return super().status_of(exc)
