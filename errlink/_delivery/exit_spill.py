"""Saving what a pipeline holds when the process ends without `close` (os._exit, SIGTERM).

An exit path runs on the exiting thread (or a helper it waits for) while the loop thread may
be in the middle of a send. Two routes, both bounded in time:

- the loop answers: `spill_held` runs there, so it sees a consistent state. Buffered jobs are
  prepared (the async ``before_send`` included) and spilled like any other spill; encoded jobs
  that senders are still sending (or waiting to retry) are *copied* to the outbox and left to
  their senders. A copy may therefore reach the server twice, once live and once from the
  outbox; that is the chosen side (servers deduplicate by ``event_id``), never a loss.
- the loop does not answer (blocked, or the exit comes from the loop thread itself):
  `spill_directly` reads the held jobs under the hand-over's lock (with a timeout), encodes the
  ones not encoded yet on this thread, and appends copies through a SQLite connection of its
  own. It changes nothing in the pipeline's books. An event that would still have to pass an
  async ``before_send`` is not written this way: the hook may remove what must not leave.

`unsaved` then lists what is held and was neither delivered nor written; `count_lost` records
those as dropped when the process is about to end.
"""

from __future__ import annotations

import asyncio
import time

from .._log import INTERNAL, logger
from .._outbox.records import SpillRecord
from .._outbox.store import OutboxStore, is_busy
from .._wire.ids import new_event_id
from .prepare import Preparer
from .queue import HandOver, Job
from .spill import Spill, spill_record

# The drop reason of an event the process ended with: the same as close's undelivered leftovers.
EXIT_DROP_REASON = "network_error"
_BUSY_RETRY_SECONDS = 0.01


class ExitSaver:
    def __init__(
        self,
        handover: HandOver,
        spill: Spill | None,
        preparer: Preparer,
        *,
        max_event_bytes: int,
        has_async_hook: bool,
    ) -> None:
        self._handover = handover
        self._spill = spill
        self._preparer = preparer
        self._max_event_bytes = max_event_bytes
        self._has_async_hook = has_async_hook

    @property
    def has_outbox(self) -> bool:
        """An outbox that has not failed (it may not be open yet: `spill_directly` opens it)."""
        return self._spill is not None and self._spill.usable

    @property
    def can_spill(self) -> bool:
        """Whether `spill_held` can write: the outbox's writer thread runs."""
        return self.has_outbox and self._spill is not None and self._spill.outbox.started

    # -- the loop answers ---------------------------------------------------------------------

    async def spill_held(self, timeout: float) -> int:
        """Write what is held to the outbox within `timeout` seconds (see the module doc);
        returns how many jobs were written (spilled or copied) in that time."""
        spill = self._spill
        if spill is None or not self.can_spill:
            return 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, timeout)
        handover = self._handover
        waiting: list[asyncio.Future[bool]] = []
        while loop.time() < deadline:
            job = handover.take_for_exit()
            if job is None:
                break
            try:
                reason = await self._preparer.prepare(job)
                if reason is not None:
                    handover.settle_dropped(job, reason)
                else:
                    written: asyncio.Future[bool] = loop.create_future()
                    spill.spill(job, EXIT_DROP_REASON, written=written)
                    waiting.append(written)
            except asyncio.CancelledError:
                if not job.handed_off:
                    handover.settle_dropped(job, EXIT_DROP_REASON)
                raise
            finally:
                if not job.handed_off:
                    handover.release(job)
        copyable = [job for job in handover.held_jobs() or () if _copyable(job)]
        waiting += [self._copy(spill, job, loop) for job in copyable]
        if not waiting:
            return 0
        await asyncio.wait(waiting, timeout=max(0.0, deadline - loop.time()))
        return sum(1 for written in waiting if written.done() and written.result())

    def _copy(
        self, spill: Spill, job: Job, loop: asyncio.AbstractEventLoop
    ) -> asyncio.Future[bool]:
        assert job.payload is not None
        written: asyncio.Future[bool] = loop.create_future()
        job.copied = True  # at once: a sender spilling it meanwhile must not write it again

        def on_done(committed: bool) -> None:
            if not committed:
                job.copied = False
            if not written.done():
                written.set_result(committed)

        spill.outbox.spill([spill_record(job, job.payload)], on_done)
        return written

    # -- the loop does not answer -------------------------------------------------------------

    def spill_directly(self, deadline: float) -> int:
        """Append copies of the held jobs from this thread before `deadline` (monotonic);
        returns how many were written."""
        spill = self._spill
        if spill is None or not spill.usable:
            return 0
        jobs = self._handover.held_jobs(timeout=max(0.0, deadline - time.monotonic()))
        if not jobs:
            return 0
        chosen: list[Job] = []
        records: list[SpillRecord] = []
        for job in jobs:
            if job.settled or job.handed_off or job.copied:
                continue
            payload = job.payload if job.payload is not None else self._encode_here(job)
            if payload is not None:
                chosen.append(job)
                records.append(spill_record(job, payload))
        if not records or not _append_directly(spill.outbox.store, records, deadline):
            return 0
        for job in chosen:
            job.copied = True
        return len(chosen)

    def _encode_here(self, job: Job) -> bytes | None:
        """A job the loop did not encode yet, encoded on this thread (attachments not yet read
        into the job stay behind); None when it cannot be."""
        if self._has_async_hook and job.kind.is_event:
            return None
        raw = job.raw
        if raw is None:
            return None
        try:
            if job.kind.is_event:
                event_id = raw.get("event_id")
                if not event_id:
                    event_id = raw["event_id"] = new_event_id()
                job.event_id = str(event_id)
            limit = job.kind.limit(self._max_event_bytes)
            payload = job.kind.encode(raw, limit)
        except Exception:
            return None
        if not job.kind.trims_to_fit and len(payload) > limit:
            return None
        return payload

    # -- what is left ---------------------------------------------------------------------------

    def unsaved(self, lock_timeout: float) -> list[Job] | None:
        """Held jobs neither settled nor copied to the outbox (None: the lock was not free)."""
        jobs = self._handover.held_jobs(timeout=max(0.0, lock_timeout))
        if jobs is None:
            return None
        return [job for job in jobs if not job.settled and not job.copied]

    def count_lost(self, jobs: list[Job]) -> None:
        """The process ends with `jobs` undelivered: count them as dropped."""
        for job in jobs:
            self._handover.settle_dropped(job, EXIT_DROP_REASON)


def _copyable(job: Job) -> bool:
    return job.payload is not None and not (job.handed_off or job.copied or job.settled)


def _append_directly(template: OutboxStore, records: list[SpillRecord], deadline: float) -> bool:
    """Append `records` through a connection of this thread's own, retrying while another
    connection holds the database lock, until `deadline` (monotonic)."""
    store = OutboxStore(
        template.path,
        target=template.target,
        max_bytes=template.max_bytes,
        max_age=template.max_age,
    )
    try:
        while True:
            try:
                store.open()
                store.append(records)
                return True
            except Exception as exc:
                if not is_busy(exc) or time.monotonic() >= deadline:
                    logger.debug(
                        "errlink: writing to the outbox at exit failed: %r", exc, extra=INTERNAL
                    )
                    return False
            time.sleep(_BUSY_RETRY_SECONDS)
    finally:
        store.close()
