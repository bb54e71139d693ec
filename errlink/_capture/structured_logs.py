"""`errlink.logger`: structured logs, sent in batches beside the errors they explain.

::

    errlink.logger.info("payment {order_id} failed", order_id=7, attributes={"shop": "eu"})

The template and its parameters are kept apart (``sentry.message.template``,
``sentry.message.parameter.<name>``) and the body is formatted from them; ``attributes=`` adds
attributes of its own. Each record carries the current trace id, so the logs of one request or
task can be found from its errors. In the caller a record costs a tuple and a lock: building,
scrubbing and encoding happen on the sender (`log_records.py`), except when `before_send_log`
is set, which sees the finished record in the caller. Nothing here raises into the caller.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .._delivery.kinds import LOG
from .._log import INTERNAL, logger
from .binding import current_client
from .log_batch import LogBuffer
from .log_records import DEBUG, ERROR, FATAL, INFO, TRACE, WARN, Entry, RecordBuilder
from .scope import current_scope
from .trace import resolve as resolve_trace

if TYPE_CHECKING:
    from .core import ClientCore

_PLAIN = frozenset({str, int, float, bool})
_new_buffer_lock = threading.Lock()
_now = time.time


class Logger:
    """Structured logs through the current client (see `errlink.logger`).

    Each method takes a ``str.format`` template, its parameters by name (or by position), and
    optional ``attributes``. With ``enable_logs=False``, or no client, it does nothing.
    """

    __slots__ = ()

    def trace(
        self,
        template: str,
        /,
        *args: Any,
        attributes: Mapping[str, Any] | None = None,
        **params: Any,
    ) -> None:
        capture_log(TRACE, template, args, params, attributes)

    def debug(
        self,
        template: str,
        /,
        *args: Any,
        attributes: Mapping[str, Any] | None = None,
        **params: Any,
    ) -> None:
        capture_log(DEBUG, template, args, params, attributes)

    def info(
        self,
        template: str,
        /,
        *args: Any,
        attributes: Mapping[str, Any] | None = None,
        **params: Any,
    ) -> None:
        capture_log(INFO, template, args, params, attributes)

    def warning(
        self,
        template: str,
        /,
        *args: Any,
        attributes: Mapping[str, Any] | None = None,
        **params: Any,
    ) -> None:
        capture_log(WARN, template, args, params, attributes)

    def error(
        self,
        template: str,
        /,
        *args: Any,
        attributes: Mapping[str, Any] | None = None,
        **params: Any,
    ) -> None:
        capture_log(ERROR, template, args, params, attributes)

    def fatal(
        self,
        template: str,
        /,
        *args: Any,
        attributes: Mapping[str, Any] | None = None,
        **params: Any,
    ) -> None:
        capture_log(FATAL, template, args, params, attributes)

    def __repr__(self) -> str:
        return "<errlink.logger>"


logger_api = Logger()


def capture_log(
    level: int,
    template: object,
    args: tuple[Any, ...],
    params: dict[str, Any],
    attributes: object,
) -> None:
    core = current_client()
    if core is None:
        return
    buffer = core.logs or _buffer_for(core)
    if buffer is None:
        return
    try:
        if type(template) is not str:
            template = buffer.builder.plain_text(template)
        for name, value in params.items():
            if type(value) not in _PLAIN:
                # A snapshot now: the record is built later, the object may change meanwhile.
                params[name] = buffer.builder.snapshot(value)
        if args:
            args = tuple(a if type(a) in _PLAIN else buffer.builder.snapshot(a) for a in args)
        entry = Entry(
            _now(),
            level,
            template,
            None,
            args,
            params,
            _attributes(buffer, attributes),
            resolve_trace(current_scope().trace).trace_id,
        )
        if core.options.before_send_log is not None:
            finished = _before_send_log(core, buffer, entry, {})
            if finished is not None:
                buffer.add(finished)
        else:
            buffer.add(entry)
    except Exception:
        _fault(core)


def capture_entry(core: ClientCore, entry: Entry, hint: dict[str, Any]) -> None:
    """Buffer a record made elsewhere (the logging integration): same path, same hook."""
    buffer = core.logs or _buffer_for(core)
    if buffer is None:
        return
    try:
        if core.options.before_send_log is not None:
            finished = _before_send_log(core, buffer, entry, hint)
            if finished is not None:
                buffer.add(finished)
        else:
            buffer.add(entry)
    except Exception:
        _fault(core)


def logs_enabled(core: ClientCore) -> bool:
    return core.pipeline is not None and core.options.enable_logs


def _buffer_for(core: ClientCore) -> LogBuffer | None:
    if not logs_enabled(core):
        return None
    with _new_buffer_lock:
        if core.logs is None:
            builder = core.builder
            records = RecordBuilder(core.options, builder.serializer, builder.scrubber)
            core.logs = LogBuffer(core, records)
        return core.logs


def _attributes(buffer: LogBuffer, attributes: object) -> dict[str, Any] | None:
    if not attributes:
        return None
    if not isinstance(attributes, Mapping):
        return {"attributes": buffer.builder.snapshot(attributes)}
    return {
        str(name): value if type(value) in _PLAIN else buffer.builder.snapshot(value)
        for name, value in attributes.items()
    }


def _before_send_log(
    core: ClientCore, buffer: LogBuffer, entry: Entry, hint: dict[str, Any]
) -> dict[str, Any] | None:
    hook = core.options.before_send_log
    assert hook is not None
    record = buffer.builder.build(entry)
    result: Any
    try:
        result = hook(record, hint)
    except Exception:
        logger.warning(
            "before_send_log raised; sending the record unchanged", exc_info=True, extra=INTERNAL
        )
        result = record
    if result is None:
        core.stats.record_drop("before_send", LOG.category)
        return None
    if type(result) is not dict:
        logger.warning(
            "before_send_log returned %s, not a dict or None; sending the record unchanged",
            type(result).__name__,
            extra=INTERNAL,
        )
        return record
    return dict(result)


def _fault(core: ClientCore) -> None:
    logger.warning(
        "errlink internal error in logger; record dropped", exc_info=True, extra=INTERNAL
    )
    core.stats.record_drop("internal_sdk_error", LOG.category)
