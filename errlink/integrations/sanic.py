"""Sanic integration: report unhandled errors with the request they happened in.

Usage::

    from errlink.integrations.sanic import Errlink

    app = Sanic("shop")
    Errlink(app, dsn="https://key@sentry.example.com/1", environment="prod")
    # or: errlink_ext = Errlink(dsn=...); errlink_ext.init_app(app)

Each worker process creates its `errlink.AsyncClient` on its own loop when its server starts
(a ``before_server_start`` listener) and flushes and closes it when the server has stopped
(``after_server_stop``). The rest is Sanic's own hooks:

- a request middleware, run before any other: the request gets a fresh scope bound to the
  client, its `transaction` named after the route (``"shop.orders.show"``), with its `request`
  data built only if something is captured;
- signals ``http.lifecycle.exception`` (handlers, request middleware, routing) and
  ``websocket.handler.exception``: the exception is reported, then Sanic's error handling goes
  on unchanged;
- ``server.exception.report``: errors Sanic reports from elsewhere, such as background tasks
  started with `app.add_task`.

Sanic's own exceptions with a status (`NotFound`, `BadRequest`, `SanicException(status_code=...)`)
are reported when that status is in `capture_status_codes` (default 500-599).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ._async_web import AsyncWebIntegration, content_length
from ._framework import require
from ._http_errors import DEFAULT_CAPTURE_STATUS_CODES, is_reported
from ._lazy import build_request, framework_request, scope_is_for
from ._request import body_data, request_interface
from ._sdk import (
    INTERNAL,
    ClientOptions,
    Dsn,
    current_scope,
    enter_own_scope,
    isolated_scope,
    logger,
    request_ended,
)

require("sanic", distribution="sanic", extra="sanic", minimum=(23, 6))

from sanic import Request, Sanic  # noqa: E402
from sanic.exceptions import SanicException  # noqa: E402

if TYPE_CHECKING:
    from typing_extensions import Unpack


__all__ = ["Errlink"]


class Errlink(AsyncWebIntegration):
    """The Sanic extension: one per app; the client itself is created per worker at start-up.

    Takes `dsn` and every client option (`environment=`, `send_default_pii=`,
    `max_request_body_size=`, ...), validated here, plus `capture_status_codes`: the statuses
    whose `SanicException` is reported (default ``range(500, 600)``; add 404 to see `NotFound`).
    `client` is the worker's `AsyncClient` while its server runs.
    """

    name = "sanic"

    def __init__(
        self,
        app: Sanic[Any, Any] | None = None,
        dsn: str | Dsn | None = None,
        *,
        capture_status_codes: Iterable[int] = DEFAULT_CAPTURE_STATUS_CODES,
        **options: Unpack[ClientOptions],
    ) -> None:
        super().__init__(dsn, capture_status_codes, options)
        self.app: Sanic[Any, Any] | None = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Sanic[Any, Any]) -> None:
        if self.app is not None:
            raise RuntimeError(f"this Errlink extension already serves the app {self.app.name!r}")
        self.app = app
        app.register_listener(self._start_client, "before_server_start")
        app.register_listener(self._close_client, "after_server_stop")
        app.register_middleware(self._on_request, "request", priority=_BEFORE_OTHER_MIDDLEWARE)
        if self.options.tracks_sessions:
            # Response middleware runs for error responses too: the request's end.
            app.register_middleware(self._on_response, "response")
        app.add_signal(self._on_exception, "http.lifecycle.exception")
        app.add_signal(self._on_websocket_exception, "websocket.handler.exception")
        app.add_signal(self._on_reported, "server.exception.report")

    # -- listeners --------------------------------------------------------------------------------

    async def _start_client(self, app: Sanic[Any, Any]) -> None:
        self.client = self.new_client()

    async def _close_client(self, app: Sanic[Any, Any]) -> None:
        client = self.client
        if client is not None:
            await client.aclose()

    # -- the per-request middleware and the signals: nothing may escape from them -------------

    def _on_request(self, request: Request) -> None:
        # A middleware rather than a signal: Sanic drops the dispatch of signals nobody listens
        # to from its request path, and a dispatch costs several times a middleware call.
        core = self.active_core()
        if core is None:
            return
        try:
            route = request.route
            # One connection task serves its keep-alive requests in turn, so each request
            # starts from a new scope rather than undoing the previous one.
            name = route.name if route is not None else None
            own = framework_request(request, _request_data, self.max_request_body_bytes, name)
            enter_own_scope(own, core)  # nothing to undo: see above
        except Exception:
            logger.warning(
                "errlink: could not set up a request's scope", exc_info=True, extra=INTERNAL
            )

    def _on_response(self, request: Request, response: Any) -> None:
        # As installed: folding in the breadcrumbs pushed since would copy the scope for nothing.
        request_ended(self.active_core(), current_scope())

    async def _on_exception(self, request: Request, exception: BaseException, **_: Any) -> None:
        await self._report(request, exception)

    async def _on_websocket_exception(
        self, request: Request, exception: BaseException, **_: Any
    ) -> None:
        await self._report(request, exception)

    async def _on_reported(self, exception: BaseException, **_: Any) -> None:
        """Errors Sanic reports from outside request handling: background tasks, mostly."""
        caught_in = _catching_function(exception)
        if caught_in in _REQUEST_HANDLING:
            return  # Sanic reports it through ``http.lifecycle.exception`` too, with the request
        if caught_in == _TASK_RUNNER:
            # The task's own context: a task a request started carries that request's scope.
            await self._report(None, exception)
            return
        with isolated_scope():  # whatever context this runs in, it is not the error's
            await self._report(None, exception)

    async def _report(self, request: Request | None, exception: BaseException) -> None:
        try:
            status = exception.status_code if isinstance(exception, SanicException) else None
            if not is_reported(status, self.capture_status_codes):
                return
            if request is None:
                await self.capture_unhandled(exception, None, None)
                return
            data = build_request(_request_data, request, self.max_request_body_bytes)
            route = request.route
            transaction = route.name if route is not None else None
            if scope_is_for(request):
                await self.capture_unhandled(exception, data, transaction)
                return
            # It failed before our middleware ran (routing, say): the context may still hold
            # the scope of the previous request on this connection.
            with isolated_scope():
                await self.capture_unhandled(exception, data, transaction)
        except Exception:
            logger.warning("errlink: could not report a Sanic error", exc_info=True, extra=INTERNAL)


# Sanic runs middleware with a higher priority first: the scope must exist before any other runs.
_BEFORE_OTHER_MIDDLEWARE = 1_000_000
_REQUEST_HANDLING = frozenset({"handle_request", "handle_exception"})
_TASK_RUNNER = "do"  # the wrapper `app.add_task` runs a task in (`Sanic._prep_task`)


def _catching_function(exception: BaseException) -> str | None:
    """Name of the sanic.app function that caught `exception` (its traceback's first frame)."""
    tb = exception.__traceback__
    frame = tb.tb_frame if tb is not None else None
    if frame is None or frame.f_globals.get("__name__") != "sanic.app":
        return None
    name: str = frame.f_code.co_name
    return name


def _request_data(request: Request, max_bytes: int | None) -> dict[str, Any]:
    headers = request.headers
    content_type = headers.get("content-type")
    return request_interface(
        url=f"{request.scheme}://{request.host}{request.path}",
        method=request.method,
        query_string=request.query_string,
        headers=headers.items(),
        cookies=headers.get("cookie"),
        data=body_data(
            request.body,
            content_type=content_type,
            content_length=content_length(headers.get("content-length")),
            max_bytes=max_bytes,
        ),
        remote_addr=request.client_ip,
    )
