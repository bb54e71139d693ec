"""Log records of the `logging` module forwarded as structured logs (`log_level` of the
logging integration), beside the events and breadcrumbs they may also become.

The record's ``%`` template and arguments become the log's template and parameters, its
``extra=`` fields its attributes, with where it was logged (logger, file, line, function).
"""

from __future__ import annotations

import logging
from typing import Any

from .binding import current_client
from .log_records import DEBUG, ERROR, FATAL, INFO, TRACE, WARN, Entry
from .scope import current_scope
from .structured_logs import capture_entry, logs_enabled
from .trace import resolve as resolve_trace

_PLAIN = (str, int, float, bool)


def level_index(levelno: int) -> int:
    for threshold, index in (
        (logging.CRITICAL, FATAL),
        (logging.ERROR, ERROR),
        (logging.WARNING, WARN),
        (logging.INFO, INFO),
        (logging.DEBUG, DEBUG),
    ):
        if levelno >= threshold:
            return index
    return TRACE


def forward_record(record: logging.LogRecord, body: str, extra: dict[str, Any]) -> None:
    """Send `record` as a structured log through the current client (if logs are enabled)."""
    core = current_client()
    if core is None or not logs_enabled(core):
        return
    serializer = core.builder.serializer
    attributes: dict[str, Any] = {
        name: value if type(value) in _PLAIN else serializer.normalize(value)
        for name, value in extra.items()
    }
    attributes.update(
        {
            "sentry.origin": "auto.logger.log",
            "logger.name": record.name,
            "code.file.path": record.pathname,
            "code.line.number": record.lineno,
            "code.function.name": record.funcName,
            "thread.name": record.threadName,
        }
    )
    exc = record.exc_info[1] if record.exc_info else None
    if exc is not None:
        attributes["exception.type"] = type(exc).__name__
        attributes["exception.message"] = serializer.safe_str(exc)
    args: tuple[Any, ...] = ()
    params: dict[str, Any] = {}
    if isinstance(record.args, tuple):
        args = tuple(a if type(a) in _PLAIN else serializer.normalize(a) for a in record.args)
    elif isinstance(record.args, dict):
        params = {
            str(k): v if type(v) in _PLAIN else serializer.normalize(v)
            for k, v in record.args.items()
        }
    entry = Entry(
        record.created,
        level_index(record.levelno),
        serializer.safe_str(record.msg) if (args or params) else None,
        body,
        args,
        params,
        attributes,
        resolve_trace(current_scope().trace).trace_id,
    )
    capture_entry(core, entry, {"log_record": record})
