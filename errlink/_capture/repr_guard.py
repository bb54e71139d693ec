"""Keeping slow ``__repr__`` and ``__str__`` methods from stalling every capture.

A lazy ORM queryset, a huge data frame or a proxy doing I/O can take a long time to render.
When rendering a value is slow, its type is marked slow for the life of the process, and later
values of that type are sent as ``<TypeName object>`` without calling its methods again. The
first value of a slow type still pays: a running repr cannot be interrupted safely.

Slow means over `SLOW_AT_ONCE_SECONDS` once, or over `SLOW_SECONDS` twice in a row for the
type. A single short delay proves little: the thread may have waited for the GIL (whose switch
interval is 5 ms) or for a CPU, and a fast type marked by mistake would be hidden for good.

The registry is process-wide, as types are: a type found slow by one client is skipped by all.
Each client counts what its own captures marked and replaced, in its `SlowReprs`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from time import perf_counter
from typing import TypeVar

__all__ = [
    "MAX_SLOW_TYPES",
    "SLOW_AT_ONCE_SECONDS",
    "SLOW_SECONDS",
    "SLOW_TYPES",
    "SUSPECTS",
    "SlowReprs",
    "mark_slow",
]

_T = TypeVar("_T")

SLOW_SECONDS = 0.001
SLOW_AT_ONCE_SECONDS = 0.02
# Classes made at run time must not grow the registry forever; past this, the oldest mark goes.
MAX_SLOW_TYPES = 1024

# Slow types, oldest mark first. Read without a lock on the hot path (a dict lookup is atomic
# under the GIL); written only when a repr has just been slow.
SLOW_TYPES: dict[type, None] = {}
# Types whose last render took over SLOW_SECONDS (but not over SLOW_AT_ONCE_SECONDS): one more
# such render marks them; a fast one clears them.
SUSPECTS: dict[type, None] = {}


def mark_slow(value_type: type) -> bool:
    """Add ``value_type`` to the registry; False when it was there already."""
    if value_type in SLOW_TYPES:
        return False
    if len(SLOW_TYPES) >= MAX_SLOW_TYPES:
        try:
            del SLOW_TYPES[next(iter(SLOW_TYPES))]
        except (KeyError, RuntimeError, StopIteration):
            pass  # another thread changed it meanwhile: the bound is approximate
    SLOW_TYPES[value_type] = None
    return True


class SlowReprs:
    """One client's view of the registry: renders values timed, and counts the types it marked
    slow and the values it replaced by a placeholder (shown in ``client.stats``)."""

    __slots__ = ("_lock", "placeholders", "types_marked")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.types_marked = 0
        self.placeholders = 0

    def timed(self, render: Callable[[object], _T], value: object) -> _T:
        """``render(value)``, timed even when it raises; a fast render clears a suspect."""
        start = perf_counter()
        try:
            return render(value)
        finally:
            elapsed = perf_counter() - start
            if elapsed > SLOW_SECONDS:
                self.was_slow(type(value), elapsed)
            elif SUSPECTS:
                SUSPECTS.pop(type(value), None)

    def guarded(self, render: Callable[[object], _T], value: object) -> _T | str:
        """``render(value)``, timed; for a value of a type already marked slow, its placeholder
        ``<TypeName object>`` (counted) without calling ``render``. The serializer's own repr
        path does the same inline, for speed."""
        value_type = type(value)
        if value_type in SLOW_TYPES:
            self.count_placeholder()
            name = getattr(value_type, "__qualname__", None)
            return f"<{name if type(name) is str else 'object'} object>"
        return self.timed(render, value)

    def was_slow(self, value_type: type, elapsed: float) -> None:
        """A render of ``value_type`` took ``elapsed`` seconds, over `SLOW_SECONDS`: mark the
        type if that is over `SLOW_AT_ONCE_SECONDS` or its last render was slow too."""
        if elapsed <= SLOW_AT_ONCE_SECONDS and value_type not in SUSPECTS:
            if len(SUSPECTS) >= MAX_SLOW_TYPES:
                SUSPECTS.clear()
            SUSPECTS[value_type] = None
            return
        SUSPECTS.pop(value_type, None)
        if mark_slow(value_type):
            with self._lock:
                self.types_marked += 1

    def count_placeholder(self) -> None:
        with self._lock:
            self.placeholders += 1

    def reset(self) -> None:
        """Start the counts afresh (in a forked child); the registry itself is kept."""
        self._lock = threading.Lock()
        self.types_marked = 0
        self.placeholders = 0
