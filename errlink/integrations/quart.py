"""Quart integration: report unhandled errors with the request they happened in.

Usage::

    from errlink.integrations.quart import Errlink

    app = Quart(__name__)
    Errlink(app, dsn="https://key@sentry.example.com/1", environment="prod")
    # or: errlink_ext = Errlink(dsn=...); errlink_ext.init_app(app)

`app.asgi_app` is wrapped with the generic ASGI handling (`errlink.integrations.asgi`): the
`errlink.AsyncClient` is created on the server's loop when the lifespan starts and flushed and
closed when it shuts down, and each HTTP request and WebSocket gets a fresh scope bound to it.
Quart runs each handler in a task created inside that scope, so the handler, the tasks it starts
and `app.add_background_task` inherit it. Quart turns errors into responses itself; errlink
reports them from its signals:

- ``got_request_exception`` and ``got_websocket_exception``: errors of handlers and hooks;
- ``got_background_exception``: errors of `app.add_background_task` tasks;
- ``got_serving_exception``: errors of ``before_serving`` / ``after_serving`` functions.

werkzeug's `HTTPException` (`abort(503)`, routing errors) goes to `app.handle_http_exception`
without a signal: the app's method is wrapped to report those whose status is in
`capture_status_codes` (default 500-599).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal, cast

from ._async_web import content_length
from ._framework import require
from ._http_errors import DEFAULT_CAPTURE_STATUS_CODES, is_reported
from ._sdk import INTERNAL, ClientOptions, Dsn, isolated_scope, logger
from .asgi import (
    BODY_WAIT,
    ASGIApp,
    AsgiConnection,
    AsgiIntegration,
    Scope,
    asgi_hop,
    connection_for,
)

require("quart", distribution="quart", extra="quart", minimum=(0, 19))

from quart import Quart, Request, Websocket, has_request_context, has_websocket_context  # noqa: E402
from quart.globals import request_ctx, websocket_ctx  # noqa: E402
from quart.signals import (  # noqa: E402
    got_background_exception,
    got_request_exception,
    got_serving_exception,
    got_websocket_exception,
)
from werkzeug.exceptions import HTTPException  # noqa: E402

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["Errlink"]

TransactionStyle = Literal["endpoint", "url"]

_EXTENSION_KEY = "errlink"


class Errlink(AsgiIntegration):
    """The Quart extension, one per app.

    Takes `dsn` and every client option (`environment=`, `send_default_pii=`,
    `max_request_body_size=`, ...), validated here, plus `capture_status_codes`: the statuses
    whose `HTTPException` is reported (default ``range(500, 600)``; add 404 to see unknown URLs),
    and `transaction_style`: ``"endpoint"`` (default, ``"orders.show"``) or ``"url"`` (the URL
    rule, ``"/orders/<int:order_id>"``). `client` is the `AsyncClient` while the app serves.
    """

    name = "quart"

    def __init__(
        self,
        app: Quart | None = None,
        dsn: str | Dsn | None = None,
        *,
        capture_status_codes: Iterable[int] = DEFAULT_CAPTURE_STATUS_CODES,
        transaction_style: TransactionStyle = "endpoint",
        **options: Unpack[ClientOptions],
    ) -> None:
        if transaction_style not in ("endpoint", "url"):
            raise ValueError(
                f"errlink: option 'transaction_style' must be 'endpoint' or 'url', "
                f"not {transaction_style!r}"
            )
        super().__init__(dsn, capture_status_codes=capture_status_codes, **options)
        self.transaction_style: TransactionStyle = transaction_style
        self.app: Quart | None = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Quart) -> None:
        """Wrap `app.asgi_app`, connect the signals and wrap `app.handle_http_exception`."""
        if self.app is not None:
            raise RuntimeError(f"this Errlink extension already serves the app {self.app.name!r}")
        if _EXTENSION_KEY in app.extensions:
            raise RuntimeError(f"errlink's Quart extension is already set up on {app.name!r}")
        self.app = app
        app.extensions[_EXTENSION_KEY] = self
        served = cast(ASGIApp, app.asgi_app)
        app.asgi_app = asgi_hop(served, self)  # type: ignore[method-assign,assignment]
        got_request_exception.connect(self._on_exception, app, weak=False)
        got_websocket_exception.connect(self._on_exception, app, weak=False)
        got_background_exception.connect(self._on_background_exception, app, weak=False)
        got_serving_exception.connect(self._on_serving_exception, app, weak=False)
        if self.capture_status_codes:
            self._hook_http_errors(app)

    @staticmethod
    def of(app: Quart) -> Errlink | None:
        """The extension set up for `app`, if any."""
        found = app.extensions.get(_EXTENSION_KEY)
        return found if isinstance(found, Errlink) else None

    # -- what the generic ASGI handling asks -------------------------------------------------------

    def should_report(self, exc: Exception) -> bool:
        """An exception escaping Quart (with ``PROPAGATE_EXCEPTIONS``, say); the client's dedupe
        drops it if a signal reported it already."""
        status = exc.code if isinstance(exc, HTTPException) else None
        return is_reported(status, self.capture_status_codes)

    def name_transaction(self, scope: Scope) -> str | None:
        """The endpoint, or the URL rule, Quart matched for the connection of `scope`."""
        current = _current_connection()
        if current is None or current.scope is not scope:
            return None  # outside Quart's context of that request
        rule = current.url_rule
        if rule is None:
            return None
        return rule.rule if self.transaction_style == "url" else rule.endpoint

    # -- Quart's signals and hooks: nothing may escape from them --------------------------------

    async def _on_exception(self, sender: Quart, exception: BaseException, **_: Any) -> None:
        if isinstance(exception, HTTPException) and not is_reported(
            exception.code, self.capture_status_codes
        ):
            return  # a trapped HTTP error: a response unless its status is listed
        await self._report_current(exception)

    async def _on_background_exception(
        self, sender: Quart, exception: BaseException, **_: Any
    ) -> None:
        # The task's context is its creator's: one started by a request carries its scope.
        await self._capture(exception)

    async def _on_serving_exception(
        self, sender: Quart, exception: BaseException, **_: Any
    ) -> None:
        with isolated_scope():
            await self._capture(exception)

    def _hook_http_errors(self, app: Quart) -> None:
        # Only called for HTTP exceptions: requests that raise nothing do not pay for it.
        original = app.handle_http_exception
        codes = self.capture_status_codes

        async def handle_http_exception(error: HTTPException) -> Any:
            if error.code in codes:
                await self._report_current(error)
            return await original(error)

        setattr(app, "handle_http_exception", handle_http_exception)  # noqa: B010

    async def _report_current(self, exception: BaseException) -> None:
        """Report `exception` with the request or WebSocket being handled."""
        try:
            current = _current_connection()
            if current is None:
                await self._capture(exception)
                return
            connection = self._connection_of(cast(Scope, current.scope))
            if isinstance(current, Request):
                await _body_arrived(current, connection)
        except Exception:
            logger.warning("errlink: could not report a Quart error", exc_info=True, extra=INTERNAL)
            return
        await self.report(exception, connection)

    def _connection_of(self, scope: Scope) -> AsgiConnection:
        """The connection the ASGI handling opened for `scope` (it holds the body read so far)."""
        connection = connection_for(scope)
        if connection is None:  # (not `or`: a connection is a mapping, its truth builds it)
            connection = AsgiConnection(scope, self.max_request_body_bytes)
        return connection

    async def _capture(self, exception: BaseException) -> None:
        try:
            await self.capture_unhandled(exception, None, None)
        except Exception:
            logger.warning("errlink: could not report a Quart error", exc_info=True, extra=INTERNAL)


def _current_connection() -> Request | Websocket | None:
    if has_request_context():
        return request_ctx.request
    if has_websocket_context():
        return websocket_ctx.websocket
    return None


async def _body_arrived(request: Request, connection: AsgiConnection) -> None:
    """Let Quart's receiver take in a body still on its way, briefly: errlink copies it as
    Quart reads it. A body over the size limit is described from its declared length instead."""
    max_bytes = connection.max_bytes
    if connection.body_copy().complete or max_bytes == 0:
        return
    declared = content_length(connection.header(b"content-length"))
    if max_bytes is not None and declared is not None and declared > max_bytes:
        return
    try:
        await asyncio.wait_for(_complete(request), BODY_WAIT)
    except Exception:  # not there in time, or too large for Quart
        return


async def _complete(request: Request) -> None:
    await request.body
