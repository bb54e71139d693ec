"""The disk outbox as the pipeline sees it: a writer thread that owns the SQLite store.

Nothing here runs on the capture path. The pipeline's sender tasks hand events over with
`spill` (no waiting, no disk I/O on the loop); the writer thread stores everything handed over
since its last transaction in one transaction and reports back on the loop. The drain calls
`claim`/`remove`/`release`, which also run in the writer thread.

The writer thread is a plain daemon thread rather than an executor: executors refuse new work
once interpreter shutdown has begun, and the sync facade's atexit close is exactly when events
still queued must be spilled.
"""

from __future__ import annotations

import asyncio
import os
import queue
import random
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from .._log import INTERNAL, logger
from .records import Claim, OutboxUnavailable, Removal, SpillRecord
from .store import OutboxStore, is_busy

THREAD_NAME = "errlink-outbox"
# How long one operation keeps retrying while other processes hold the database lock.
_BUSY_PATIENCE = 10.0

T = TypeVar("T")
SpillDone = Callable[[bool], None]
RemovalListener = Callable[[list[Removal]], None]

_QUEUED, _WRITING, _FINISHED, _ABANDONED = range(4)


class SpillTicket:
    """One hand-over to the writer; `abandon` withdraws it if the writer has not started it."""

    __slots__ = ("_lock", "_state", "on_done", "records")

    def __init__(self, records: list[SpillRecord], on_done: SpillDone) -> None:
        self.records = records
        self.on_done = on_done
        self._state = _QUEUED
        self._lock = threading.Lock()

    def abandon(self) -> bool:
        """True when withdrawn: the records will not be written and `on_done` is not called."""
        with self._lock:
            if self._state == _QUEUED:
                self._state = _ABANDONED
                return True
            return False

    def _begin(self) -> bool:
        with self._lock:
            if self._state != _QUEUED:
                return False
            self._state = _WRITING
            return True

    def _finish(self) -> None:
        with self._lock:
            self._state = _FINISHED


class _Call:
    __slots__ = ("fn", "future")

    def __init__(self, fn: Callable[[OutboxStore], Any], future: asyncio.Future[Any]) -> None:
        self.fn = fn
        self.future = future


class _Stop:
    __slots__ = ("future",)

    def __init__(self, future: asyncio.Future[None]) -> None:
        self.future = future


_Op = SpillTicket | _Call | _Stop


class Outbox:
    """A disk outbox for one client: events that cannot be sent now wait here, across restarts.

    `on_removals` hears, on the loop, about rows deleted without delivery. `rows_added` is set
    on the loop whenever spilled rows were committed (the drainer waits on it).
    """

    def __init__(self, store: OutboxStore, *, on_removals: RemovalListener | None = None) -> None:
        self.store = store
        self.on_removals = on_removals
        # An asyncio.Event binds to a loop only when first awaited, so it can be made here.
        self.rows_added = asyncio.Event()
        self._queue: queue.SimpleQueue[_Op] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._failed: OutboxUnavailable | None = None
        self._stopping = False

    @property
    def path(self) -> str:
        return str(self.store.path)

    @property
    def started(self) -> bool:
        return self._thread is not None

    @property
    def usable(self) -> bool:
        """False once the file turned out unusable (then the pipeline drops as if it had none)."""
        return self._failed is None and not self._stopping

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the writer thread, which opens the file first. Idempotent."""
        if self._thread is not None:
            return
        self._loop = loop
        self._thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)
        self._thread.start()

    # -- from the loop ------------------------------------------------------------------------

    def spill(self, records: list[SpillRecord], on_done: SpillDone) -> SpillTicket:
        """Queue `records` for the next transaction; `on_done(committed)` runs on the loop."""
        ticket = SpillTicket(records, on_done)
        self._queue.put(ticket)
        return ticket

    async def claim(self, limit: int, lease_seconds: float) -> Claim:
        return await self._call(lambda store: store.claim(limit, lease_seconds))

    async def remove(self, row_id: int) -> bool:
        return await self._call(lambda store: store.remove(row_id))

    async def release(self, row_ids: list[int] | None = None) -> None:
        await self._call(lambda store: store.release(row_ids))

    async def count(self) -> int:
        """Events stored for this client's target."""
        return await self._call(lambda store: store.count())

    async def close(self) -> None:
        """Stop the writer after what is queued, and close the file. Idempotent."""
        self._stopping = True
        if self._thread is None or not self._thread.is_alive():
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put(_Stop(future))
        await future

    async def _call(self, fn: Callable[[OutboxStore], T]) -> T:
        if self._failed is not None:
            raise self._failed
        if self._thread is None:
            raise OutboxUnavailable("the outbox was not started")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put(_Call(fn, future))
        return await future

    # -- the writer thread --------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._guarded(self.store.open)
        except OutboxUnavailable as exc:
            self._fail(exc)
        except Exception as exc:
            self._fail(OutboxUnavailable(f"cannot open {self.store.path}: {exc}"))
        held: list[_Op] = []
        while True:
            op = held.pop(0) if held else self._queue.get()
            if isinstance(op, _Stop):
                self._stop(op)
                return
            if isinstance(op, _Call):
                self._run_call(op)
                continue
            tickets = [op]
            while True:  # everything handed over meanwhile goes into the same transaction
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if isinstance(more, SpillTicket):
                    tickets.append(more)
                else:
                    held.append(more)
                    break
            self._write(tickets)

    def _write(self, tickets: list[SpillTicket]) -> None:
        started = [ticket for ticket in tickets if ticket._begin()]
        if not started:
            return
        removals: list[Removal] = []
        committed = False
        if self._failed is None:
            records = [record for ticket in started for record in ticket.records]
            try:
                removals = self._guarded(lambda: self.store.append(records))
                committed = True
            except Exception as exc:
                logger.warning(
                    "errlink: could not write %d event(s) to the outbox %s: %r",
                    len(records),
                    self.store.path,
                    exc,
                    extra=INTERNAL,
                )
        for ticket in started:
            ticket._finish()
        results = [(ticket.on_done, committed) for ticket in started]
        self._to_loop(self._report_spills, results, removals)

    def _report_spills(
        self, results: list[tuple[SpillDone, bool]], removals: list[Removal]
    ) -> None:
        for on_done, committed in results:
            on_done(committed)
        if any(committed for _, committed in results):
            self.rows_added.set()
        self._report_removals(removals)

    def _report_removals(self, removals: list[Removal]) -> None:
        if removals and self.on_removals is not None:
            self.on_removals(removals)

    def _run_call(self, call: _Call) -> None:
        if self._failed is not None:
            self._to_loop(_settle, call.future, None, self._failed)
            return
        try:
            result = self._guarded(lambda: call.fn(self.store))
        except Exception as exc:
            self._to_loop(_settle, call.future, None, exc)
            return
        self._to_loop(_settle, call.future, result, None)
        if isinstance(result, Claim):
            self._to_loop(self._report_removals, result.removals)

    def _stop(self, stop: _Stop) -> None:
        try:
            self._guarded(self.store.close)
        except Exception as exc:
            logger.debug("errlink: closing the outbox: %r", exc, extra=INTERNAL)
        # Whatever was queued behind the stop is refused.
        while True:
            try:
                op = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(op, SpillTicket) and op._begin():
                op._finish()
                self._to_loop(op.on_done, False)
            elif isinstance(op, _Call | _Stop):
                self._to_loop(_settle, op.future, None, None)
        self._to_loop(_settle, stop.future, None, None)

    def _guarded(self, fn: Callable[[], T]) -> T:
        """Run a store call, holding the fork lock, retrying while other processes hold the DB."""
        deadline = time.monotonic() + _BUSY_PATIENCE
        while True:
            with _fork_lock:
                try:
                    return fn()
                except Exception as exc:
                    if not is_busy(exc) or time.monotonic() >= deadline:
                        raise
            time.sleep(random.uniform(0.005, 0.05))

    def _fail(self, exc: OutboxUnavailable) -> None:
        self._failed = exc
        logger.warning(
            "errlink: the outbox is disabled: %s; undeliverable events are dropped instead",
            exc,
            extra=INTERNAL,
        )

    def _to_loop(self, callback: Callable[..., None], *args: Any) -> None:
        loop = self._loop
        if loop is None:
            return
        try:
            loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the loop is closed: nobody is left to tell
            pass


def _settle(future: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)


# A fork while the writer is inside SQLite would leave SQLite's own mutexes locked in the
# child; holding this lock around every store call makes fork() wait for the call to finish.
_fork_lock = threading.Lock()
# Whether this fork's `before` hook ran: this module may be imported (by the loop thread's
# warm-up, `sync/_warmup.py`) while a fork waits, and a hook registered then is called after
# the fork without having been called before it.
_held_for_fork = False


def _hold_for_fork() -> None:
    global _held_for_fork
    _fork_lock.acquire()
    _held_for_fork = True


def _release_in_parent() -> None:
    global _held_for_fork
    if _held_for_fork:
        _held_for_fork = False
        _fork_lock.release()


def _reinit_fork_lock() -> None:
    global _fork_lock, _held_for_fork
    _fork_lock = threading.Lock()
    _held_for_fork = False


os.register_at_fork(
    before=_hold_for_fork, after_in_parent=_release_in_parent, after_in_child=_reinit_fork_lock
)
