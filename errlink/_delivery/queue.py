"""The hand-over: a bounded buffer fed from any thread, and the books of what it holds.

`HandOver.offer` is what capture calls: O(1), thread-safe, never blocks. Every accepted job is
numbered, so "everything handed over before now is settled" can be awaited (`wait_settled`)
even though jobs finish out of order. A job is held from `offer` until `release`, whether it
waits in the buffer, is being sent, waits to retry, or is being written to the outbox.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from .._wire.envelope import Item
from .attachment import Attachment
from .kinds import ItemKind
from .stats import Stats

# Spill rather than wait once this share of queue_size is held, so capture does not overflow.
_BACKLOG_SHARE = 0.75


class Job:
    """One item on its way: the payload before and after encoding, and how it was settled."""

    __slots__ = (
        "attachment_bytes",
        "attachments",
        "copied",
        "envelope_headers",
        "event_id",
        "extra_items",
        "handed_off",
        "kind",
        "payload",
        "quantity",
        "raw",
        "seq",
        "settled",
        "size_hint",
    )

    def __init__(
        self,
        kind: ItemKind,
        raw: Any,
        size_hint: int,
        envelope_headers: dict[str, Any] | None = None,
    ) -> None:
        self.seq = -1
        self.kind = kind
        self.raw = raw  # what capture handed over: an event dict, or any payload of the kind
        self.size_hint = size_hint
        self.settled = False
        self.event_id = ""
        self.payload: bytes | None = None  # set once encoded
        self.handed_off = False  # given to the outbox writer, which settles it
        # A copy is in the outbox already (written by an exit path while the job was being
        # sent): a later spill settles it without writing it again.
        self.copied = False
        self.quantity = 1  # what the item counts as in client reports (records, for logs)
        # What the item's envelope carries besides it: headers (the DSC as ``trace``) and items
        # that travel with it (an event's attachments).
        self.envelope_headers = envelope_headers
        self.extra_items: list[Item] | None = None
        # An event's attachments until the sender reads them into `extra_items`, and the bytes
        # they hold of the queue's attachment budget (`attachments.py`).
        self.attachments: list[Attachment] | None = None
        self.attachment_bytes = 0

    @property
    def category(self) -> str:
        return self.kind.category


class Wakeup:
    """An asyncio.Event on one loop that any thread may set."""

    __slots__ = ("_event", "_loop", "_thread")

    def __init__(self, loop: asyncio.AbstractEventLoop, thread: int | None) -> None:
        self._loop = loop
        self._thread = thread
        self._event = asyncio.Event()

    def bind_thread(self, thread: int) -> None:
        self._thread = thread

    def set(self) -> None:
        if self._thread == threading.get_ident():
            self._event.set()
            return
        try:
            self._loop.call_soon_threadsafe(self._event.set)
        except RuntimeError:  # loop closed: the job stays buffered and is counted at close
            pass

    async def wait(self) -> None:
        await self._event.wait()
        self._event.clear()


class HandOver:
    """The buffer between capture (any thread) and the senders (one loop), with its books.

    At most `queue_size` jobs of the kinds that share the main queue are held at once, and at
    most `kind.own_queue` of a kind with a bound of its own; and all jobs held together weigh
    at most `max_bytes` by their `size_hint` (a job alone is always taken: it is trimmed when
    encoded). Beyond that, and once closed, an offered job is refused (the caller counts it as
    "queue_overflow").
    """

    def __init__(
        self, queue_size: int, max_in_flight: int, stats: Stats, *, max_bytes: int = 1 << 62
    ) -> None:
        self._queue_size = queue_size
        self._max_bytes = max_bytes
        # Spill once the buffered jobs weigh this much (what is being sent or written counts
        # against max_bytes, not against this mark).
        self._byte_backlog = int(max_bytes * _BACKLOG_SHARE)
        self.held_bytes = 0  # the size_hint of every job held
        self._buffered_bytes = 0  # of the jobs in the buffer
        self._stats = stats
        # Spill once this many events are held (not counting those being written already),
        # leaving room for the senders' own jobs below queue_size.
        self.backlog = max(1, min(int(queue_size * _BACKLOG_SHARE), queue_size - max_in_flight - 1))
        self.lock = threading.Lock()
        self._buffer: deque[Job] = deque()
        self.held = 0  # every job offered and not yet released
        self._held_by_pool: dict[str, int] = {}  # "" is the main queue; else a kind's own bound
        self._next_seq = 0
        self._in_flight: dict[int, Job] = {}  # by seq
        self._idle = False  # a sender is waiting for work: the next offer must wake it
        self.closed = False
        self.spilling = 0  # handed to the outbox writer, not yet written
        self._spill_requested = False
        self.senders_wakeup: Wakeup | None = None
        self.spill_wakeup: Wakeup | None = None
        self._flush_waiters: list[tuple[int, asyncio.Future[None]]] = []
        # Told when a job carrying attachments is no longer held, or is dropped.
        self.on_forget: Callable[[Job], None] | None = None
        self.on_drop: Callable[[Job, str], None] | None = None

    # -- any thread ---------------------------------------------------------------------------

    def offer(self, job: Job) -> tuple[bool, int]:
        """Buffer `job`; returns whether it was accepted and how many jobs were held before."""
        pool = "" if job.kind.own_queue is None else job.kind.item_type
        bound = self._queue_size if job.kind.own_queue is None else job.kind.own_queue
        with self.lock:
            held = self.held
            pool_held = self._held_by_pool.get(pool, 0)
            size = job.size_hint
            accepted = (
                not self.closed
                and pool_held < bound
                and (self.held_bytes + size <= self._max_bytes or self.held_bytes == 0)
            )
            if accepted:
                job.seq = self._next_seq
                self._next_seq += 1
                self.held += 1
                self.held_bytes += size
                self._buffered_bytes += size
                self._held_by_pool[pool] = pool_held + 1
                self._buffer.append(job)
                self._stats.record_queued()
                wake, self._idle = self._idle, False
                spill = (
                    self.spill_wakeup is not None
                    and not self._spill_requested
                    and self._over_backlog()
                )
                if spill:
                    self._spill_requested = True
        if accepted:
            if wake and self.senders_wakeup is not None:
                self.senders_wakeup.set()
            if spill and self.spill_wakeup is not None:
                self.spill_wakeup.set()
        return accepted, held

    def pending(self) -> int:
        with self.lock:
            return self.held

    # -- the loop -----------------------------------------------------------------------------

    def take(self) -> Job | None:
        """The oldest buffered job, now in flight; None (and the next offer wakes) when empty."""
        with self.lock:
            if not self._buffer:
                self._idle = True
                return None
            job = self._buffer.popleft()
            self._buffered_bytes -= job.size_hint
            self._in_flight[job.seq] = job
            return job

    def take_backlog(self, spill_possible: bool) -> Job | None:
        """The oldest buffered job while more than `backlog` are held (or the buffer weighs
        more than its share of `max_bytes`), for the spiller."""
        with self.lock:
            if not (self._over_backlog() and self._buffer and spill_possible):
                self._spill_requested = False
                return None
            job = self._buffer.popleft()
            self._buffered_bytes -= job.size_hint
            self._in_flight[job.seq] = job
            return job

    def take_for_exit(self) -> Job | None:
        """The oldest buffered job, now in flight, for an exit path; None when the buffer is
        empty. Unlike `take`, an empty buffer does not mark a sender as waiting."""
        with self.lock:
            if not self._buffer:
                return None
            job = self._buffer.popleft()
            self._buffered_bytes -= job.size_hint
            self._in_flight[job.seq] = job
            return job

    def held_jobs(self, timeout: float = -1) -> list[Job] | None:
        """The jobs held now (in flight, then buffered), oldest first; None when the lock was
        not free within `timeout` seconds (an exit path must not wait on a stuck holder)."""
        if not self.lock.acquire(timeout=timeout):
            return None
        try:
            return [*sorted(self._in_flight.values(), key=lambda job: job.seq), *self._buffer]
        finally:
            self.lock.release()

    def _over_backlog(self) -> bool:
        """Whether to spill (needs the lock)."""
        return self.held - self.spilling > self.backlog or self._buffered_bytes > self._byte_backlog

    def release(self, job: Job) -> None:
        """The job is no longer held (settled, or handed to the outbox and written)."""
        self._forget(job)
        self.notify_flush_waiters()

    def take_leftovers(self) -> list[Job]:
        """Empty the buffer at close; the jobs are released and must still be settled."""
        with self.lock:
            leftovers = list(self._buffer)
            self._buffer.clear()
            self._buffered_bytes = 0
        for job in leftovers:
            self._forget(job)
        return leftovers

    def _forget(self, job: Job) -> None:
        if job.attachment_bytes and self.on_forget is not None:
            self.on_forget(job)
        pool = "" if job.kind.own_queue is None else job.kind.item_type
        with self.lock:
            self._in_flight.pop(job.seq, None)
            self.held -= 1
            self.held_bytes -= job.size_hint
            self._held_by_pool[pool] -= 1

    def _low_watermark(self) -> int:
        """The lowest sequence number not yet settled (needs the lock)."""
        low = self._buffer[0].seq if self._buffer else self._next_seq
        if self._in_flight:
            low = min(low, min(self._in_flight))
        return low

    async def wait_settled(self, deadline: float | None) -> bool:
        """Wait until every job offered before now is released; False if `deadline` came first."""
        loop = asyncio.get_running_loop()
        with self.lock:
            target = self._next_seq
            if self._low_watermark() >= target:
                return True
        waiter = (target, loop.create_future())
        self._flush_waiters.append(waiter)
        try:
            timeout = None if deadline is None else max(0.0, deadline - loop.time())
            await asyncio.wait([waiter[1]], timeout=timeout)
        finally:
            if waiter in self._flush_waiters:
                self._flush_waiters.remove(waiter)
        return waiter[1].done()

    def notify_flush_waiters(self) -> None:
        if not self._flush_waiters:
            return
        with self.lock:
            low = self._low_watermark()
        for target, future in self._flush_waiters:
            if target <= low and not future.done():
                future.set_result(None)

    # -- settling: each job exactly once, as sent, dropped with a reason, or spilled ------------

    def settle_sent(self, job: Job) -> None:
        if not job.settled:
            job.settled = True
            self._stats.record_sent()

    def settle_dropped(self, job: Job, reason: str) -> None:
        if not job.settled:
            job.settled = True
            self._stats.record_drop(reason, job.category, job.quantity, queued=True)
            if (job.attachments or job.extra_items) and self.on_drop is not None:
                self.on_drop(job, reason)

    def settle_spilled(self, job: Job) -> None:
        if not job.settled:
            job.settled = True
            job.payload = None
            self._stats.record_spilled()
