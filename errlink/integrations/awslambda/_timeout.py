"""The invocation's deadline, and the warning reported shortly before it is reached."""

from __future__ import annotations

import contextvars
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from .._sdk import INTERNAL, logger

if TYPE_CHECKING:
    from ._invocation import Invocation


def deadline(context: Any) -> float | None:
    """The invocation's deadline on the monotonic clock, from the runtime's remaining time."""
    remaining_ms = getattr(context, "get_remaining_time_in_millis", None)
    if not callable(remaining_ms):
        return None
    try:
        return time.monotonic() + float(remaining_ms()) / 1000
    except Exception:
        return None


def remaining_seconds(deadline: float | None) -> float | None:
    return None if deadline is None else deadline - time.monotonic()


def watch(invocation: Invocation, margin: float) -> threading.Timer | None:
    """Start a timer that reports a warning `margin` seconds before the invocation's deadline
    (none when the deadline is unknown or nearer than that)."""
    remaining = remaining_seconds(invocation.deadline)
    if remaining is None or remaining <= margin:
        return None
    handler_thread = threading.get_ident()
    scope = contextvars.copy_context()  # the timer thread reports with this invocation's scope
    timer = threading.Timer(
        remaining - margin, lambda: scope.run(_warn, invocation, handler_thread)
    )
    timer.name = "errlink-lambda-timeout"
    timer.daemon = True
    timer.start()
    return timer


def _warn(invocation: Invocation, handler_thread: int) -> None:
    try:
        name = invocation.function_name or "the Lambda function"
        invocation.client.core.capture_message(
            f"{name} is about to time out",
            "warning",
            stack_from=sys._current_frames().get(handler_thread),
            contexts=invocation.contexts(),
            tags={"aws_lambda.timeout_warning": "true"},
        )
        invocation.flush()
    except Exception:
        logger.warning("errlink: Lambda timeout warning failed", exc_info=True, extra=INTERNAL)
