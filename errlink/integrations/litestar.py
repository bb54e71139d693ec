"""Litestar integration: report unhandled errors with the request they happened in.

Usage::

    from litestar import Litestar
    from errlink.integrations.litestar import ErrlinkPlugin

    app = Litestar(
        route_handlers=[...],
        plugins=[ErrlinkPlugin(dsn="https://key@sentry.example.com/1", environment="prod")],
    )

Litestar turns every exception into a response inside its own stack, so nothing escapes to an
outer ASGI middleware. The plugin uses Litestar's own mechanisms instead:

- a lifespan manager, placed first, creates the `errlink.AsyncClient` on the server's loop
  before any other start-up code runs (again at each start-up: a new client for each run of
  the app); an ``on_shutdown`` hook, placed last, flushes and closes it after every other
  shutdown hook ran. A server without a lifespan gets it at the first request;
- an app-level middleware, outermost, runs each HTTP request and WebSocket connection of a
  route in a fresh scope bound to the client (`AsgiIntegration.handle`): `errlink.capture_*`
  inside a handler carries the request, the transaction is the route's path template;
- an ``after_exception`` hook reports what Litestar is about to turn into an error response,
  including routing failures (which no route middleware sees). Errors that still escape the
  route (an exception after the response started, such as a failing `BackgroundTask`) are
  reported by the middleware.

`HTTPException`s (`NotFoundException`, `PermissionDeniedException`, ...) are reported when their
status is in `capture_status_codes` (default 500-599); a `WebSocketDisconnect` never is.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, cast

from ._async_web import qualified_name
from ._framework import require
from ._http_errors import DEFAULT_CAPTURE_STATUS_CODES, is_reported
from ._sdk import INTERNAL, ClientOptions, Dsn, isolated_scope, logger
from .asgi import (
    ASGIApp,
    AsgiConnection,
    AsgiIntegration,
    Receive,
    Scope,
    Send,
    connection_for,
)

require("litestar", distribution="litestar", extra="litestar", minimum=(2, 8))

from litestar import Litestar  # noqa: E402
from litestar.config.app import AppConfig  # noqa: E402
from litestar.exceptions import HTTPException, LitestarException, WebSocketDisconnect  # noqa: E402
from litestar.plugins import InitPluginProtocol  # noqa: E402

if TYPE_CHECKING:
    from litestar.types import Middleware
    from typing_extensions import Unpack

__all__ = ["ErrlinkPlugin"]

# Where the middleware leaves the connection's own `receive` for the after_exception hook, which
# reads the rest of a body the handler did not read.
_RECEIVE = "errlink.receive"


class ErrlinkPlugin(AsgiIntegration, InitPluginProtocol):
    """The Litestar plugin, one per application: ``Litestar(plugins=[ErrlinkPlugin(...)])``.

    Takes `dsn` and every client option (`environment=`, `send_default_pii=`,
    `max_request_body_size=`, ...), validated here, plus `capture_status_codes`: statuses whose
    `HTTPException` is reported (default ``range(500, 600)``; add 404 to see unknown URLs).
    `client` is the `AsyncClient` while the app runs.
    """

    name = "litestar"

    def __init__(
        self,
        dsn: str | Dsn | None = None,
        *,
        capture_status_codes: Iterable[int] = DEFAULT_CAPTURE_STATUS_CODES,
        **options: Unpack[ClientOptions],
    ) -> None:
        super().__init__(dsn, capture_status_codes=capture_status_codes, **options)
        self._configured = False

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        if self._configured:
            raise RuntimeError("this ErrlinkPlugin already serves another Litestar app")
        self._configured = True
        app_config.lifespan.insert(0, self._client_lifetime)
        # Litestar runs on_shutdown hooks in order, after every lifespan manager has exited.
        app_config.on_shutdown.append(self.aclose)
        # The first is the outermost; Litestar's types want its own (TypedDict) ASGI scopes.
        app_config.middleware.insert(0, cast("Middleware", self._middleware))
        app_config.after_exception.append(self._after_exception)
        return app_config

    @asynccontextmanager
    async def _client_lifetime(self, app: Litestar) -> AsyncIterator[None]:
        self.start(again=True)  # served again (a new `TestClient` block): a new client
        yield  # closed by the last on_shutdown hook, so that those hooks can still capture

    def _middleware(self, app: ASGIApp) -> ASGIApp:
        """Litestar's middleware factory (called with ``app=``): wraps each route's stack."""

        async def errlink_middleware(scope: Scope, receive: Receive, send: Send) -> None:
            scope[_RECEIVE] = receive
            await self.handle(app, scope, receive, send)

        return errlink_middleware

    async def _after_exception(self, exc: Exception, scope: Any) -> None:
        """Litestar's hook: `exc` is about to become an error response for `scope`."""
        try:
            if not self.should_report(exc):
                return
            connection = connection_for(scope)
            if connection is not None:
                await self.report(exc, connection, scope.get(_RECEIVE))
                return
            # Not inside the middleware's scope: routing failed, or the error was raised outside
            # the route (reported by the middleware if it passed through it: deduplicated).
            if self.core() is None:
                return
            with isolated_scope():
                await self.report(exc, AsgiConnection(scope, self.max_request_body_bytes))
        except Exception:  # Litestar's error response must go out whatever happens here
            logger.warning(
                "errlink: could not report a Litestar error", exc_info=True, extra=INTERNAL
            )

    def should_report(self, exc: Exception) -> bool:
        error = _original(exc)
        if isinstance(error, HTTPException):
            return is_reported(error.status_code, self.capture_status_codes)
        return not isinstance(error, WebSocketDisconnect)  # the client went away

    def name_transaction(self, scope: Scope) -> str | None:
        """The route's path template (``/orders/{order_id}``, with the prefixes of its routers),
        else (Litestar before 2.11) its handler's qualified name; None when no route matched."""
        template = scope.get("path_template")
        if isinstance(template, str) and template:
            return template
        handler = scope.get("route_handler")
        return qualified_name(getattr(handler, "fn", None)) if handler is not None else None

    async def report(
        self, exc: BaseException, connection: AsgiConnection, receive: Receive | None = None
    ) -> str | None:
        return await super().report(_original(exc), connection, receive)


def _original(exc: BaseException) -> BaseException:
    """The error itself, for the wrapper Litestar raises when a response had already started."""
    cause = exc.__cause__
    if type(exc) is LitestarException and isinstance(cause, Exception):
        return cause
    return exc
