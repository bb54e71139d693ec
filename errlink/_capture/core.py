"""The capture path shared by the async and the sync client.

Everything here runs in the caller's thread or task and never waits: it filters, builds the
event, runs the synchronous hooks and hands the event to the pipeline in O(1). Any internal fault
is logged on the `errlink` logger and counted; none reaches the host application. The client
faces decide what is captured (the exception being handled, the caller's frame) and how the
pipeline gets a loop; this module takes both as given.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Any

from .._delivery.pipeline import Pipeline
from .._delivery.stats import Stats, StatsSnapshot
from .._log import INTERNAL, logger
from .._options import Event, Hint, Options
from .dedupe import SeenExceptions
from .event import EventBuilder
from .levels import normalize_level
from .scope import current_scope

StartPipeline = Callable[[Pipeline], None]


class ClientCore:
    """Capture logic plus the pipeline it feeds; owned by an AsyncClient or a sync Client.

    `start` gives the pipeline a loop to run on, the first time an event is submitted.
    """

    def __init__(
        self,
        options: Options,
        *,
        builder: EventBuilder,
        stats: Stats,
        pipeline: Pipeline | None,
        start: StartPipeline,
    ) -> None:
        self.options = options
        self.stats = stats
        self.builder = builder
        self.pipeline = pipeline
        self._start = start
        self._seen = SeenExceptions()
        self._ignored_names = frozenset(i for i in options.ignore_errors if isinstance(i, str))
        self._ignored_types = tuple(i for i in options.ignore_errors if isinstance(i, type))
        self._before_send_is_async = options.before_send_is_async

    @property
    def enabled(self) -> bool:
        return self.pipeline is not None

    def add_integration(self, name: str) -> None:
        """Record an enabled integration in the `sdk` info every event carries."""
        integrations = self.builder.sdk["integrations"]
        if name not in integrations:
            integrations.append(name)  # the same list object the pipeline's envelopes use
            integrations.sort()

    def reset_after_fork(self, stats: Stats, pipeline: Pipeline | None) -> None:
        """In a forked child: forget the parent's queue, counters and locks; start afresh on use."""
        self.stats = stats
        self._seen = SeenExceptions()
        self.pipeline = pipeline

    def _submit(self, event: Event) -> bool:
        pipeline = self.pipeline
        assert pipeline is not None
        if pipeline.loop is None:
            self._start(pipeline)
        return pipeline.submit(event)

    def snapshot(self) -> StatsSnapshot:
        return self.stats.snapshot()

    # -- capture -------------------------------------------------------------------------------

    def capture_exception(
        self,
        exc: BaseException | None,
        *,
        handled: bool = True,
        mechanism: str = "generic",
        **fields: Any,
    ) -> str | None:
        if self.pipeline is None:
            return None
        try:
            if exc is None:
                return None
            if self._is_ignored(exc) or not self._seen.first_sighting(exc):
                return None
            if not self._admitted():
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
        # Before the check for a pipeline, so that a misuse shows up without a DSN too.
        level = normalize_level(level, "capture_message", "error") or "error"
        if self.pipeline is None:
            return None
        try:
            if not self._admitted():
                return None
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
            if not self._admitted():
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

    def _admitted(self) -> bool:
        """Count a capture, then sample it in or out (counted as "sample_rate")."""
        self.stats.record_captured()
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

    def _internal_fault(self, where: str) -> None:
        logger.warning(
            "errlink internal error in %s; event dropped", where, exc_info=True, extra=INTERNAL
        )
        self.stats.record_drop("internal_sdk_error")


def exception_summary_type_of(cls: type[BaseException]) -> str:
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"
