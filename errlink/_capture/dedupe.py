"""Remembering which exception objects a client already reported.

The same exception is often seen twice (an integration's hook and a logging call). We remember
it on the object itself: a private attribute holding the tokens of the clients that reported
it. The mark lives and dies with the exception, so nothing keeps it alive and a new exception
that happens to reuse a dead one's memory address carries no mark. Built-in exceptions accept
attributes but not weak references; for the rare exception that refuses attributes (a custom
`__setattr__`), a weak reference with a forgetting callback is the fallback.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable

_MARK = "__errlink_reported_by__"
_tokens = itertools.count(1)


class SeenExceptions:
    def __init__(self, capacity: int = 1000) -> None:
        self._token = next(_tokens)
        self._capacity = capacity
        self._refs: OrderedDict[int, weakref.ref[BaseException]] = OrderedDict()
        self._lock = threading.Lock()

    def first_sighting(self, exc: BaseException) -> bool:
        """True the first time `exc` is offered to this instance; False afterwards."""
        with self._lock:
            marks = exc.__dict__.get(_MARK) if hasattr(exc, "__dict__") else None
            if marks is not None and self._token in marks:
                return False
            try:
                setattr(exc, _MARK, (*(marks or ()), self._token))
            except Exception:
                return self._first_sighting_by_reference(exc)
            return True

    def _first_sighting_by_reference(self, exc: BaseException) -> bool:
        key = id(exc)
        ref = self._refs.get(key)
        if ref is not None and ref() is exc:
            return False
        try:
            self._refs[key] = weakref.ref(exc, self._forget_callback(key))
        except TypeError:  # neither attributes nor weak references: it cannot be remembered
            return True
        if len(self._refs) > self._capacity:
            self._refs.popitem(last=False)
        return True

    def _forget_callback(self, key: int) -> Callable[[weakref.ref[BaseException]], None]:
        refs = self._refs
        lock = self._lock

        def forget(dead: weakref.ref[BaseException]) -> None:
            # The callback may run inside first_sighting (GC), so never block on the lock; a
            # stale entry left behind is harmless: its ref() is None, never the new object.
            if lock.acquire(blocking=False):
                try:
                    if refs.get(key) is dead:
                        del refs[key]
                finally:
                    lock.release()

        return forget

    def __len__(self) -> int:
        return len(self._refs)


# An exception of an asyncio task nobody awaited, already reported by a client's task watch: the
# line asyncio logs for it later ("Task exception was never retrieved") must not become a second
# event, whichever client the logging handler reports to.
_TASK_ERROR_MARK = "__errlink_task_error_reported__"


def mark_task_error_reported(exc: BaseException) -> None:
    try:
        setattr(exc, _TASK_ERROR_MARK, True)
    except Exception:
        pass  # an exception refusing attributes: its log line may become an event of its own


def task_error_reported(exc: BaseException) -> bool:
    return getattr(exc, _TASK_ERROR_MARK, False) is True
