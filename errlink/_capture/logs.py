"""A `logging.Handler` that turns records into errlink events and breadcrumbs.

Records at or above `event_level` (default ERROR) become events: with the record's exception
when it has one, else a message event carrying the record's template and arguments. Records at
or above `breadcrumb_level` (default INFO) and below `event_level` become breadcrumbs on the
current scope, so they travel with the next event. errlink's own records (the ``errlink`` logger
and records marked ``errlink_internal``) are never captured: no feedback loop.

Use it from `errlink.init()` (on by default) or add it yourself, for instance in Django's
``LOGGING`` setting::

    "handlers": {"errlink": {"class": "errlink.integrations.logging.EventHandler"}}
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any

from .binding import current_client
from .breadcrumbs import add_breadcrumb_dict
from .dedupe import task_error_reported

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


class EventHandler(logging.Handler):
    """Sends log records to the current errlink client as events and breadcrumbs."""

    def __init__(
        self,
        level: int | str = logging.NOTSET,
        *,
        event_level: int | str | None = logging.ERROR,
        breadcrumb_level: int | str | None = logging.INFO,
    ) -> None:
        self.event_level = level_number("event_level", event_level)
        self.breadcrumb_level = level_number("breadcrumb_level", breadcrumb_level)
        thresholds = [t for t in (self.event_level, self.breadcrumb_level) if t is not None]
        lowest = min(thresholds) if thresholds else logging.CRITICAL + 1
        super().__init__(max(level_number("level", level) or 0, lowest))
        self._busy = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        if _is_errlink_record(record) or getattr(self._busy, "active", False):
            return
        self._busy.active = True  # a record logged while we capture must not re-enter
        try:
            if self.event_level is not None and record.levelno >= self.event_level:
                self._capture(record)
            elif self.breadcrumb_level is not None and record.levelno >= self.breadcrumb_level:
                add_breadcrumb_dict(breadcrumb_from_record(record), {"log_record": record})
        except Exception:
            self.handleError(record)
        finally:
            self._busy.active = False

    def _capture(self, record: logging.LogRecord) -> None:
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
