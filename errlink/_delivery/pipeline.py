"""The delivery pipeline: the parts of delivery put together, and their lifecycle.

`Pipeline.submit` (events) and `Pipeline.submit_item` (any declared item kind) are the hand-over
from capture code (`queue.py`): thread-safe, never blocks or raises; O(1) but for measuring the
item (`sizing.py`, in C) when the caller did not. Up to `max_in_flight` sender tasks
(`delivery.py`) prepare jobs (`prepare.py`), send them (`sender.py`), honour the server's rate
limits, retry transient faults with exponential backoff and full jitter while
sharing one view of the server's health (`health.py`), and, with an outbox, spill what cannot be
sent now (`spill.py`) and drain it later (`drain.py`).

Every submitted item is settled exactly once, as sent, as dropped with a reason, or as spilled
to the disk outbox, so `submitted == sent + dropped + spilled + pending()` holds whenever the
pipeline is quiescent.

errlink never reports on itself. Every log record errlink writes carries the attribute
``errlink_internal = True``, so a logging integration can skip it, and the `SENDING` context
variable is true inside the sender tasks (and the threads they start), so an HTTP or breadcrumb
integration can ignore the requests errlink makes itself.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._log import INTERNAL, logger
from .._options import MAX_ATTACHMENT_BYTES, QUEUE_MAX_ATTACHMENT_BYTES, QUEUE_MAX_BYTES
from .._wire.dsn import Dsn
from .attachment import Attachment
from .attachments import Attachments
from .kinds import ItemKind, event_kind
from .pacing import Pacer
from .queue import HandOver, Job, Wakeup
from .ratelimit import RateLimits
from .sending import SENDING
from .sizing import UNMEASURED_HEAD, estimate_size
from .stats import Stats
from .trace_header import take_trace_header

if TYPE_CHECKING:
    from .._outbox.writer import Outbox
    from .._wire.transport import Transport
    from .delivery import Delivery
    from .drain import OutboxDrainer
    from .exit_spill import ExitSaver
    from .prepare import BeforeSendAsync

# With an outbox, aclose keeps this share of its timeout (at most this many seconds) to write
# what is still queued to disk.
_SPILL_RESERVE = 0.5
DRAIN_BATCH = 20
# How often the flush hooks (session aggregates) hand their items over between flushes.
TICK_INTERVAL = 60.0


class Pipeline:
    """A bounded queue of items and the sender tasks that deliver them through a `Transport`.

    Drop reasons it records: "queue_overflow" (the buffer held `queue_size` items or
    `queue_max_bytes`, or the pipeline was closed: `submit` returned False), "before_send"
    (`before_send_async` returned None),
    "ratelimit_backoff" (the server limits the category), "send_error" (the server refused the
    event: 413 and other 4xx; or an item over its kind's size limit), "network_error" (5xx or
    network faults on every attempt, or still undelivered when `aclose` ran out of time),
    "internal_sdk_error" (the event could not be encoded). With an `outbox`, "network_error",
    "ratelimit_backoff" and close-time leftovers become spills, and the outbox adds
    "cache_overflow" and "network_error" (expired).
    """

    def __init__(
        self,
        *,
        transport: Transport | None = None,
        transport_factory: Callable[[], Transport] | None = None,
        stats: Stats,
        sdk_info: dict[str, Any],
        dsn: Dsn | None = None,
        queue_size: int = 1000,
        queue_max_bytes: int = QUEUE_MAX_BYTES,
        max_in_flight: int = 4,
        max_event_bytes: int = 1_000_000,
        retry_attempts: int = 3,
        retry_base_delay: float = 0.5,
        retry_max_delay: float = 8.0,
        before_send_async: BeforeSendAsync | None = None,
        outbox: Outbox | None = None,
        outbox_drain_rate: float = 100.0,
        outbox_lease_seconds: float = 300.0,
        max_attachment_bytes: int = MAX_ATTACHMENT_BYTES,
        queue_max_attachment_bytes: int = QUEUE_MAX_ATTACHMENT_BYTES,
    ) -> None:
        if transport is not None and transport_factory is None:
            transport_factory = _returning(transport)
        elif transport_factory is None or transport is not None:
            raise TypeError("give a Pipeline either a transport or a transport_factory")
        if queue_size < 1:
            raise ValueError(f"queue_size must be at least 1, got {queue_size!r}")
        if queue_max_bytes < 1:
            raise ValueError(f"queue_max_bytes must be at least 1, got {queue_max_bytes!r}")
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, got {max_in_flight!r}")
        if retry_attempts < 1:
            raise ValueError(f"retry_attempts must be at least 1, got {retry_attempts!r}")
        if not 0 < retry_base_delay <= retry_max_delay:
            raise ValueError(
                "retry delays must satisfy 0 < retry_base_delay <= retry_max_delay, got "
                f"{retry_base_delay!r} and {retry_max_delay!r}"
            )
        self._stats = stats
        self._max_in_flight = max_in_flight
        self._rate_limits = RateLimits()
        self._handover = HandOver(queue_size, max_in_flight, stats, max_bytes=queue_max_bytes)
        self._attachments = Attachments(
            stats, max_bytes=max_attachment_bytes, queue_max_bytes=queue_max_attachment_bytes
        )
        self._handover.on_forget = self._attachments.release
        self._handover.on_drop = self._attachments.count_lost
        self._pacer = Pacer(queue_size, stats.live_sent)
        # The senders' side is built when the pipeline starts (`_engine`), so that a sync
        # client imports the send path on its loop thread rather than in the caller's init().
        handover, attachments, rate_limits = self._handover, self._attachments, self._rate_limits
        self._make_engine: Callable[[], _Engine] = lambda: _Engine(
            transport_factory,
            handover=handover,
            attachments=attachments,
            rate_limits=rate_limits,
            stats=stats,
            dsn=dsn,
            sdk_info=sdk_info,
            outbox=outbox,
            max_event_bytes=max_event_bytes,
            retry_attempts=retry_attempts,
            retry_base_delay=retry_base_delay,
            retry_max_delay=retry_max_delay,
            before_send_async=before_send_async,
        )
        self._engine_lock = threading.Lock()
        self._built: _Engine | None = None
        self._outbox = outbox
        self._outbox_drain_rate = outbox_drain_rate
        self._outbox_lease_seconds = outbox_lease_seconds

        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False
        self._close_task: asyncio.Task[bool] | None = None
        self._flush_hooks: list[Callable[[], None]] = []
        self.tick_interval = TICK_INTERVAL

    @property
    def _engine(self) -> _Engine:
        """The senders' side, built (and its modules imported) on first use."""
        built = self._built
        if built is None:
            with self._engine_lock:
                built = self._built
                if built is None:
                    built = self._built = self._make_engine()
        return built

    def prepare(self) -> None:
        """Build the senders' side now (the transport included), on this thread."""
        self._engine  # noqa: B018 - built on access

    @property
    def holding(self) -> bool:
        """Whether any item is held (a lock-free read: safe from any thread, even a stuck one,
        and it builds nothing)."""
        return self._handover.held > 0

    @property
    def exit_saver(self) -> ExitSaver:
        """For exit paths that skip close (os._exit, SIGTERM): see `exit_spill.py`."""
        return self._engine.exit_saver

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        return self._loop

    @property
    def rate_limits(self) -> RateLimits:
        return self._rate_limits

    @property
    def outbox(self) -> Outbox | None:
        return self._outbox

    def add_flush_hook(self, hook: Callable[[], None]) -> None:
        """Run `hook` on the pipeline's loop every `tick_interval` seconds, at the start of
        every `flush` and before `aclose` refuses new items: a producer that batches (session
        aggregates) submits what it holds from there."""
        self._flush_hooks.append(hook)

    def _run_flush_hooks(self) -> None:
        for hook in self._flush_hooks:
            _run_hook(hook)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.tick_interval)
            self._run_flush_hooks()

    def pending(self) -> int:
        """Items submitted and not yet settled (buffered, being sent, or waiting to retry)."""
        return self._handover.pending()

    # -- hand-over (any thread) -------------------------------------------------------------------

    def submit(
        self,
        event: dict[str, Any],
        size_hint: int = 0,
        attachments: list[Attachment] | None = None,
    ) -> bool:
        """Queue `event` for delivery; False when it was dropped as "queue_overflow" instead.

        Thread-safe; never blocks, awaits or raises. At most `queue_size` events, and about
        `queue_max_bytes` of them, are held at once (buffered or being sent); beyond that, and
        after `aclose`, the new event is dropped. `size_hint` is the event's size in bytes when
        the caller knows it; otherwise it is estimated here (`sizing.py`) once a few items are
        held, in a pass much cheaper than the capture that built the event. Events submitted
        before `start` wait in the buffer. `attachments` travel in the event's envelope; those
        over `max_attachment_bytes`, or beyond the `queue_max_attachment_bytes` the queue may
        hold, are dropped (counted) while the event goes on.
        """
        try:
            trace = take_trace_header(event)
        except Exception:
            trace = None
        return self._submit(
            event_kind(event),
            event,
            size_hint,
            None if trace is None else {"trace": trace},
            attachments,
        )

    def submit_item(
        self,
        kind: ItemKind,
        payload: Any,
        size_hint: int = 0,
        envelope_headers: dict[str, Any] | None = None,
        quantity: int = 1,
    ) -> bool:
        """Queue an item of `kind` (a dict to encode as JSON, or bytes); like `submit`.
        `envelope_headers`: what its envelope's header carries besides the usual (``trace``).
        `quantity`: what the item counts as in client reports (a log batch: its records)."""
        return self._submit(kind, payload, size_hint, envelope_headers, quantity=quantity)

    def _submit(
        self,
        kind: ItemKind,
        payload: Any,
        size_hint: int,
        envelope_headers: dict[str, Any] | None = None,
        attachments: list[Attachment] | None = None,
        quantity: int = 1,
    ) -> bool:
        try:
            if size_hint <= 0 and self._handover.held >= UNMEASURED_HEAD:
                size_hint = estimate_size(payload)
            job = Job(kind, payload, size_hint, envelope_headers)
            job.quantity = quantity
            if attachments:
                self._attachments.admit(job, attachments)
            accepted, held = self._handover.offer(job)
            if not accepted:
                self._stats.record_drop("queue_overflow", kind.category, quantity)
                if job.attachments:
                    self._attachments.refused(job, "queue_overflow")
            if self._pacer.due(held) and self._senders_elsewhere():
                self._pacer.share_thread()
            return accepted
        except Exception:
            logger.warning("errlink: could not queue an event", exc_info=True, extra=INTERNAL)
            return False

    def _senders_elsewhere(self) -> bool:
        built = self._built
        sender_thread = None if built is None else built.delivery.loop_thread
        return self._loop is not None and sender_thread not in (None, threading.get_ident())

    async def pace(self) -> None:
        """For a coroutine that captured on the pipeline's loop: give the senders a share.

        Returns at once unless the queue is half full; then waits a millisecond so the
        senders can run, which a tight capture loop that never suspends would not allow.
        """
        handover = self._handover
        if self._pacer.due(handover.held) and not handover.closed and self._tasks:
            await self._pacer.share_loop()

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
            self._start_tasks()
        else:
            loop.call_soon_threadsafe(self._start_tasks)

    def _start_tasks(self) -> None:
        if self._handover.closed or self._started:
            return
        self._started = True
        loop = self._loop
        assert loop is not None
        engine = self._engine
        delivery = engine.delivery
        senders_wakeup = Wakeup(loop, delivery.loop_thread)
        # A fresh context: senders must not inherit the scope of whoever happened to start them.
        context = contextvars.Context()
        context.run(SENDING.set, True)

        def launch(coroutine: Any, name: str) -> None:
            self._tasks.append(context.run(loop.create_task, coroutine, name=name))

        for index in range(self._max_in_flight):
            launch(delivery.run_sender(senders_wakeup), f"errlink-sender-{index}")
        self._handover.senders_wakeup = senders_wakeup
        if self._flush_hooks:
            launch(self._tick(), "errlink-tick")
        spill = engine.spill
        if spill is not None:
            spill.outbox.start(loop)
            spill_wakeup = Wakeup(loop, delivery.loop_thread)
            launch(spill.run_spiller(spill_wakeup), "errlink-spiller")
            self._handover.spill_wakeup = spill_wakeup
            drainer = engine.drainer(
                self._stats,
                rate=self._outbox_drain_rate,
                lease_seconds=self._outbox_lease_seconds,
                batch_size=DRAIN_BATCH,
            )
            launch(drainer.run(), "errlink-outbox-drain")

    async def flush(self, timeout: float | None) -> bool:
        """Wait until every item submitted before this call is delivered or dropped.

        Also sends a pending client report. Returns False when `timeout` (seconds; None waits as
        long as it takes) ran out first; never waits past it. Must run on the pipeline's loop
        (it starts the pipeline on the running loop when it was not started yet).
        """
        loop = self._bind_running_loop("flush")
        if self._close_task is not None and self._close_task.done():
            return self.pending() == 0
        deadline = None if timeout is None else loop.time() + max(0.0, timeout)
        self._run_flush_hooks()
        settled = await self._handover.wait_settled(deadline)
        await self._engine.sender.send_report_within(deadline)
        return settled

    async def aclose(self, timeout: float) -> bool:
        """Flush, then stop the senders and close the transport, all within one `timeout`.

        From the start of the call `submit` refuses new items ("queue_overflow"). Items still
        buffered, being sent or waiting to retry when the deadline passes are counted as dropped
        with reason "network_error", so `pending()` is 0 afterwards; with an outbox they are
        written to it instead (the last part of `timeout`, at most 0.5 s, is kept for that).
        Close cuts retry backoffs short, and once a send fails while closing nothing more is
        tried: those items are dropped (or spilled) at once, so a server that is down does not
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
        handover = self._handover
        self._run_flush_hooks()
        with handover.lock:
            handover.closed = True
        engine = self._engine
        engine.health.cut_waits_short()
        delivery = engine.delivery
        spill = engine.spill
        spilling = delivery.spill_usable()
        send_until = deadline - (min(_SPILL_RESERVE, timeout / 2) if spilling else 0.0)
        settled = await handover.wait_settled(send_until)
        await engine.sender.send_report_within(send_until)
        await self._stop_tasks()
        leftovers = handover.take_leftovers() + delivery.interrupted
        delivery.interrupted = []
        if spill is not None and spilling and leftovers:
            settled = await spill.spill_leftovers(leftovers, deadline)
        for job in leftovers:
            if not job.handed_off:  # a write still under way settles its job when it ends
                handover.settle_dropped(job, "network_error")
        handover.notify_flush_waiters()
        if spill is not None:
            await spill.close(deadline)
        from .spill import CLOSE_GRACE  # imported with the engine

        grace = max(deadline - loop.time(), CLOSE_GRACE)
        try:
            await asyncio.wait_for(engine.sender.transport.aclose(), grace)
        except Exception as exc:
            logger.warning("errlink: closing the transport failed: %r", exc, extra=INTERNAL)
        # Items given up on because the server failed during close were not delivered in
        # time, as if the deadline had passed (unless they went to the outbox).
        return settled and not (delivery.gave_up_at_close and not spilling)

    async def _stop_tasks(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _bind_running_loop(self, what: str) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self.start(loop)
        elif self._loop is not loop:
            raise RuntimeError(f"Pipeline.{what}() must run on the pipeline's event loop")
        return loop


def _returning(transport: Transport) -> Callable[[], Transport]:
    return lambda: transport


def _run_hook(hook: Callable[[], None]) -> None:
    try:
        hook()
    except Exception:
        logger.warning("errlink: a flush hook failed", exc_info=True, extra=INTERNAL)


class _Engine:
    """The senders' side of a pipeline: transport, sender, retries, spill and exit saving."""

    def __init__(
        self,
        transport_factory: Callable[[], Transport],
        *,
        handover: HandOver,
        attachments: Attachments,
        rate_limits: RateLimits,
        stats: Stats,
        dsn: Dsn | None,
        sdk_info: dict[str, Any],
        outbox: Outbox | None,
        max_event_bytes: int,
        retry_attempts: int,
        retry_base_delay: float,
        retry_max_delay: float,
        before_send_async: BeforeSendAsync | None,
    ) -> None:
        from .delivery import Delivery
        from .exit_spill import ExitSaver
        from .health import ServerHealth
        from .prepare import Preparer
        from .sender import Sender
        from .spill import Spill

        transport = transport_factory()
        self.health = ServerHealth(retry_base_delay, retry_max_delay)
        self.rate_limits = rate_limits
        self.sender = Sender(
            transport,
            stats=stats,
            rate_limits=self.rate_limits,
            health=self.health,
            sdk_info=sdk_info,
            dsn=dsn,
        )
        preparer = Preparer(before_send_async, max_event_bytes, attachments=attachments)
        self.spill = Spill(outbox, handover, preparer) if outbox else None
        self.exit_saver = ExitSaver(
            handover,
            self.spill,
            preparer,
            max_event_bytes=max_event_bytes,
            has_async_hook=before_send_async is not None,
        )
        self.delivery: Delivery = Delivery(
            handover=handover,
            preparer=preparer,
            sender=self.sender,
            health=self.health,
            rate_limits=self.rate_limits,
            spill=self.spill,
            retry_attempts=retry_attempts,
        )

    def drainer(
        self, stats: Stats, *, rate: float, lease_seconds: float, batch_size: int
    ) -> OutboxDrainer:
        from .drain import OutboxDrainer

        assert self.spill is not None
        return OutboxDrainer(
            self.spill.outbox,
            sender=self.sender,
            health=self.health,
            stats=stats,
            rate_limits=self.rate_limits,
            rate=rate,
            lease_seconds=lease_seconds,
            batch_size=batch_size,
        )
