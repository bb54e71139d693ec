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
from dataclasses import replace
from types import FrameType
from typing import Any

from .._delivery.attachment import Attachment
from .._delivery.kinds import FEEDBACK, ItemKind
from .._delivery.pipeline import Pipeline
from .._delivery.stats import Stats, StatsSnapshot
from .._delivery.trace_header import take_trace_header
from .._log import INTERNAL, logger
from .._options import Event, Hint, Options
from .attachments import attachments_from
from .dedupe import SeenExceptions
from .event import EventBuilder
from .feedback import feedback_event
from .levels import normalize_level
from .log_batch import LogBuffer
from .scope import current_scope
from .sessions import SessionTracker

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
        self.sessions: SessionTracker | None = None
        self._track_sessions(pipeline)
        self.logs: LogBuffer | None = None  # structured logs, made at the first record
        # The names in `builder.sdk["integrations"]`, for hooks that ask on every call.
        self.integrations = frozenset(builder.sdk["integrations"])

    @property
    def enabled(self) -> bool:
        return self.pipeline is not None

    def add_integration(self, name: str) -> None:
        """Record an enabled integration in the `sdk` info every event carries."""
        integrations = self.builder.sdk["integrations"]
        if name not in integrations:
            integrations.append(name)  # the same list object the pipeline's envelopes use
            integrations.sort()
            self.integrations = frozenset(integrations)

    def reset_after_fork(self, stats: Stats, pipeline: Pipeline | None) -> None:
        """In a forked child: forget the parent's queue, counters and locks; start afresh on use."""
        self.stats = stats
        self.builder.slow_reprs.reset()
        self._seen = SeenExceptions()
        self.pipeline = pipeline
        self._track_sessions(pipeline)

    def _track_sessions(self, pipeline: Pipeline | None) -> None:
        if pipeline is None or not self.options.tracks_sessions:
            self.sessions = None
            return
        self.sessions = SessionTracker(self.options, self.submit_item, self.ensure_started)
        pipeline.add_flush_hook(self.sessions.flush_items)

    def ensure_started(self) -> None:
        pipeline = self.pipeline
        if pipeline is not None and pipeline.loop is None:
            self._start(pipeline)

    def submit_item(self, kind: ItemKind, payload: Any) -> bool:
        """Queue an item of `kind` (sessions, check-ins): never raises."""
        pipeline = self.pipeline
        if pipeline is None:
            return False
        if pipeline.loop is None:
            self._start(pipeline)
        return pipeline.submit_item(kind, payload)

    def _submit(self, event: Event, attachments: list[Attachment] | None = None) -> bool:
        pipeline = self.pipeline
        assert pipeline is not None
        if pipeline.loop is None:
            self._start(pipeline)
        return pipeline.submit(event, attachments=attachments)

    def snapshot(self) -> StatsSnapshot:
        slow = self.builder.slow_reprs
        return replace(
            self.stats.snapshot(),
            slow_repr_types=slow.types_marked,
            slow_repr_placeholders=slow.placeholders,
        )

    # -- capture -------------------------------------------------------------------------------

    def capture_exception(
        self,
        exc: BaseException | None,
        *,
        handled: bool = True,
        mechanism: str = "generic",
        attachments: object = None,
        **fields: Any,
    ) -> str | None:
        if self.pipeline is None:
            return None
        try:
            if exc is None:
                return None
            if self._is_ignored(exc):
                return None
            first = self._seen.first_sighting(exc)
            # Seen handled, then escaping unhandled: the session still crashed.
            if self.sessions is not None and (first or not handled):
                self.sessions.error(current_scope(), handled)
            if not first:
                return None
            if not self._admitted():
                return None
            scope = current_scope()
            event = self.builder.exception_event(
                exc, scope, fields, handled=handled, mechanism=mechanism
            )
            hint = {"exc_info": (type(exc), exc, exc.__traceback__)}
            return self._finish(event, _with_attachments(hint, scope, attachments))
        except Exception:
            self._internal_fault("capture_exception")
            return None

    def capture_message(
        self,
        message: str,
        level: str = "info",
        *,
        stack_from: FrameType | None = None,
        attachments: object = None,
        **fields: Any,
    ) -> str | None:
        # Before the check for a pipeline, so that a misuse shows up without a DSN too.
        level = normalize_level(level, "capture_message", "error") or "error"
        if self.pipeline is None:
            return None
        try:
            if not self._admitted():
                return None
            scope = current_scope()
            event = self.builder.message_event(
                str(message), level, scope, fields, stack_from=stack_from
            )
            return self._finish(event, _with_attachments({}, scope, attachments))
        except Exception:
            self._internal_fault("capture_message")
            return None

    def capture_event(self, event: Mapping[str, Any], hint: Hint | None = None) -> str | None:
        if self.pipeline is None:
            return None
        try:
            if not self._admitted():
                return None
            scope = current_scope()
            built = self.builder.finish_custom_event(event, scope)
            given = dict(hint or {})
            attachments = given.pop("attachments", None)
            return self._finish(built, _with_attachments(given, scope, attachments))
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
        if not self._submit(event, attachments_from("before_send", hint.get("attachments"))):
            return None
        return str(event_id) if event_id else None

    def capture_feedback(
        self,
        message: str,
        name: str | None = None,
        email: str | None = None,
        associated_event_id: str | None = None,
    ) -> str | None:
        pipeline = self.pipeline
        if pipeline is None:
            return None
        try:
            event = feedback_event(
                self.builder, current_scope(), message, name, email, associated_event_id
            )
            if event is None:
                return None
            self.stats.record_captured()  # no sample rate: feedback is always sent
            event = self._before_send_feedback(event)
            if event is None:
                self.stats.record_drop("before_send", FEEDBACK.category)
                return None
            event_id = str(event.get("event_id") or "")
            headers: dict[str, Any] = {"event_id": event_id} if event_id else {}
            trace = take_trace_header(event)
            if trace is not None:
                headers["trace"] = trace
            if pipeline.loop is None:
                self._start(pipeline)
            if not pipeline.submit_item(FEEDBACK, event, envelope_headers=headers):
                return None
            return event_id or None
        except Exception:
            logger.warning(
                "errlink internal error in capture_feedback; feedback dropped",
                exc_info=True,
                extra=INTERNAL,
            )
            self.stats.record_drop("internal_sdk_error", FEEDBACK.category)
            return None

    def _before_send_feedback(self, event: Event) -> Event | None:
        hook = self.options.before_send_feedback
        if hook is None:
            return event
        try:
            result = hook(event, {})
        except Exception:
            logger.warning(
                "before_send_feedback raised; sending the feedback unchanged",
                exc_info=True,
                extra=INTERNAL,
            )
            return event
        if result is None or isinstance(result, dict):
            return result
        logger.warning(
            "before_send_feedback returned %s, not a dict or None; sending the feedback unchanged",
            type(result).__name__,
            extra=INTERNAL,
        )
        return event

    def _internal_fault(self, where: str) -> None:
        logger.warning(
            "errlink internal error in %s; event dropped", where, exc_info=True, extra=INTERNAL
        )
        self.stats.record_drop("internal_sdk_error")


def _with_attachments(hint: Hint, scope: Any, given: object) -> Hint:
    """The hint with the scope's attachments and those given at the call site (a
    `before_send` may change the list)."""
    found = [*scope.attachments, *attachments_from("attachments", given)]
    if found:
        hint["attachments"] = found
    return hint


def exception_summary_type_of(cls: type[BaseException]) -> str:
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"
