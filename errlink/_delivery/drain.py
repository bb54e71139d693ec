"""Draining the disk outbox: oldest first, one event at a time, at a bounded rate.

One drain task per client. It claims a small batch of rows (leased, so no other process sends
them), sends them one by one at most `rate` per second, and deletes each row once the server
accepted it, before sending the next: after a 2xx an event is never sent again (a crash between
the 2xx and the delete is the one window where a copy can go out twice).

It drains when the client starts, when events were spilled and the server answers, and when
the server answers again after an outage (a live send succeeded, or its own probe, sent with a
growing backoff while the server is down).
"""

from __future__ import annotations

import asyncio
from typing import Any

from .._log import INTERNAL, logger
from .._outbox.records import OutboxUnavailable, StoredEvent
from .._outbox.writer import Outbox
from .._wire.envelope import EnvelopeError, Item, parse_envelope
from .health import ServerHealth
from .kinds import item_headers, kind_of
from .ratelimit import RateLimits
from .sender import Sender, Verdict
from .stats import Stats

# While rows are leased by another live process, look again this often (it may die).
_RECHECK_LEASED_SECONDS = 5.0


class OutboxDrainer:
    def __init__(
        self,
        outbox: Outbox,
        *,
        sender: Sender,
        health: ServerHealth,
        stats: Stats,
        rate_limits: RateLimits,
        rate: float,
        lease_seconds: float,
        batch_size: int,
    ) -> None:
        self._outbox = outbox
        self._sender = sender
        self._health = health
        self._stats = stats
        self._rate_limits = rate_limits
        self._interval = 1.0 / rate
        self._lease_seconds = lease_seconds
        self._batch_size = batch_size
        self._next_send_at = 0.0
        self._failures = 0

    async def run(self) -> None:
        while True:
            self._outbox.rows_added.clear()
            try:
                claim = await self._outbox.claim(self._batch_size, self._lease_seconds)
            except OutboxUnavailable:
                return
            except Exception as exc:
                logger.warning("errlink: could not read the outbox: %r", exc, extra=INTERNAL)
                await self._health.wait_for_up(self._health.backoff(1))
                continue
            if not claim.events:
                await self._wait_for_rows(claim.leased_elsewhere > 0)
                continue
            try:
                await self._send_batch(claim.events)
            except OutboxUnavailable:
                return
            except Exception as exc:  # rows stay leased until the lease runs out
                logger.warning("errlink: could not update the outbox: %r", exc, extra=INTERNAL)
                await self._health.wait_for_up(self._health.backoff(1))

    async def _send_batch(self, events: list[StoredEvent]) -> None:
        loop = asyncio.get_running_loop()
        for index, event in enumerate(events):
            paused = self._health.paused_for()
            limited = self._rate_limits.retry_after(event.category)
            if paused > 0 or limited > 0:
                await self._outbox.release([e.row_id for e in events[index:]])
                await self._health.wait_for_up(max(paused, limited))
                return
            now = loop.time()
            if self._next_send_at > now:
                await asyncio.sleep(self._next_send_at - now)
            self._next_send_at = max(now, self._next_send_at) + self._interval
            verdict = await self._send(event)
            if verdict in (Verdict.DELIVERED, Verdict.REFUSED):
                self._failures = 0
                await self._remove(event, None if verdict is Verdict.DELIVERED else "send_error")
                continue
            await self._outbox.release([e.row_id for e in events[index:]])
            if verdict is Verdict.RATE_LIMITED:
                await self._health.wait_for_up(self._rate_limits.retry_after(event.category))
            else:
                self._failures += 1
                delay = max(self._health.backoff(self._failures), self._health.paused_for())
                await self._health.wait_for_up(delay)
            return

    async def _send(self, stored: StoredEvent) -> Verdict:
        kind = kind_of(stored.item_type)
        item = Item(stored.item_type, stored.payload, item_headers(kind, stored.payload))
        headers: dict[str, Any] | None = None
        items = [item]
        if stored.extras:
            try:
                extras = parse_envelope(stored.extras)
            except EnvelopeError:
                logger.warning(
                    "errlink: an outbox row's extras are unreadable; sending its item alone",
                    extra=INTERNAL,
                )
            else:
                headers = extras.headers
                items += extras.items
        envelope = self._sender.envelope(stored.event_id, items, headers)
        return await self._sender.send(envelope, carries_event=True)

    async def _remove(self, event: StoredEvent, drop_reason: str | None) -> None:
        """Delete a settled row, then count it; a close arriving meanwhile does not undo that."""
        removal = asyncio.ensure_future(self._outbox.remove(event.row_id))

        def count(done: asyncio.Future[bool]) -> None:
            if done.cancelled() or done.exception() is not None or not done.result():
                return  # not deleted by us: whoever deleted it counts it
            if drop_reason is None:
                self._stats.record_outbox_sent(own=event.own)
            else:
                self._stats.record_outbox_drop(drop_reason, event.category, own=event.own)

        removal.add_done_callback(count)
        await asyncio.shield(removal)

    async def _wait_for_rows(self, leased_elsewhere: bool) -> None:
        # Cleared before the claim (in run), so a spill reported meanwhile is not missed.
        timeout = _RECHECK_LEASED_SECONDS if leased_elsewhere else None
        try:
            await asyncio.wait_for(self._outbox.rows_added.wait(), timeout)
        except asyncio.TimeoutError:
            pass
