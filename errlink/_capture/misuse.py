"""Plain misuse of the capture API (a setter given the wrong kind of value): logged, never raised.

A setter or capture call that cannot make sense of an argument ignores it and says so once per
call site on the `errlink` logger, so that a call in a hot loop does not flood the log.
"""

from __future__ import annotations

from .._log import INTERNAL, logger
from .reprs import try_repr, type_name

_MAX_SHOWN = 80
_warned: set[str] = set()  # call site names: a small fixed set


def describe(value: object) -> str:
    """A short, safe rendering of a value a caller passed, for a log message."""
    text = try_repr(value)
    if text is None:
        return f"<{type_name(value)} object>"
    return text if len(text) <= _MAX_SHOWN else f"{text[:_MAX_SHOWN]}..."


def ignore(where: str, expected: str, value: object, outcome: str = "ignored") -> None:
    """Log, once for ``where``, that ``value`` given to ``where`` is not ``expected``."""
    if where in _warned:
        return
    _warned.add(where)
    logger.warning(
        "errlink.%s: expected %s, not %s; %s (logged once)",
        where,
        expected,
        describe(value),
        outcome,
        extra=INTERNAL,
    )


def forget_warnings() -> None:
    """Log every misuse again (for tests)."""
    _warned.clear()
