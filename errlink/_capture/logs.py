"""Log records as errlink events and breadcrumbs: `EventHandler`, and the hook `errlink.init()`
installs.

Records at or above `event_level` (default ERROR) become events: with the record's exception
when it has one, else a message event carrying the record's template and arguments. Records at
or above `breadcrumb_level` (default INFO) and below `event_level` become breadcrumbs on the
current scope, so they travel with the next event. With a `log_level`, records at or above it
are also sent as structured logs (`log_forward.py`), their ``extra=`` fields as attributes.
errlink's own records (the ``errlink`` logger
and records marked ``errlink_internal``) are never captured, nor is a record logged while errlink
is capturing one: no feedback loop.

`errlink.init()` adds no handler and sets no level. It wraps `logging.Logger.callHandlers`, the
one place every record passes once it got through its logger's level, filters and ``disabled``
flag, on its way to the handlers. So errlink sees exactly what the application's logging
configuration lets through, and `logging.basicConfig()`, `dictConfig` and libraries that add
their own handler when none is configured (werkzeug, Flask) behave as without errlink.
`EventHandler` is for routing records yourself, for instance in Django's ``LOGGING`` setting::

    "handlers": {"errlink": {"class": "errlink.integrations.logging.EventHandler"}}

A record that reaches an `EventHandler` is left to it: the hook does not capture it again.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from typing import Any

from .._log import INTERNAL, logger
from .binding import current_client
from .breadcrumbs import add_breadcrumb_dict
from .dedupe import task_error_reported
from .log_forward import forward_record

_LEVELS = {
    logging.CRITICAL: "fatal",
    logging.ERROR: "error",
    logging.WARNING: "warning",
    logging.INFO: "info",
    logging.DEBUG: "debug",
}
# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
    "errlink_internal",
}


def level_number(option: str, level: int | str | None) -> int | None:
    """A logging level given as a number or a name, validated (None stays None)."""
    if level is None:
        return None
    if isinstance(level, bool):
        raise TypeError(f"option {option!r} must be a logging level, not {level!r}")
    if isinstance(level, int):
        return level
    if isinstance(level, str):
        number = logging.getLevelName(level.upper())
        if isinstance(number, int):
            return number
    raise ValueError(
        f"option {option!r} must be a logging level such as 'ERROR' or logging.INFO, not {level!r}"
    )


def event_level_name(levelno: int) -> str:
    for threshold in (logging.CRITICAL, logging.ERROR, logging.WARNING, logging.INFO):
        if levelno >= threshold:
            return _LEVELS[threshold]
    return "debug"


class _ThreadState(threading.local):
    def __init__(self) -> None:
        self.capturing = False  # a record logged while we capture one must not re-enter
        self.dispatching: logging.LogRecord | None = None  # the record the hook hands out
        self.claimed = False  # an EventHandler received `dispatching`


_state = _ThreadState()


def capture_record(
    record: logging.LogRecord,
    event_level: int | None,
    breadcrumb_level: int | None,
    log_level: int | None = None,
) -> None:
    """Make `record` an event, a breadcrumb or nothing (None turns a level off), for the
    current client, and at `log_level` and above also a structured log. Faults propagate to
    the caller."""
    if _is_errlink_record(record) or _state.capturing:
        return
    _state.capturing = True
    try:
        if log_level is not None and record.levelno >= log_level:
            forward_record(record, _formatted(record), record_extra(record))
        if event_level is not None and record.levelno >= event_level:
            _capture_event(record)
        elif breadcrumb_level is not None and record.levelno >= breadcrumb_level:
            add_breadcrumb_dict(breadcrumb_from_record(record), {"log_record": record})
    finally:
        _state.capturing = False


class EventHandler(logging.Handler):
    """Sends log records to the current errlink client as events and breadcrumbs."""

    def __init__(
        self,
        level: int | str = logging.NOTSET,
        *,
        event_level: int | str | None = logging.ERROR,
        breadcrumb_level: int | str | None = logging.INFO,
        log_level: int | str | None = None,
    ) -> None:
        self.event_level = level_number("event_level", event_level)
        self.breadcrumb_level = level_number("breadcrumb_level", breadcrumb_level)
        self.log_level = level_number("log_level", log_level)
        thresholds = [
            t for t in (self.event_level, self.breadcrumb_level, self.log_level) if t is not None
        ]
        lowest = min(thresholds) if thresholds else logging.CRITICAL + 1
        super().__init__(max(level_number("level", level) or 0, lowest))

    def emit(self, record: logging.LogRecord) -> None:
        if _state.dispatching is record:
            _state.claimed = True
        try:
            capture_record(record, self.event_level, self.breadcrumb_level, self.log_level)
        except Exception:
            self.handleError(record)


# -- the hook errlink.init() installs -------------------------------------------------------------

CallHandlers = Callable[[logging.Logger, logging.LogRecord], None]
_levels: tuple[int | None, int | None, int | None] | None = None  # (event, breadcrumb, log)
_original: CallHandlers = logging.Logger.callHandlers
_installed = False


def hook_logging(
    event_level: int | None, breadcrumb_level: int | None, log_level: int | None = None
) -> None:
    """Capture every record the application's logging lets through, at these levels.

    `logging.Logger.callHandlers` is wrapped once; calling again only changes the levels.
    """
    global _levels, _original, _installed
    _levels = (event_level, breadcrumb_level, log_level)
    if not _installed:
        _original = logging.Logger.callHandlers
        logging.Logger.callHandlers = _call_handlers  # type: ignore[method-assign]
        _installed = True


def unhook_logging() -> None:
    """Stop capturing. The wrapper is removed unless something wrapped `callHandlers` after us;
    then it stays, passing records through untouched (removing it would remove theirs)."""
    global _levels, _installed
    _levels = None
    if _installed and logging.Logger.callHandlers is _call_handlers:
        logging.Logger.callHandlers = _original  # type: ignore[method-assign,assignment]
        _installed = False


def _call_handlers(self: logging.Logger, record: logging.LogRecord) -> None:
    state = _state
    outer = state.dispatching, state.claimed
    state.dispatching, state.claimed = record, False
    try:
        _original(self, record)  # the handlers first: the application's output is not delayed
    finally:
        claimed = state.claimed
        state.dispatching, state.claimed = outer
    levels = _levels
    if levels is None or claimed:
        return
    try:
        capture_record(record, *levels)
    except Exception:
        logger.warning("errlink: could not capture a log record", exc_info=True, extra=INTERNAL)


# -- building events and breadcrumbs ------------------------------------------------------------


def _capture_event(record: logging.LogRecord) -> None:
    core = current_client()
    if core is None:
        return
    fields: dict[str, Any] = {
        "level": event_level_name(record.levelno),
        "logger": record.name,
    }
    extra = record_extra(record)
    if extra:
        fields["extra"] = extra
    message = _formatted(record)
    logentry = {"message": str(record.msg), "params": _params(record)}
    exc = record.exc_info[1] if record.exc_info else None
    if exc is not None and record.name == "asyncio" and task_error_reported(exc):
        return
    if exc is not None:
        fields["logentry"] = {**logentry, "formatted": message}
        core.capture_exception(exc, mechanism="logging", handled=True, **fields)
    else:
        stack_from = sys._getframe() if core.options.attach_stacktrace else None
        level = fields.pop("level")
        core.capture_message(message, level, stack_from=stack_from, logentry=logentry, **fields)


def breadcrumb_from_record(record: logging.LogRecord) -> dict[str, Any]:
    crumb: dict[str, Any] = {
        "type": "log",
        "category": record.name,
        "level": event_level_name(record.levelno),
        "message": _formatted(record),
        "timestamp": record.created,
    }
    extra = record_extra(record)
    if extra:
        crumb["data"] = extra
    return crumb


def record_extra(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS}


def _formatted(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except Exception:  # bad %-args in the call: keep the template rather than lose the record
        return str(record.msg)


def _params(record: logging.LogRecord) -> list[Any]:
    args = record.args
    if isinstance(args, tuple):
        return list(args)
    return [args] if args else []


def _is_errlink_record(record: logging.LogRecord) -> bool:
    name = record.name
    return (
        name == "errlink"
        or name.startswith("errlink.")
        or getattr(record, "errlink_internal", False) is True
    )
