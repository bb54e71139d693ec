"""The module-level capture functions: they reach the client bound to the current context.

That is the client of an integration's request, or of an `async with AsyncClient(...)` block,
else the process default from `errlink.init()`. They work from any thread or coroutine.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from ._capture.binding import current_client
from ._options import Hint


def capture_exception(exc: BaseException | None = None, **event_fields: Any) -> str | None:
    """Report `exc` (default: the exception being handled) through the current client."""
    core = current_client()
    if core is None:
        return None
    if exc is None:
        exc = sys.exc_info()[1]
    return core.capture_exception(exc, **event_fields)


def capture_message(message: str, level: str = "info", **event_fields: Any) -> str | None:
    """Report a message through the current client."""
    core = current_client()
    if core is None:
        return None
    stack_from = sys._getframe(1) if core.options.attach_stacktrace else None
    return core.capture_message(message, level, stack_from=stack_from, **event_fields)


def capture_feedback(
    message: str,
    name: str | None = None,
    email: str | None = None,
    associated_event_id: str | None = None,
) -> str | None:
    """Send what a person said about an error (`associated_event_id`: the id `capture_*`
    returned) through the current client, as a `feedback` item. Returns its id or None.

    `name` and `email` are sent as given (the person typed them to be read);
    `before_send_feedback` may change or drop them."""
    core = current_client()
    if core is None:
        return None
    return core.capture_feedback(message, name, email, associated_event_id)


def capture_event(event: Mapping[str, Any], hint: Hint | None = None) -> str | None:
    """Report a hand-made event dict through the current client."""
    core = current_client()
    return None if core is None else core.capture_event(event, hint)
