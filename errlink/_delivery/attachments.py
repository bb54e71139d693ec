"""An event's attachments on their way: the queue's byte budget, the size limits, and the
`attachment` items built in the sender.

Capture hands the attachments over with their event (`admit`, any thread, O(1) per
attachment): blobs are weighed at once against `max_attachment_bytes` and against the bytes the
queue may hold (`queue_max_attachment_bytes`), and dropped when over either, while the event
goes on. A path is only a name until the sender prepares the job (`materialize`, on the loop):
the file is read then, in a worker thread, never in the caller. The envelope's attachments
together stay under `MAX_ENVELOPE_BYTES`; and a category `attachment` rate limit drops them at
send time (`sendable`), not the event.

Every attachment dropped is counted in the client report under the category `attachment`, in
bytes (1 for an empty or unreadable one), as Sentry counts that category; these counts are kept
apart from the event counters (`Stats.record_discard`), since the event itself went on.
"""

from __future__ import annotations

import asyncio
import mimetypes
import threading

from .._log import INTERNAL, logger
from .._wire.envelope import Item
from .attachment import Attachment
from .kinds import ATTACHMENT, MiB
from .queue import Job
from .ratelimit import RateLimits
from .stats import Stats

# What one envelope may carry in all (Sentry's own envelope limit).
MAX_ENVELOPE_BYTES = 100 * MiB
CATEGORY = ATTACHMENT.category
# Reasons: over a size limit or unreadable, the queue's budget, the server's rate limit.
TOO_LARGE = "send_error"
UNREADABLE = "internal_sdk_error"
NO_ROOM = "queue_overflow"
RATE_LIMITED = "ratelimit_backoff"
_OCTET_STREAM = "application/octet-stream"


class Attachments:
    """One pipeline's attachment books: the budget the queue holds, and the drops."""

    def __init__(self, stats: Stats, *, max_bytes: int, queue_max_bytes: int) -> None:
        self._stats = stats
        self.max_bytes = max_bytes
        self.queue_max_bytes = queue_max_bytes
        self._lock = threading.Lock()
        self.held_bytes = 0

    # -- capture side (any thread) ------------------------------------------------------------

    def admit(self, job: Job, attachments: list[Attachment]) -> None:
        """Put on `job` the attachments that fit; count the others dropped."""
        kept: list[Attachment] = []
        reserved = 0
        for attachment in attachments:
            size = attachment.size
            if size > self.max_bytes:
                self.count(TOO_LARGE, size)
                _log_too_large(attachment, size, self.max_bytes)
                continue
            if size > 0:
                with self._lock:
                    room = self.held_bytes + size <= self.queue_max_bytes
                    if room:
                        self.held_bytes += size
                if not room:
                    self.count(NO_ROOM, size)
                    continue
                reserved += size
            kept.append(attachment)
        if kept:
            job.attachments = kept
            job.attachment_bytes = reserved

    def release(self, job: Job) -> None:
        """The job no longer holds its blobs' bytes (it was released, or refused)."""
        reserved, job.attachment_bytes = job.attachment_bytes, 0
        if reserved:
            with self._lock:
                self.held_bytes -= reserved

    def refused(self, job: Job, reason: str) -> None:
        """The queue refused the job: its attachments are dropped with it."""
        self.release(job)
        self.count_lost(job, reason)

    # -- the loop -----------------------------------------------------------------------------

    async def materialize(self, job: Job) -> None:
        """Turn the job's attachments into envelope items (reading paths now), within limits."""
        attachments, job.attachments = job.attachments, None
        if not attachments:
            return
        items: list[Item] = []
        total = 0
        for attachment in attachments:
            data = attachment.data
            if data is None:
                data = await self._read(attachment)
                if data is None:
                    continue
            size = len(data)
            if size > self.max_bytes:
                self.count(TOO_LARGE, size)
                _log_too_large(attachment, size, self.max_bytes)
                continue
            if total + size > MAX_ENVELOPE_BYTES:
                self.count(TOO_LARGE, size)
                logger.debug(
                    "errlink: attachment %r would take the envelope over %d bytes; dropped",
                    attachment.filename,
                    MAX_ENVELOPE_BYTES,
                    extra=INTERNAL,
                )
                continue
            total += size
            items.append(_item(attachment, data))
        if items:
            job.extra_items = [*(job.extra_items or ()), *items]

    async def _read(self, attachment: Attachment) -> bytes | None:
        assert attachment.path is not None
        try:
            return await asyncio.to_thread(_read_within, attachment.path, self.max_bytes)
        except _TooLarge as too_large:
            self.count(TOO_LARGE, too_large.size)
            _log_too_large(attachment, too_large.size, self.max_bytes)
        except Exception as exc:
            self.count(UNREADABLE, 1)
            logger.warning(
                "errlink: could not read the attachment %r (%s); the event is sent without it",
                attachment.path,
                exc,
                extra=INTERNAL,
            )
        return None

    def sendable(self, job: Job, rate_limits: RateLimits) -> list[Item]:
        """The items to send with the job's own: its attachments go while their category is
        not rate limited (dropped and counted otherwise)."""
        extras = job.extra_items
        if not extras:
            return []
        if not rate_limits.is_limited(CATEGORY):
            return extras
        kept = [item for item in extras if item.type != ATTACHMENT.item_type]
        if len(kept) != len(extras):
            for item in extras:
                if item.type == ATTACHMENT.item_type:
                    self.count(RATE_LIMITED, len(item.payload))
            job.extra_items = kept
        return kept

    def count_lost(self, job: Job, reason: str) -> None:
        """The job's event was dropped: so were the attachments it carried."""
        for attachment in job.attachments or ():
            self.count(reason, attachment.size)
        for item in job.extra_items or ():
            if item.type == ATTACHMENT.item_type:
                self.count(reason, len(item.payload))
        job.attachments = None

    def count(self, reason: str, size: int) -> None:
        self._stats.record_discard(reason, CATEGORY, max(size, 1))


class _TooLarge(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


def _read_within(path: str, limit: int) -> bytes:
    """The file's bytes; `_TooLarge` without reading more than `limit` + 1 bytes."""
    with open(path, "rb") as file:
        data = file.read(limit + 1)
        if len(data) > limit:
            file.seek(0, 2)
            raise _TooLarge(file.tell())
    return data


def _item(attachment: Attachment, data: bytes) -> Item:
    content_type = attachment.content_type
    if content_type is None:
        content_type = mimetypes.guess_type(attachment.filename, strict=False)[0] or _OCTET_STREAM
    return Item(
        ATTACHMENT.item_type,
        data,
        {
            "filename": attachment.filename,
            "content_type": content_type,
            "attachment_type": attachment.attachment_type,
        },
    )


def _log_too_large(attachment: Attachment, size: int, limit: int) -> None:
    logger.debug(
        "errlink: attachment %r of %d bytes is over max_attachment_bytes=%d; dropped",
        attachment.filename,
        size,
        limit,
        extra=INTERNAL,
    )
