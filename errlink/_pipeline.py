"""The delivery pipeline: a bounded buffer fed from any thread, drained by sender tasks on one loop.

`Pipeline.submit` is the hand-over from capture code: O(1), thread-safe, never blocks or raises.
Up to `max_in_flight` sender tasks turn events into envelopes and send them, honouring the
server's rate limits, retrying transient faults with exponential backoff and full jitter, and
attaching a client report of everything dropped to the next envelope that goes out.

Every submitted event is settled exactly once, as sent, as dropped with a reason, or as spilled
to the disk outbox, so `submitted == sent + dropped + spilled + pending()` holds whenever the
pipeline is quiescent.

With an outbox (`outbox=`), events that cannot be sent now are spilled instead of dropped: after
the last retry of a transient fault, while the server seems down, while their category is rate
limited, when the queue is three quarters full (a spiller task moves the oldest queued events to
disk so that capture does not overflow it), and at `aclose` for whatever is still queued.
Spilling happens on the loop, which hands the encoded payload to the outbox's writer thread;
capture never touches the disk. A drain task sends the outbox's events back out (see
`_outbox_drain.py`).

errlink never reports on itself. Every log record errlink writes carries the attribute
``errlink_internal = True`` (passed as ``extra=LOG_EXTRA``), so a logging integration can skip it,
and the `SENDING` context variable is true inside the sender tasks (and the threads they start), so
an HTTP or breadcrumb integration can ignore the requests errlink makes itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import enum
import logging
import random
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any

from ._dsn import Dsn
from ._envelope import Envelope, Item
from ._ids import new_event_id
from ._json import dumps
from ._limits import fit_event
from ._outbox import Outbox, SpillTicket
from ._outbox_drain import OutboxDrainer, SendResult
from ._outbox_store import Removal, SpillRecord, StoredEvent
from ._pacing import Pacer
from ._ratelimit import RateLimits, category_for_item
from ._stats import Stats
from ._transport import Transport, TransportError

logger = logging.getLogger("errlink")
LOG_EXTRA = {"errlink_internal": True}
SENDING: contextvars.ContextVar[bool] = contextvars.ContextVar("errlink_sending", default=False)

REPORT_CATEGORY = category_for_item("client_report")
ENCODE_IN_THREAD_OVER = 256 * 1024
# Resources held by a transport are released even when aclose's deadline has already passed.
_TRANSPORT_CLOSE_GRACE = 0.1
# With an outbox, aclose keeps this share of its timeout (at most _SPILL_RESERVE seconds) to
# write what is still queued to disk, and waits at least _SPILL_MIN_WAIT for that write.
_SPILL_RESERVE = 0.5
_SPILL_MIN_WAIT = 0.25
# Spill rather than wait once this share of queue_size is held, so capture does not overflow.
_BACKLOG_SHARE = 0.75
DRAIN_BATCH = 20

BeforeSendAsync = Callable[[dict[str, Any]], Awaitable["dict[str, Any] | None"]]


class _Outcome(enum.Enum):
    DELIVERED = enum.auto()
    RATE_LIMITED = enum.auto()
    REFUSED = enum.auto()
    TRANSIENT = enum.auto()


class _Job:
    __slots__ = (
        "category",
        "event",
        "event_id",
        "handed_off",
        "item_type",
        "payload",
        "seq",
        "settled",
        "size_hint",
    )

    def __init__(self, seq: int, event: dict[str, Any], size_hint: int) -> None:
        self.seq = seq
        self.event = event
        self.size_hint = size_hint
        self.item_type = "transaction" if event.get("type") == "transaction" else "event"
        self.category = category_for_item(self.item_type)
        self.settled = False
        self.event_id = ""
        self.payload: bytes | None = None  # set once encoded
        self.handed_off = False  # given to the outbox writer, which settles it


class Pipeline:
    """A bounded queue of events and the sender tasks that deliver them through a `Transport`.

    Drop reasons it records: "queue_overflow" (the buffer was full, or the pipeline was closed:
    `submit` returned False), "before_send" (`before_send_async` returned None),
    "ratelimit_backoff" (the server limits the category), "send_error" (the server refused the
    event: 413 and other 4xx), "network_error" (5xx or network faults on every attempt, or
    still undelivered when `aclose` ran out of time), "internal_sdk_error" (the event could not
    be encoded). With an `outbox`, "network_error", "ratelimit_backoff" and close-time leftovers
    become spills, and the outbox adds "cache_overflow" and "network_error" (expired).
    """

    def __init__(
        self,
        *,
        transport: Transport,
        stats: Stats,
        sdk_info: dict[str, Any],
        dsn: Dsn | None = None,
        queue_size: int = 1000,
        max_in_flight: int = 4,
        max_event_bytes: int = 1_000_000,
        retry_attempts: int = 3,
        retry_base_delay: float = 0.5,
        retry_max_delay: float = 8.0,
        before_send_async: BeforeSendAsync | None = None,
        outbox: Outbox | None = None,
        outbox_drain_rate: float = 100.0,
        outbox_lease_seconds: float = 300.0,
    ) -> None:
        if queue_size < 1:
            raise ValueError(f"queue_size must be at least 1, got {queue_size!r}")
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, got {max_in_flight!r}")
        if retry_attempts < 1:
            raise ValueError(f"retry_attempts must be at least 1, got {retry_attempts!r}")
        if not 0 < retry_base_delay <= retry_max_delay:
            raise ValueError(
                "retry delays must satisfy 0 < retry_base_delay <= retry_max_delay, got "
                f"{retry_base_delay!r} and {retry_max_delay!r}"
            )
        self._transport = transport
        self._stats = stats
        self._sdk_info = sdk_info
        self._dsn_text = str(dsn) if dsn is not None else None
        self._queue_size = queue_size
        self._max_in_flight = max_in_flight
        self._max_event_bytes = max_event_bytes
        self._retry_attempts = retry_attempts
        self._retry_base_delay = retry_base_delay
        self._retry_max_delay = retry_max_delay
        self._before_send_async = before_send_async
        self._outbox = outbox
        self._outbox_drain_rate = outbox_drain_rate
        self._outbox_lease_seconds = outbox_lease_seconds
        # Spill once this many events are held (not counting those being written already),
        # leaving room for the senders' own jobs below queue_size.
        self._backlog = max(
            1, min(int(queue_size * _BACKLOG_SHARE), queue_size - max_in_flight - 1)
        )
        if outbox is not None:
            outbox.on_removals = self._on_outbox_removals

        # Shared with submitting threads, guarded by _lock.
        self._lock = threading.Lock()
        self._buffer: deque[_Job] = deque()
        self._held = 0  # buffered + being sent or waiting to retry
        self._next_seq = 0
        self._in_flight: set[int] = set()
        self._idle = False  # a sender is waiting for work: the next submit must wake it
        self._closed = False

        # Loop side.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._wakeup: asyncio.Event | None = None
        self._senders: list[asyncio.Task[None]] = []
        self._drainer: OutboxDrainer | None = None
        self._spill_wakeup: asyncio.Event | None = None
        self._spill_requested = False  # guarded by _lock
        self._spilling = 0  # handed to the outbox writer, not yet written; guarded by _lock
        self._interrupted: list[_Job] = []  # encoded jobs whose sender was cancelled at close
        self._flush_waiters: list[tuple[int, asyncio.Future[None]]] = []
        # Set when aclose begins. An asyncio.Event binds to a loop only when first awaited, so
        # it can be made here, before the pipeline knows its loop.
        self._closing = asyncio.Event()
        self._gave_up_at_close = False
        self._close_task: asyncio.Task[bool] | None = None
        self._rate_limits = RateLimits()
        self._consecutive_failures = 0
        self._resume_at = 0.0
        self._last_failure = ""
        self._outage_logged = False
        self._logged_refusals: set[object] = set()
        self._pacer = Pacer(queue_size, stats.live_sent)

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        return self._loop

    @property
    def rate_limits(self) -> RateLimits:
        return self._rate_limits

    @property
    def outbox(self) -> Outbox | None:
        return self._outbox

    def pending(self) -> int:
        """Events submitted and not yet settled (buffered, being sent, or waiting to retry)."""
        with self._lock:
            return self._held

    # -- hand-over (any thread) -------------------------------------------------------------------

    def submit(self, event: dict[str, Any], size_hint: int = 0) -> bool:
        """Queue `event` for delivery; False when it was dropped as "queue_overflow" instead.

        Thread-safe and O(1); never blocks, awaits or raises. At most `queue_size` events are
        held at once (buffered or being sent); beyond that, and after `aclose`, the new event is
        dropped. Events submitted before `start` wait in the buffer.
        """
        try:
            job = _Job(-1, event, size_hint)
            with self._lock:
                held = self._held
                accepted = not self._closed and held < self._queue_size
                if accepted:
                    job.seq = self._next_seq
                    self._next_seq += 1
                    self._held += 1
                    self._buffer.append(job)
                    self._stats.record_queued()
                    wake, self._idle = self._idle, False
                    spill = (
                        self._spill_wakeup is not None
                        and not self._spill_requested
                        and self._held - self._spilling > self._backlog
                    )
                    if spill:
                        self._spill_requested = True
            if accepted:
                if wake:
                    self._wake(self._wakeup)
                if spill:
                    self._wake(self._spill_wakeup)
            else:
                self._stats.record_drop("queue_overflow", job.category)
            if self._pacer.due(held) and self._senders_elsewhere():
                self._pacer.share_thread()
            return accepted
        except Exception:
            logger.warning("errlink: could not queue an event", exc_info=True, extra=LOG_EXTRA)
            return False

    def _senders_elsewhere(self) -> bool:
        return self._loop is not None and self._loop_thread not in (None, threading.get_ident())

    async def pace(self) -> None:
        """For a coroutine that captured on the pipeline's loop: give the senders a share.

        Returns at once unless the queue is half full; then waits a millisecond so the
        senders can run, which a tight capture loop that never suspends would not allow.
        """
        if self._pacer.due(self._held) and not self._closed and self._senders:
            await self._pacer.share_loop()

    def _wake(self, wakeup: asyncio.Event | None) -> None:
        loop = self._loop
        if loop is None or wakeup is None:
            return
        if self._loop_thread == threading.get_ident():
            wakeup.set()
            return
        try:
            loop.call_soon_threadsafe(wakeup.set)
        except RuntimeError:  # loop closed: the event stays buffered and is counted at close
            pass

    # -- lifecycle (the pipeline's loop) ------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Bind to `loop` (default: the running loop) and start the senders. Idempotent.

        `loop` may run in another thread; the senders are then started there.
        """
        if loop is None:
            loop = asyncio.get_running_loop()
        if self._loop is loop:
            return
        if self._loop is not None:
            raise RuntimeError("this pipeline already runs on another event loop")
        self._loop = loop
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop or not loop.is_running():
            self._start_senders()
        else:
            loop.call_soon_threadsafe(self._start_senders)

    def _start_senders(self) -> None:
        if self._closed or self._senders:
            return
        assert self._loop is not None
        self._wakeup = asyncio.Event()
        # A fresh context: senders must not inherit the scope of whoever happened to start them.
        context = contextvars.Context()
        context.run(SENDING.set, True)
        for index in range(self._max_in_flight):
            coroutine = self._run_sender()
            task = context.run(self._loop.create_task, coroutine, name=f"errlink-sender-{index}")
            self._senders.append(task)
        if self._outbox is not None:
            self._outbox.start(self._loop)
            self._spill_wakeup = asyncio.Event()
            coroutine = self._run_spiller()
            task = context.run(self._loop.create_task, coroutine, name="errlink-spiller")
            self._senders.append(task)
            self._drainer = OutboxDrainer(
                self._outbox,
                send=self._send_stored,
                stats=self._stats,
                rate_limits=self._rate_limits,
                server_paused_for=self._server_paused_for,
                rate=self._outbox_drain_rate,
                lease_seconds=self._outbox_lease_seconds,
                batch_size=DRAIN_BATCH,
                retry_base_delay=self._retry_base_delay,
                retry_max_delay=self._retry_max_delay,
            )
            coroutine = self._drainer.run()
            task = context.run(self._loop.create_task, coroutine, name="errlink-outbox-drain")
            self._senders.append(task)

    async def flush(self, timeout: float | None) -> bool:
        """Wait until every event submitted before this call is delivered or dropped.

        Also sends a pending client report. Returns False when `timeout` (seconds; None waits as
        long as it takes) ran out first; never waits past it. Must run on the pipeline's loop
        (it starts the pipeline on the running loop when it was not started yet).
        """
        loop = self._bind_running_loop("flush")
        if self._close_task is not None and self._close_task.done():
            return self.pending() == 0
        deadline = None if timeout is None else loop.time() + max(0.0, timeout)
        settled = await self._wait_settled(deadline)
        await self._send_report_alone(deadline)
        return settled

    async def aclose(self, timeout: float) -> bool:
        """Flush, then stop the senders and close the transport, all within one `timeout`.

        From the start of the call `submit` refuses new events ("queue_overflow"). Events still
        buffered, being sent or waiting to retry when the deadline passes are counted as dropped
        with reason "network_error", so `pending()` is 0 afterwards; with an outbox they are
        written to it instead (the last part of `timeout`, at most 0.5 s, is kept for that).
        Close cuts retry backoffs short, and once a send fails while closing nothing more is
        tried: those events are dropped (or spilled) at once, so a server that is down does not
        hold up the process's exit for all of `timeout`.
        Returns True when everything was delivered, dropped or written to the outbox in time.
        Idempotent: later calls wait for the first and return its result. Must run on the
        pipeline's loop.
        """
        loop = self._bind_running_loop("aclose")
        if self._close_task is None:
            self._close_task = loop.create_task(self._close(timeout), name="errlink-close")
        # Shielded: a caller cancelled mid-close must not leave the pipeline half closed.
        return await asyncio.shield(self._close_task)

    async def _close(self, timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        timeout = max(0.0, timeout)
        deadline = loop.time() + timeout
        with self._lock:
            self._closed = True
        self._closing.set()
        spilling = self._outbox_usable()
        send_until = deadline - (min(_SPILL_RESERVE, timeout / 2) if spilling else 0.0)
        settled = await self._wait_settled(send_until)
        await self._send_report_alone(send_until)
        await self._stop_senders()
        with self._lock:
            leftovers = list(self._buffer)
            self._buffer.clear()
            self._held -= len(leftovers)
        leftovers += self._interrupted
        self._interrupted = []
        if spilling and leftovers:
            settled = await self._spill_leftovers(leftovers, deadline)
        for job in leftovers:
            if not job.handed_off:  # a write still under way settles its job when it ends
                self._settle_dropped(job, "network_error")
        self._notify_flush_waiters()
        if self._outbox is not None:
            await self._close_outbox(deadline)
        grace = max(deadline - loop.time(), _TRANSPORT_CLOSE_GRACE)
        try:
            await asyncio.wait_for(self._transport.aclose(), grace)
        except Exception as exc:
            logger.warning("errlink: closing the transport failed: %r", exc, extra=LOG_EXTRA)
        # Events given up on because the server failed during close were not delivered in
        # time, as if the deadline had passed (unless they went to the outbox).
        return settled and not (self._gave_up_at_close and not spilling)

    async def _stop_senders(self) -> None:
        senders, self._senders = self._senders, []
        for task in senders:
            task.cancel()
        await asyncio.gather(*senders, return_exceptions=True)

    async def _spill_leftovers(self, jobs: list[_Job], deadline: float) -> bool:
        """Write what close found unsent to the outbox; True when all of it was written."""
        loop = asyncio.get_running_loop()
        waiting: list[tuple[asyncio.Future[bool], SpillTicket]] = []
        spilled_jobs: list[_Job] = []
        for job in jobs:
            ready = job.payload is not None
            if not ready and (loop.time() >= deadline or not await self._prepare(job)):
                continue  # settled as dropped, here or by the caller
            written: asyncio.Future[bool] = loop.create_future()
            ticket = self._spill(job, "network_error", held=False, written=written)
            waiting.append((written, ticket))
            spilled_jobs.append(job)
        if not waiting:
            return all(job.settled for job in jobs)
        budget = max(deadline - loop.time(), _SPILL_MIN_WAIT)
        await asyncio.wait([future for future, _ in waiting], timeout=budget)
        all_written = True
        for (future, ticket), job in zip(waiting, spilled_jobs, strict=True):
            if not future.done():
                all_written = False
                if ticket.abandon():  # never started: the caller counts it as "network_error"
                    job.handed_off = False
            elif not future.result():
                all_written = False
        return all_written and all(job.settled for job in jobs)

    async def _close_outbox(self, deadline: float) -> None:
        assert self._outbox is not None
        if not self._outbox.started:
            return
        loop = asyncio.get_running_loop()
        try:
            budget = max(deadline - loop.time(), _SPILL_MIN_WAIT)
            if self._outbox.usable:
                await asyncio.wait_for(self._outbox.release(), budget)
            budget = max(deadline - loop.time(), _TRANSPORT_CLOSE_GRACE)
            await asyncio.wait_for(self._outbox.close(), budget)
        except Exception as exc:
            logger.debug("errlink: closing the outbox: %r", exc, extra=LOG_EXTRA)

    def _bind_running_loop(self, what: str) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self.start(loop)
        elif self._loop is not loop:
            raise RuntimeError(f"Pipeline.{what}() must run on the pipeline's event loop")
        return loop

    # -- settlement tracking -------------------------------------------------------------------

    def _low_watermark(self) -> int:
        """The lowest sequence number not yet settled (needs _lock)."""
        low = self._buffer[0].seq if self._buffer else self._next_seq
        if self._in_flight:
            low = min(low, min(self._in_flight))
        return low

    async def _wait_settled(self, deadline: float | None) -> bool:
        # Sends finish out of order, so "everything before N" is tracked by sequence numbers.
        loop = asyncio.get_running_loop()
        with self._lock:
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

    def _notify_flush_waiters(self) -> None:
        if not self._flush_waiters:
            return
        with self._lock:
            low = self._low_watermark()
        for target, future in self._flush_waiters:
            if target <= low and not future.done():
                future.set_result(None)

    def _settle_sent(self, job: _Job) -> None:
        if not job.settled:
            job.settled = True
            self._stats.record_sent()

    def _settle_dropped(self, job: _Job, reason: str) -> None:
        if not job.settled:
            job.settled = True
            self._stats.record_drop(reason, job.category, queued=True)

    # -- senders --------------------------------------------------------------------------------

    async def _run_sender(self) -> None:
        self._loop_thread = threading.get_ident()
        assert self._wakeup is not None
        while True:
            job = self._take()
            if job is None:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            try:
                await self._process(job)
            except asyncio.CancelledError:
                if job.handed_off:
                    pass
                elif job.payload is not None and self._outbox_usable():
                    # Possibly already received by the server: spilling risks a copy, dropping
                    # risks a loss; a copy is the lesser harm (servers dedupe by event_id).
                    self._interrupted.append(job)
                else:
                    self._settle_dropped(job, "network_error")
                raise
            except Exception:
                logger.warning(
                    "errlink: internal error while sending an event; it was dropped",
                    exc_info=True,
                    extra=LOG_EXTRA,
                )
                if not job.handed_off:
                    self._settle_dropped(job, "internal_sdk_error")
            finally:
                if not job.handed_off:
                    self._release(job)

    async def _run_spiller(self) -> None:
        """Move the oldest queued events to the outbox while the queue is over its backlog mark.

        Woken by `submit` when the queue passes three quarters of `queue_size` (the senders may
        all be busy with a slow server), so capture does not overflow the queue.
        """
        assert self._spill_wakeup is not None
        while True:
            await self._spill_wakeup.wait()
            self._spill_wakeup.clear()
            while True:
                with self._lock:
                    over = self._held - self._spilling > self._backlog
                    if not (over and self._buffer and self._outbox_usable()):
                        self._spill_requested = False
                        break
                    job = self._buffer.popleft()
                    self._in_flight.add(job.seq)
                try:
                    if await self._prepare(job):
                        self._spill(job, "queue_overflow")
                except asyncio.CancelledError:
                    if not job.handed_off:
                        self._settle_dropped(job, "network_error")
                    raise
                finally:
                    if not job.handed_off:
                        self._release(job)
                await asyncio.sleep(0)  # one event at a time: the loop stays responsive

    def _take(self) -> _Job | None:
        with self._lock:
            if not self._buffer:
                self._idle = True
                return None
            job = self._buffer.popleft()
            self._in_flight.add(job.seq)
            return job

    def _release(self, job: _Job) -> None:
        with self._lock:
            self._in_flight.discard(job.seq)
            self._held -= 1
        self._notify_flush_waiters()

    async def _process(self, job: _Job) -> None:
        if not await self._run_async_hook(job):
            return
        if self._rate_limits.is_limited(job.category) and not self._outbox_usable():
            self._settle_dropped(job, "ratelimit_backoff")
            return
        if not await self._encode_job(job):
            return
        reason = self._spill_reason(job)
        if reason is not None:
            self._spill(job, reason)
            return
        assert job.payload is not None
        item = Item(job.item_type, job.payload, {"content_type": "application/json"})
        await self._deliver(job, job.event_id, item)

    async def _prepare(self, job: _Job) -> bool:
        """Run the async before_send and encode; False when the job was settled instead."""
        return await self._run_async_hook(job) and await self._encode_job(job)

    async def _run_async_hook(self, job: _Job) -> bool:
        if self._before_send_async is None:
            return True
        changed = await self._run_before_send(job.event)
        if changed is None:
            self._settle_dropped(job, "before_send")
            return False
        job.event = changed
        return True

    async def _encode_job(self, job: _Job) -> bool:
        event = job.event
        event_id = event.get("event_id")
        if not event_id:
            event_id = event["event_id"] = new_event_id()
        try:
            payload = await self._encode(event, job.size_hint)
        except Exception:
            logger.warning(
                "errlink: could not encode an event; it was dropped", exc_info=True, extra=LOG_EXTRA
            )
            self._settle_dropped(job, "internal_sdk_error")
            return False
        job.event = {}  # the payload is all that is needed from here on: free the dict early
        job.payload = payload
        job.event_id = str(event_id)
        return True

    async def _run_before_send(self, event: dict[str, Any]) -> dict[str, Any] | None:
        assert self._before_send_async is not None
        try:
            return await self._before_send_async(event)
        except Exception:
            logger.warning(
                "errlink: before_send raised; sending the event unchanged",
                exc_info=True,
                extra=LOG_EXTRA,
            )
            return event

    async def _encode(self, event: dict[str, Any], size_hint: int) -> bytes:
        if size_hint > ENCODE_IN_THREAD_OVER:
            return await asyncio.to_thread(encode_event, event, self._max_event_bytes)
        return encode_event(event, self._max_event_bytes)

    async def _deliver(self, job: _Job, event_id: str, item: Item) -> None:
        attempts = 0
        while attempts < self._retry_attempts and not self._gave_up_at_close:
            attempts += 1
            if self._outbox_usable() and self._server_paused_for() > 0:
                self._spill(job, "network_error")
                return
            await self._wait_while_server_down()
            if self._rate_limits.is_limited(job.category):
                self._spill_or_drop(job, "ratelimit_backoff")
                return
            envelope = Envelope(self._envelope_headers(event_id), [item])
            outcome = await self._send(envelope, carries_event=True)
            if outcome is _Outcome.DELIVERED:
                self._settle_sent(job)
                return
            if outcome is _Outcome.RATE_LIMITED:
                self._spill_or_drop(job, "ratelimit_backoff")
                return
            if outcome is _Outcome.REFUSED:
                self._settle_dropped(job, "send_error")
                return
            if self._closing.is_set():
                # The server failed while closing: what is left will not get through before
                # the process ends either, so nothing more is tried (see `aclose`).
                self._gave_up_at_close = True
            elif attempts < self._retry_attempts:
                await self._pause(self._retry_delay(attempts))
        spilled = self._spill_or_drop(job, "network_error")
        if not self._outage_logged:
            self._outage_logged = True
            logger.warning(
                "errlink: %s events after %d failed attempts (%s)%s",
                "spilling to the outbox" if spilled else "dropping",
                attempts,
                self._last_failure,
                " while closing" if self._gave_up_at_close else "; will keep trying",
                extra=LOG_EXTRA,
            )

    # -- the outbox -----------------------------------------------------------------------------

    def _outbox_usable(self) -> bool:
        return self._outbox is not None and self._outbox.usable

    def _spill_reason(self, job: _Job) -> str | None:
        """Why `job` should go to the outbox instead of the network now (None: send it)."""
        if not self._outbox_usable():
            return None
        if self._rate_limits.is_limited(job.category):
            return "ratelimit_backoff"
        if self._server_paused_for() > 0:
            return "network_error"
        return None

    def _spill_or_drop(self, job: _Job, reason: str) -> bool:
        if self._outbox_usable():
            self._spill(job, reason)
            return True
        self._settle_dropped(job, reason)
        return False

    def _spill(
        self,
        job: _Job,
        reason: str,
        *,
        held: bool = True,
        written: asyncio.Future[bool] | None = None,
    ) -> SpillTicket:
        """Hand an encoded job to the outbox writer; it is settled when the write finishes.

        `reason` is the drop reason if the write fails. `held`: the job still counts as held
        (a sender's job), to be released then; close's leftovers were released already.
        """
        assert self._outbox is not None
        assert job.payload is not None
        job.handed_off = True
        record = SpillRecord(job.event_id, job.item_type, job.category, job.payload)
        if held:
            with self._lock:
                self._spilling += 1

        def on_done(committed: bool) -> None:
            if held:
                with self._lock:
                    self._spilling -= 1
            if committed:
                self._settle_spilled(job)
            else:
                self._settle_dropped(job, reason)
            if held:
                self._release(job)
            if written is not None and not written.done():
                written.set_result(committed)
            if committed and self._drainer is not None:
                self._drainer.rows_added()

        return self._outbox.spill([record], on_done)

    def _settle_spilled(self, job: _Job) -> None:
        if not job.settled:
            job.settled = True
            job.payload = None
            self._stats.record_spilled()

    def _on_outbox_removals(self, removals: list[Removal]) -> None:
        for removal in removals:
            self._stats.record_outbox_drop(
                removal.reason, removal.category, removal.quantity, own=removal.own
            )

    async def _send_stored(self, stored: StoredEvent) -> SendResult:
        item = Item(stored.item_type, stored.payload, {"content_type": "application/json"})
        envelope = Envelope(self._envelope_headers(stored.event_id), [item])
        outcome = await self._send(envelope, carries_event=True)
        if outcome is _Outcome.DELIVERED:
            return "delivered"
        if outcome is _Outcome.RATE_LIMITED:
            return "rate_limited"
        if outcome is _Outcome.REFUSED:
            return "refused"
        return "transient"

    async def _send_report_alone(self, deadline: float | None) -> None:
        """Send the pending client report in an envelope of its own, within `deadline`."""
        if not self._stats.has_unreported_drops():
            return
        timeout = None if deadline is None else deadline - asyncio.get_running_loop().time()
        if timeout is not None and timeout <= 0:
            return
        token = SENDING.set(True)  # the send runs in a task that copies this context
        try:
            await asyncio.wait_for(self._send_report_when_server_up(), timeout)
        except asyncio.TimeoutError:
            pass
        finally:
            SENDING.reset(token)

    async def _send_report_when_server_up(self) -> None:
        await self._wait_while_server_down()
        await self._send(Envelope(self._envelope_headers(None)))

    async def _send(self, envelope: Envelope, *, carries_event: bool = False) -> _Outcome:
        """Send `envelope` with the pending client report attached; classify the answer."""
        report = None
        if not self._rate_limits.is_limited(REPORT_CATEGORY):
            report = self._stats.take_client_report()
        if report is not None:
            envelope.add_json("client_report", report)
        elif not envelope.items:
            return _Outcome.DELIVERED
        try:
            response = await self._transport.send(envelope)
        except TransportError as exc:
            self._restore_report(report)
            self._note_failure(str(exc))
            return _Outcome.TRANSIENT
        except asyncio.CancelledError:
            self._restore_report(report)
            raise
        except Exception as exc:
            self._restore_report(report)
            self._log_refusal_once(type(exc), "the transport raised %r", exc)
            return _Outcome.REFUSED
        status = response.status
        try:
            self._rate_limits.update(status, response.headers)
        except Exception as exc:  # headers from a custom transport may be anything
            logger.debug("errlink: unreadable rate limit headers: %r", exc, extra=LOG_EXTRA)
        if status >= 500:
            self._restore_report(report)
            self._note_failure(f"HTTP {status}")
            return _Outcome.TRANSIENT
        self._note_server_up()
        if 200 <= status < 300:
            return _Outcome.DELIVERED
        if status == 429:
            self._restore_report(report)
            return _Outcome.RATE_LIMITED
        if carries_event:  # the event was likely the problem: the report goes with the next one
            self._restore_report(report)
        self._log_refusal_once(status, "the server refused an envelope with HTTP %s", status)
        return _Outcome.REFUSED

    def _restore_report(self, report: dict[str, Any] | None) -> None:
        if report is not None:
            self._stats.restore_client_report(report)

    def _log_refusal_once(self, key: object, message: str, *args: object) -> None:
        if key in self._logged_refusals:
            return
        self._logged_refusals.add(key)
        logger.warning(
            "errlink: " + message + "; events like it are dropped (logged once)",
            *args,
            extra=LOG_EXTRA,
        )

    def _envelope_headers(self, event_id: str | None) -> dict[str, Any]:
        headers: dict[str, Any] = {}
        if event_id is not None:
            headers["event_id"] = event_id
        headers["sent_at"] = _rfc3339_now()
        if self._dsn_text is not None:
            headers["dsn"] = self._dsn_text
        headers["sdk"] = self._sdk_info
        return headers

    # -- backoff --------------------------------------------------------------------------------

    def _retry_delay(self, attempt: int) -> float:
        """Full jitter: anywhere between 0 and the capped exponential delay of this attempt."""
        ceiling = self._retry_base_delay * 2 ** min(attempt - 1, 32)
        return random.uniform(0.0, min(self._retry_max_delay, ceiling))

    def _note_failure(self, description: str) -> None:
        self._last_failure = description
        self._consecutive_failures += 1
        logger.debug("errlink: send failed: %s", description, extra=LOG_EXTRA)
        # One failure only delays its own retry; from the second in a row the server seems down
        # and every sender waits, for a time that grows with each failure and is never near 0,
        # so a dead server cannot make the senders spin.
        if self._consecutive_failures >= 2:
            exponent = min(self._consecutive_failures - 2, 32)
            pause = min(self._retry_max_delay, self._retry_base_delay * 2**exponent)
            resume_at = asyncio.get_running_loop().time() + pause * random.uniform(0.5, 1.0)
            self._resume_at = max(self._resume_at, resume_at)

    def _note_server_up(self) -> None:
        self._consecutive_failures = 0
        self._resume_at = 0.0
        self._outage_logged = False
        if self._drainer is not None:
            self._drainer.server_up()

    def _server_paused_for(self) -> float:
        """Seconds until the senders try the server again (0 when it is not considered down)."""
        if not self._resume_at:
            return 0.0
        return max(0.0, self._resume_at - asyncio.get_running_loop().time())

    async def _wait_while_server_down(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._closing.is_set():  # the pause may grow while waiting: others keep failing
            pause = self._resume_at - loop.time()
            if pause <= 0:
                return
            await self._pause(pause)

    async def _pause(self, seconds: float) -> None:
        """Sleep `seconds`, or until close begins: close cuts every backoff short."""
        if self._closing.is_set():
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)


def encode_event(event: dict[str, Any], max_bytes: int) -> bytes:
    """The event's JSON payload, trimmed to fit `max_bytes` (the one call site of the size cap)."""
    return fit_event(event, dumps, max_bytes)


def _rfc3339_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
