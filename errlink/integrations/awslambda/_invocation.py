"""One invocation: its scope data, the report of its exception, its timeout watch and the
final flush, which must finish before the runtime may freeze the process."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

from .._request import to_text
from .._sdk import INTERNAL, Client, current_scope, logger, set_context, set_transaction
from . import _timeout
from ._context import attach_event, invocation_trace, lambda_context

INTEGRATION = "aws_lambda"
# The runtime needs a moment after the handler returns to post the response.
_RESPONSE_RESERVE_SECONDS = 0.1


class Settings:
    """The decorator's per-handler settings."""

    __slots__ = ("include_event", "timeout_warning", "timeout_warning_margin")

    def __init__(self, timeout_warning: bool, margin: float, include_event: bool) -> None:
        self.timeout_warning = timeout_warning
        self.timeout_warning_margin = margin
        self.include_event = include_event


class Invocation:
    """One invocation's scope data, timeout watch and final flush. Never raises."""

    def __init__(self, client: Client, event: Any, context: Any, settings: Settings) -> None:
        self.client = client
        self.context = context
        self.started = time.monotonic()
        self.deadline = _timeout.deadline(context)
        self.timer: threading.Timer | None = None
        self.function_name = ""
        try:
            # The decorator made this scope for the invocation alone: set in place.
            current_scope().trace = invocation_trace(event)
            self.function_name = to_text(getattr(context, "function_name", None) or "")
            if self.function_name:
                set_transaction(self.function_name)
            set_context(INTEGRATION, self.lambda_context())
            if settings.include_event:
                attach_event(event, client.core)
            if settings.timeout_warning:
                self.timer = _timeout.watch(
                    self.deadline, settings.timeout_warning_margin, self.warn_timeout
                )
        except Exception:
            logger.warning(
                "errlink: could not prepare the Lambda scope", exc_info=True, extra=INTERNAL
            )

    def lambda_context(self) -> dict[str, Any]:
        return lambda_context(
            self.context,
            _timeout.remaining_seconds(self.deadline),
            time.monotonic() - self.started,
        )

    def contexts(self) -> dict[str, Any]:
        """The event's ``contexts``, with the Lambda context as of now."""
        return {INTEGRATION: self.lambda_context()}

    def report(self, exc: BaseException) -> None:
        try:
            contexts = self.contexts()
        except Exception:
            contexts = {}
        self.client.core.capture_exception(
            exc, handled=False, mechanism=INTEGRATION, contexts=contexts
        )

    def warn_timeout(self, handler_thread: int) -> None:
        """Report that the invocation is about to time out, with the handler's stack."""
        try:
            name = self.function_name or "the Lambda function"
            self.client.core.capture_message(
                f"{name} is about to time out",
                "warning",
                stack_from=sys._current_frames().get(handler_thread),
                contexts=self.contexts(),
                tags={"aws_lambda.timeout_warning": "true"},
            )
            self.flush()
        except Exception:
            logger.warning("errlink: Lambda timeout warning failed", exc_info=True, extra=INTERNAL)

    def finish(self) -> None:
        timer = self.timer
        if timer is not None:
            timer.cancel()
        self.flush()

    def flush(self) -> None:
        """Flush the client, for no longer than the invocation has left."""
        try:
            budget = self.client.options.shutdown_timeout
            remaining = _timeout.remaining_seconds(self.deadline)
            if remaining is not None:
                budget = min(budget, remaining - _RESPONSE_RESERVE_SECONDS)
            if budget > 0:
                self.client.flush(budget)
        except Exception:
            logger.warning("errlink: flush at the end of the invocation failed", extra=INTERNAL)
