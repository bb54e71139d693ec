"""Quart without the extension: its signals, for every app.

Errors of handlers and hooks (``got_request_exception``, ``got_websocket_exception``) are
reported with the request or WebSocket and the endpoint as transaction; errors of background
tasks and of ``before_serving``/``after_serving`` functions without one. Apps whose extension
has a client are left to it. The client is `errlink.init()`'s: capturing never waits, so it is
called on Quart's loop directly.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from quart import Quart, Request
from quart.signals import (
    got_background_exception,
    got_request_exception,
    got_serving_exception,
    got_websocket_exception,
)
from werkzeug.exceptions import HTTPException

from .._async_web import content_length
from .._http_errors import DEFAULT_CAPTURE_STATUS_CODES, is_reported
from .._lazy import build_request
from .._sdk import INTERNAL, current_client, logger, new_scope
from ..asgi import AsgiConnection, Message, Scope, asgi_trace, request_data
from ..quart import Errlink
from ..quart import _current_connection as current_connection
from . import Undo

MECHANISM = "quart"
# How long a report waits for a request body that has not fully arrived (as the extension).
_BODY_WAIT = 0.1


def hook() -> Undo:
    receivers = [
        (got_request_exception, _on_exception),
        (got_websocket_exception, _on_exception),
        (got_background_exception, _on_exception_outside_requests),
        (got_serving_exception, _on_exception_outside_requests),
    ]
    for signal, receiver in receivers:
        signal.connect(receiver, weak=False)  # no sender: every app

    def undo() -> None:
        for signal, receiver in receivers:
            signal.disconnect(receiver)

    return undo


async def _on_exception(sender: Any, exception: BaseException | None = None, **_: Any) -> None:
    try:
        if exception is None or _has_extension(sender):
            return
        status = exception.code if isinstance(exception, HTTPException) else None
        if not is_reported(status, DEFAULT_CAPTURE_STATUS_CODES):
            return
        core = current_client()
        if core is None or not core.enabled:
            return
        fields = await current_request_fields(core.options.max_request_body_bytes)
        current = current_connection()
        with new_scope() as scope:
            # No extension scope: the report still continues the request's incoming trace.
            if scope.trace is None and current is not None:
                scope.trace = asgi_trace(cast(Scope, current.scope))
            core.capture_exception(exception, handled=False, mechanism=MECHANISM, **fields)
    except Exception:
        logger.warning("errlink: could not report a Quart error", exc_info=True, extra=INTERNAL)


async def _on_exception_outside_requests(
    sender: Any, exception: BaseException | None = None, **_: Any
) -> None:
    core = current_client()
    if exception is None or _has_extension(sender) or core is None:
        return
    core.capture_exception(exception, handled=False, mechanism=MECHANISM)


def _has_extension(app: Any) -> bool:
    """Whether `app` has the extension with a client (one without a DSN reports nothing)."""
    extension = Errlink.of(app) if isinstance(app, Quart) else None
    return extension is not None and extension.active_core() is not None


async def current_request_fields(max_bytes: int | None) -> dict[str, Any]:
    """`request` (with the body, if it arrived within a moment) and `transaction` (the endpoint)
    of the request or WebSocket Quart is handling."""
    current = current_connection()
    if current is None:
        return {}
    connection = AsgiConnection(cast(Scope, current.scope), max_bytes)
    if isinstance(current, Request):
        await _read_body(current, connection)
    fields: dict[str, Any] = {"request": build_request(request_data, connection, max_bytes)}
    rule = current.url_rule
    if rule is not None and rule.endpoint:
        fields["transaction"] = rule.endpoint
    return fields


async def _read_body(request: Request, connection: AsgiConnection) -> None:
    """Hand `connection` the body as Quart received it, unless it is over the size limit."""
    max_bytes = connection.max_bytes
    declared = content_length(connection.header(b"content-length"))
    if max_bytes == 0 or (max_bytes is not None and declared is not None and declared > max_bytes):
        return
    try:
        body = await asyncio.wait_for(request.get_data(cache=True, as_text=False), _BODY_WAIT)
    except Exception:  # not there in time, or too large for Quart
        return

    async def whole_body() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    await connection.read_rest(whole_body)
