"""Spilling to the disk outbox: what cannot be sent now is written there instead of dropped.

Events are spilled after the last retry of a transient fault, while the server seems down,
while their category is rate limited, when the queue is three quarters full (the spiller task
moves the oldest queued events to disk so that capture does not overflow it), at close for
whatever is still queued, and when the process ends without close (`exit_spill.py`). Spilling
happens on the loop, which hands the encoded payload to the outbox's writer thread; capture
never touches the disk. A job an exit path already copied to the outbox is settled as spilled
without being written a second time.
"""

from __future__ import annotations

import asyncio

from .._log import INTERNAL, logger
from .._outbox.records import SpillRecord
from .._outbox.writer import Outbox, SpillTicket
from .._wire.envelope import Envelope
from .prepare import Preparer
from .queue import HandOver, Job, Wakeup

# A close that spills waits at least this long for the write of what was still queued.
SPILL_MIN_WAIT = 0.25
# Resources are released even when close's deadline has already passed.
CLOSE_GRACE = 0.1

# What `spill` returns for a job written earlier: never queued, so `abandon` says False.
_NOTHING_TO_WRITE = SpillTicket([], lambda _committed: None)
_NOTHING_TO_WRITE.abandon()


class Spill:
    def __init__(self, outbox: Outbox, handover: HandOver, preparer: Preparer) -> None:
        self.outbox = outbox
        self._handover = handover
        self._preparer = preparer

    @property
    def usable(self) -> bool:
        return self.outbox.usable

    def spill(
        self,
        job: Job,
        reason: str,
        *,
        held: bool = True,
        written: asyncio.Future[bool] | None = None,
    ) -> SpillTicket:
        """Hand an encoded job to the outbox writer; it is settled when the write finishes.

        `reason` is the drop reason if the write fails. `held`: the job still counts as held
        (a sender's job), to be released then; close's leftovers were released already.
        """
        assert job.payload is not None
        handover = self._handover
        job.handed_off = True
        if job.copied:
            return self._settle_copied(job, held, written)
        record = spill_record(job, job.payload)
        if held:
            with handover.lock:
                handover.spilling += 1

        def on_done(committed: bool) -> None:
            if held:
                with handover.lock:
                    handover.spilling -= 1
            if committed:
                handover.settle_spilled(job)
            else:
                handover.settle_dropped(job, reason)
            if held:
                handover.release(job)
            if written is not None and not written.done():
                written.set_result(committed)

        return self.outbox.spill([record], on_done)

    def _settle_copied(
        self, job: Job, held: bool, written: asyncio.Future[bool] | None
    ) -> SpillTicket:
        """An exit path already wrote this job's copy (see `exit_spill.py`): settle it as
        spilled without a second row."""
        self._handover.settle_spilled(job)
        if held:
            self._handover.release(job)
        if written is not None and not written.done():
            written.set_result(True)
        return _NOTHING_TO_WRITE

    async def run_spiller(self, wakeup: Wakeup) -> None:
        """Move the oldest queued events to the outbox while the queue is over its backlog mark.

        Woken by the hand-over when the queue passes three quarters of `queue_size` (the
        senders may all be busy with a slow server), so capture does not overflow the queue.
        """
        handover = self._handover
        while True:
            await wakeup.wait()
            while True:
                job = handover.take_backlog(self.usable)
                if job is None:
                    break
                try:
                    reason = await self._preparer.prepare(job)
                    if reason is None:
                        self.spill(job, "queue_overflow")
                    else:
                        handover.settle_dropped(job, reason)
                except asyncio.CancelledError:
                    if not job.handed_off:
                        handover.settle_dropped(job, "network_error")
                    raise
                finally:
                    if not job.handed_off:
                        handover.release(job)
                await asyncio.sleep(0)  # one event at a time: the loop stays responsive

    async def spill_leftovers(self, jobs: list[Job], deadline: float) -> bool:
        """Write what close found unsent to the outbox; True when all of it was written."""
        loop = asyncio.get_running_loop()
        waiting: list[tuple[asyncio.Future[bool], SpillTicket]] = []
        spilled_jobs: list[Job] = []
        for job in jobs:
            if job.payload is None:
                if loop.time() >= deadline:
                    continue  # the caller counts it as dropped
                reason = await self._preparer.prepare(job)
                if reason is not None:
                    self._handover.settle_dropped(job, reason)
                    continue
            written: asyncio.Future[bool] = loop.create_future()
            ticket = self.spill(job, "network_error", held=False, written=written)
            waiting.append((written, ticket))
            spilled_jobs.append(job)
        if not waiting:
            return all(job.settled for job in jobs)
        budget = max(deadline - loop.time(), SPILL_MIN_WAIT)
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

    async def close(self, deadline: float) -> None:
        """Give back the rows this process leased, then stop the writer, within `deadline`."""
        outbox = self.outbox
        if not outbox.started:
            return
        loop = asyncio.get_running_loop()
        try:
            budget = max(deadline - loop.time(), SPILL_MIN_WAIT)
            if outbox.usable:
                await asyncio.wait_for(outbox.release(), budget)
            budget = max(deadline - loop.time(), CLOSE_GRACE)
            await asyncio.wait_for(outbox.close(), budget)
        except Exception as exc:
            logger.debug("errlink: closing the outbox: %r", exc, extra=INTERNAL)


def spill_record(job: Job, payload: bytes) -> SpillRecord:
    """The outbox row for `job`, whose encoded item is `payload`."""
    return SpillRecord(job.event_id, job.kind.item_type, job.category, payload, _extras(job))


def _extras(job: Job) -> bytes | None:
    """What the job's envelope carries besides its payload, in envelope format (see
    `SpillRecord.extras`); the drain rebuilds the envelope from it."""
    if not job.envelope_headers and not job.extra_items:
        return None
    return Envelope(dict(job.envelope_headers or {}), list(job.extra_items or ())).to_bytes()
