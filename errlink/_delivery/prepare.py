"""Preparing a job for the wire: the async `before_send`, then encoding within the size limit.

Runs on the pipeline's loop, one job at a time per sender. A large event is encoded in a worker
thread, one at a time, so the loop stays responsive and no more than one big encoding is held in
memory at once. Returns a drop reason instead of settling anything itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from .._log import INTERNAL, logger
from .._wire.envelope import Item
from .._wire.ids import new_event_id
from .attachments import Attachments
from .queue import Job
from .ratelimit import RateLimits

ENCODE_IN_THREAD_OVER = 256 * 1024

BeforeSendAsync = Callable[[dict[str, Any]], Awaitable["dict[str, Any] | None"]]


class Preparer:
    def __init__(
        self,
        before_send_async: BeforeSendAsync | None,
        max_event_bytes: int,
        *,
        attachments: Attachments | None = None,
    ) -> None:
        self._before_send_async = before_send_async
        self._max_event_bytes = max_event_bytes
        self._attachments = attachments
        self._big_encodings: asyncio.Semaphore | None = None  # made on the loop, when needed

    async def prepare(self, job: Job) -> str | None:
        """Run the hook and encode `job`; the drop reason when it cannot be sent, else None."""
        if job.payload is not None:
            return None
        return await self.run_hook(job) or await self.encode(job)

    async def run_hook(self, job: Job) -> str | None:
        """The async `before_send`, for events: "before_send" when it dropped the event."""
        hook = self._before_send_async
        if hook is None or not job.kind.is_event:
            return None
        try:
            changed = await hook(job.raw)
        except Exception:
            logger.warning(
                "errlink: before_send raised; sending the event unchanged",
                exc_info=True,
                extra=INTERNAL,
            )
            changed = job.raw
        if changed is None:
            return "before_send"
        job.raw = changed
        return None

    async def encode(self, job: Job) -> str | None:
        """Encode `job` within its kind's size limit; the drop reason when that failed."""
        if job.kind.is_event:
            event_id = job.raw.get("event_id")
            if not event_id:
                event_id = job.raw["event_id"] = new_event_id()
            job.event_id = str(event_id)
        limit = job.kind.limit(self._max_event_bytes)
        try:
            payload = await self._encode(job, limit)
        except Exception:
            logger.warning(
                "errlink: could not encode an event; it was dropped", exc_info=True, extra=INTERNAL
            )
            return "internal_sdk_error"
        job.raw = None  # the payload is all that is needed from here on: free the rest early
        if not job.kind.trims_to_fit and len(payload) > limit:
            logger.debug(
                "errlink: a %s item of %d bytes is over its limit of %d; dropped",
                job.kind.item_type,
                len(payload),
                limit,
                extra=INTERNAL,
            )
            return "send_error"
        job.payload = payload
        if job.attachments and self._attachments is not None:
            # Before any spill too: the outbox stores the attachments' bytes with the event.
            await self._attachments.materialize(job)
        return None

    def extra_items(self, job: Job, rate_limits: RateLimits) -> list[Item]:
        """What goes in the job's envelope besides its item, as the rate limits allow."""
        if self._attachments is None:
            return job.extra_items or []
        return self._attachments.sendable(job, rate_limits)

    async def _encode(self, job: Job, limit: int) -> bytes:
        encode = job.kind.encode
        if job.size_hint <= ENCODE_IN_THREAD_OVER:
            return encode(job.raw, limit)
        if self._big_encodings is None:
            self._big_encodings = asyncio.Semaphore(1)
        async with self._big_encodings:
            return await asyncio.to_thread(encode, job.raw, limit)
