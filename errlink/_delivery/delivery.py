"""The sender loop: what happens to each job between the queue and the server.

Each sender task takes the oldest job, prepares it, and sends it with retries; a `Verdict` from
the `Sender` decides whether the job is settled as sent, retried, spilled to the outbox or
dropped with a reason. Only this loop (and close, for leftovers) settles a job after a send.
"""

from __future__ import annotations

import asyncio
import threading

from .._log import INTERNAL, logger
from .._wire.envelope import Item
from .health import ServerHealth
from .kinds import item_headers
from .prepare import Preparer
from .queue import HandOver, Job, Wakeup
from .ratelimit import RateLimits
from .sender import Sender, Verdict
from .spill import Spill


class Delivery:
    def __init__(
        self,
        *,
        handover: HandOver,
        preparer: Preparer,
        sender: Sender,
        health: ServerHealth,
        rate_limits: RateLimits,
        spill: Spill | None,
        retry_attempts: int,
    ) -> None:
        self._handover = handover
        self._preparer = preparer
        self._sender = sender
        self._health = health
        self._rate_limits = rate_limits
        self._spill = spill
        self._retry_attempts = retry_attempts
        self.loop_thread: int | None = None
        self.interrupted: list[Job] = []  # encoded jobs whose sender was cancelled at close
        self.gave_up_at_close = False

    async def run_sender(self, wakeup: Wakeup) -> None:
        self.loop_thread = threading.get_ident()
        handover = self._handover
        for bound in (wakeup, handover.spill_wakeup):
            if bound is not None:
                bound.bind_thread(self.loop_thread)
        while True:
            job = handover.take()
            if job is None:
                await wakeup.wait()
                continue
            try:
                await self._process(job)
            except asyncio.CancelledError:
                if job.handed_off:
                    pass
                elif job.payload is not None and self.spill_usable():
                    # Possibly already received by the server: spilling risks a copy, dropping
                    # risks a loss; a copy is the lesser harm (servers dedupe by event_id).
                    self.interrupted.append(job)
                else:
                    handover.settle_dropped(job, "network_error")
                raise
            except Exception:
                logger.warning(
                    "errlink: internal error while sending an event; it was dropped",
                    exc_info=True,
                    extra=INTERNAL,
                )
                if not job.handed_off:
                    handover.settle_dropped(job, "internal_sdk_error")
            finally:
                if not job.handed_off:
                    handover.release(job)

    async def _process(self, job: Job) -> None:
        handover = self._handover
        reason = await self._preparer.run_hook(job)
        limited = self._rate_limits.is_limited(job.category) and not self.spill_usable()
        if reason is None and limited:
            reason = "ratelimit_backoff"
        reason = reason or await self._preparer.encode(job)
        if reason is not None:
            handover.settle_dropped(job, reason)
            return
        reason = self._spill_reason(job)
        if reason is not None:
            self._spill_job(job, reason)
            return
        await self._deliver(job)

    async def _deliver(self, job: Job) -> None:
        assert job.payload is not None
        headers = item_headers(job.kind, job.payload, job.quantity)
        item = Item(job.kind.item_type, job.payload, headers)
        health = self._health
        attempts = 0
        while attempts < self._retry_attempts and not self.gave_up_at_close:
            attempts += 1
            if self.spill_usable() and health.paused_for() > 0:
                self._spill_job(job, "network_error")
                return
            await health.wait_while_down()
            if self._rate_limits.is_limited(job.category):
                self._spill_or_drop(job, "ratelimit_backoff")
                return
            extras = self._preparer.extra_items(job, self._rate_limits)
            items = [item, *extras] if extras else [item]
            envelope = self._sender.envelope(job.event_id, items, job.envelope_headers)
            verdict = await self._sender.send(envelope, carries_event=True)
            if verdict is Verdict.DELIVERED:
                self._handover.settle_sent(job)
                return
            if verdict is Verdict.RATE_LIMITED:
                self._spill_or_drop(job, "ratelimit_backoff")
                return
            if verdict is Verdict.REFUSED:
                self._handover.settle_dropped(job, "send_error")
                return
            if health.closing:
                # The server failed while closing: what is left will not get through before
                # the process ends either, so nothing more is tried (see `aclose`).
                self.gave_up_at_close = True
            elif attempts < self._retry_attempts:
                await health.pause(health.retry_delay(attempts))
        spilled = self._spill_or_drop(job, "network_error")
        if not health.outage_logged:
            health.outage_logged = True
            logger.warning(
                "errlink: %s events after %d failed attempts (%s)%s",
                "spilling to the outbox" if spilled else "dropping",
                attempts,
                health.last_failure,
                " while closing" if self.gave_up_at_close else "; will keep trying",
                extra=INTERNAL,
            )

    def spill_usable(self) -> bool:
        return self._spill is not None and self._spill.usable

    def _spill_reason(self, job: Job) -> str | None:
        """Why `job` should go to the outbox instead of the network now (None: send it)."""
        if not self.spill_usable():
            return None
        if self._rate_limits.is_limited(job.category):
            return "ratelimit_backoff"
        if self._health.paused_for() > 0:
            return "network_error"
        return None

    def _spill_job(self, job: Job, reason: str) -> None:
        assert self._spill is not None
        self._spill.spill(job, reason)

    def _spill_or_drop(self, job: Job, reason: str) -> bool:
        if self.spill_usable():
            self._spill_job(job, reason)
            return True
        self._handover.settle_dropped(job, reason)
        return False
