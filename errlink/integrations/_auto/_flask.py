"""Flask without the extension: its `got_request_exception` signal, for every app."""

from __future__ import annotations

from typing import Any

from flask import got_request_exception, has_request_context
from flask import request as current_request
from werkzeug.exceptions import HTTPException

from .._http_errors import DEFAULT_CAPTURE_STATUS_CODES, is_reported
from .._sdk import INTERNAL, current_client, logger, new_scope
from .._wsgi import environ_trace
from ..flask import current_request_fields, has_extension
from . import Undo


def hook() -> Undo:
    got_request_exception.connect(_on_exception, weak=False)  # no sender: every app
    return lambda: got_request_exception.disconnect(_on_exception)


def _on_exception(sender: Any, exception: BaseException | None = None, **_: Any) -> None:
    try:
        _report(sender, exception)
    except Exception:
        logger.warning("errlink: could not report a Flask error", exc_info=True, extra=INTERNAL)


def _report(app: Any, exception: BaseException | None) -> None:
    if exception is None or has_extension(app):
        return  # an app with the extension: it reports its own errors, with its settings
    status = exception.code if isinstance(exception, HTTPException) else None
    if not is_reported(status, DEFAULT_CAPTURE_STATUS_CODES):
        return
    core = current_client()
    if core is None or not core.enabled:
        return
    fields = current_request_fields(app, core.options)
    with new_scope() as scope:
        # No extension scope: the report still continues the request's incoming trace.
        if scope.trace is None and has_request_context():
            scope.trace = environ_trace(current_request.environ)
        core.capture_exception(exception, handled=False, mechanism="flask", **fields)
