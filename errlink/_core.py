"""The capture path shared by the async and the sync client.

Everything here runs in the caller's thread or task and never waits: it filters, builds the
event, runs the synchronous hooks and hands the event to the pipeline in O(1). Any internal fault
is logged on the `errlink` logger and counted; none reaches the host application.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import sys
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Any

from ._dedupe import SeenExceptions
from ._event import EventBuilder
from ._options import LEVELS, Event, Hint, Options
from ._outbox import Outbox
from ._outbox_store import OutboxStore, outbox_target
from ._pipeline import DRAIN_BATCH, Pipeline
from ._scope import current_scope
from ._stats import Stats, StatsSnapshot
from ._transport import HttpTransport, Transport

logger = logging.getLogger("errlink")
INTERNAL = {"errlink_internal": True}  # marks errlink's own log records for the logging handler
_OUTBOX_LEASE_MARGIN = 30.0


class ClientCore:
    """Capture logic plus the pipeline it feeds; owned by an AsyncClient or a sync Client."""

    def __init__(self, options: Options, *, integrations: tuple[str, ...] = ()) -> None:
        self.options = options
        self.stats = Stats()
        self.builder = EventBuilder(options, integrations)
        self._seen = SeenExceptions()
        self._ignored_names = frozenset(i for i in options.ignore_errors if isinstance(i, str))
        self._ignored_types = tuple(i for i in options.ignore_errors if isinstance(i, type))
        self._before_send_is_async = inspect.iscoroutinefunction(options.before_send)
        # The owner (AsyncClient or sync Client) says how the pipeline gets a loop to run on.
        self.start_pipeline: Callable[[Pipeline], None] = _start_on_running_loop
        self.pipeline: Pipeline | None = self._new_pipeline() if options.enabled else None
        if options.debug:
            enable_debug_logging()

    def _new_pipeline(self) -> Pipeline:
        options = self.options
        transport: Transport = options.transport or HttpTransport(
            options.dsn,  # type: ignore[arg-type]  # enabled without transport implies a dsn
            http_timeout=options.http_timeout,
            http_proxy=options.http_proxy,
            ca_certs=options.ca_certs,
            verify_tls=options.verify_tls,
            max_connections=options.max_in_flight,
        )
        return Pipeline(
            transport=transport,
            stats=self.stats,
            sdk_info=self.builder.sdk,
            dsn=options.dsn,
            queue_size=options.queue_size,
            max_in_flight=options.max_in_flight,
            max_event_bytes=options.max_event_bytes,
            before_send_async=self._run_async_before_send if self._before_send_is_async else None,
            outbox=self._new_outbox(),
            outbox_drain_rate=options.outbox_drain_rate,
            outbox_lease_seconds=self._outbox_lease_seconds(),
        )

    def _new_outbox(self) -> Outbox | None:
        options = self.options
        if options.outbox is None:
            return None
        store = OutboxStore(
            options.outbox,
            target=outbox_target(options.dsn, options.transport),
            max_bytes=options.outbox_max_bytes,
            max_age=options.outbox_max_age,
        )
        return Outbox(store)

    def _outbox_lease_seconds(self) -> float:
        # Long enough for a whole claimed batch to be sent one by one, each within http_timeout.
        per_event = self.options.http_timeout + 1.0 / self.options.outbox_drain_rate
        return _OUTBOX_LEASE_MARGIN + DRAIN_BATCH * per_event

    @property
    def enabled(self) -> bool:
        return self.pipeline is not None

    def add_integration(self, name: str) -> None:
        """Record an enabled integration in the `sdk` info every event carries."""
        integrations = self.builder.sdk["integrations"]
        if name not in integrations:
            integrations.append(name)  # the same list object the pipeline's envelopes use
            integrations.sort()

    def reset_after_fork(self) -> None:
        """In a forked child: forget the parent's queue, counters and locks; start afresh on use."""
        self.stats = Stats()
        self._seen = SeenExceptions()
        if self.pipeline is not None:
            self.pipeline = self._new_pipeline()

    def _submit(self, event: Event) -> bool:
        pipeline = self.pipeline
        assert pipeline is not None
        if pipeline.loop is None:
            self.start_pipeline(pipeline)
        return pipeline.submit(event)

    def snapshot(self) -> StatsSnapshot:
        return self.stats.snapshot()

    # -- capture -------------------------------------------------------------------------------

    def capture_exception(
        self,
        exc: BaseException | None = None,
        *,
        handled: bool = True,
        mechanism: str = "generic",
        **fields: Any,
    ) -> str | None:
        if self.pipeline is None:
            return None
        try:
            if exc is None:
                exc = sys.exc_info()[1]
                if exc is None:
                    return None
            if self._is_ignored(exc) or not self._seen.first_sighting(exc):
                return None
            self.stats.record_captured()
            if not self._sampled_in():
                return None
            event = self.builder.exception_event(
                exc, current_scope(), fields, handled=handled, mechanism=mechanism
            )
            return self._finish(event, {"exc_info": (type(exc), exc, exc.__traceback__)})
        except Exception:
            self._internal_fault("capture_exception")
            return None

    def capture_message(
        self,
        message: str,
        level: str = "info",
        *,
        stack_from: FrameType | None = None,
        **fields: Any,
    ) -> str | None:
        if level not in LEVELS:
            # A programming error at the call site, reported like an invalid option.
            raise ValueError(f"level must be one of {', '.join(LEVELS)}, not {level!r}")
        if self.pipeline is None:
            return None
        try:
            self.stats.record_captured()
            if not self._sampled_in():
                return None
            if stack_from is None and self.options.attach_stacktrace:
                stack_from = sys._getframe(1)
            event = self.builder.message_event(
                str(message), level, current_scope(), fields, stack_from=stack_from
            )
            return self._finish(event, {})
        except Exception:
            self._internal_fault("capture_message")
            return None

    def capture_event(self, event: Mapping[str, Any], hint: Hint | None = None) -> str | None:
        if self.pipeline is None:
            return None
        try:
            self.stats.record_captured()
            if not self._sampled_in():
                return None
            built = self.builder.finish_custom_event(event, current_scope())
            return self._finish(built, dict(hint or {}))
        except Exception:
            self._internal_fault("capture_event")
            return None

    def process_breadcrumb(self, crumb: dict[str, Any], hint: Hint) -> dict[str, Any] | None:
        hook = self.options.before_breadcrumb
        if hook is not None:
            try:
                result = hook(crumb, hint)
            except Exception:
                logger.warning(
                    "before_breadcrumb raised; keeping the breadcrumb",
                    exc_info=True,
                    extra=INTERNAL,
                )
                result = crumb
            if result is None:
                return None
            crumb = result
        try:
            return self.builder.breadcrumb(crumb)
        except Exception:
            logger.warning(
                "errlink internal error in add_breadcrumb", exc_info=True, extra=INTERNAL
            )
            return None

    # -- internals ------------------------------------------------------------------------------

    def _is_ignored(self, exc: BaseException) -> bool:
        if self._ignored_types and isinstance(exc, self._ignored_types):
            return True
        if self._ignored_names:
            for cls in type(exc).__mro__:
                if cls.__name__ in self._ignored_names:
                    return True
                if exception_summary_type_of(cls) in self._ignored_names:
                    return True
        return False

    def _sampled_in(self) -> bool:
        rate = self.options.sample_rate
        if rate >= 1.0 or random.random() < rate:
            return True
        self.stats.record_drop("sample_rate")
        return False

    def _finish(self, event: Event, hint: Hint) -> str | None:
        hook = self.options.before_send
        if hook is not None and not self._before_send_is_async:
            try:
                result = hook(event, hint)
            except Exception:
                logger.warning(
                    "before_send raised; sending the event unchanged", exc_info=True, extra=INTERNAL
                )
                result = event
            if result is None:
                self.stats.record_drop("before_send")
                return None
            if not isinstance(result, dict):
                logger.warning(
                    "before_send returned %s, not a dict or None; sending the event unchanged",
                    type(result).__name__,
                    extra=INTERNAL,
                )
                result = event
            event = result
        event_id = event.get("event_id")
        if not self._submit(event):
            return None
        return str(event_id) if event_id else None

    async def _run_async_before_send(self, event: Event) -> Event | None:
        hook = self.options.before_send
        assert hook is not None
        result = await hook(event, {})
        return result if result is None or isinstance(result, dict) else event

    def _internal_fault(self, where: str) -> None:
        logger.warning(
            "errlink internal error in %s; event dropped", where, exc_info=True, extra=INTERNAL
        )
        self.stats.record_drop("internal_sdk_error")


_debug_handler: logging.Handler | None = None


def enable_debug_logging() -> None:
    """`debug=True`: show errlink's own log (what it sends, drops and retries) on stderr."""
    global _debug_handler
    if _debug_handler is None:
        _debug_handler = logging.StreamHandler()
        _debug_handler.setFormatter(logging.Formatter("[errlink] %(levelname)s %(message)s"))
        logger.addHandler(_debug_handler)
    logger.setLevel(logging.DEBUG)


def _start_on_running_loop(pipeline: Pipeline) -> None:
    """Default start: on the loop running in this thread, if any; else stay buffered until then."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    pipeline.start(loop)


def exception_summary_type_of(cls: type[BaseException]) -> str:
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"
