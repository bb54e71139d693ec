"""The invocation's deadline, and the warning reported shortly before it is reached."""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable
from typing import Any


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


def watch(
    deadline: float | None, margin: float, warn: Callable[[int], None]
) -> threading.Timer | None:
    """Start a timer that calls `warn(handler_thread)` `margin` seconds before `deadline`
    (none when the deadline is unknown or nearer than that), in this invocation's scope."""
    remaining = remaining_seconds(deadline)
    if remaining is None or remaining <= margin:
        return None
    handler_thread = threading.get_ident()
    scope = contextvars.copy_context()
    timer = threading.Timer(remaining - margin, lambda: scope.run(warn, handler_thread))
    timer.name = "errlink-lambda-timeout"
    timer.daemon = True
    timer.start()
    return timer
