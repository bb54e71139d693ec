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
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Literal

from ._outbox import Outbox
from ._outbox_store import OutboxUnavailable, StoredEvent
from ._ratelimit import RateLimits
from ._stats import Stats

logger = logging.getLogger("errlink")
LOG_EXTRA = {"errlink_internal": True}

SendResult = Literal["delivered", "rate_limited", "refused", "transient"]
SendStored = Callable[[StoredEvent], Awaitable[SendResult]]
# While rows are leased by another live process, look again this often (it may die).
_RECHECK_LEASED_SECONDS = 5.0


class OutboxDrainer:
    def __init__(
        self,
        outbox: Outbox,
        *,
        send: SendStored,
        stats: Stats,
        rate_limits: RateLimits,
        server_paused_for: Callable[[], float],
        rate: float,
        lease_seconds: float,
        batch_size: int,
        retry_base_delay: float,
        retry_max_delay: float,
    ) -> None:
        self._outbox = outbox
        self._send = send
        self._stats = stats
        self._rate_limits = rate_limits
        self._server_paused_for = server_paused_for
        self._interval = 1.0 / rate
        self._lease_seconds = lease_seconds
        self._batch_size = batch_size
        self._retry_base_delay = retry_base_delay
        self._retry_max_delay = retry_max_delay
        self._rows_added = asyncio.Event()
        self._server_up = asyncio.Event()
        self._next_send_at = 0.0
        self._failures = 0

    def rows_added(self) -> None:
        self._rows_added.set()

    def server_up(self) -> None:
        self._server_up.set()

    async def run(self) -> None:
        while True:
            self._rows_added.clear()
            try:
                claim = await self._outbox.claim(self._batch_size, self._lease_seconds)
            except OutboxUnavailable:
                return
            except Exception as exc:
                logger.warning("errlink: could not read the outbox: %r", exc, extra=LOG_EXTRA)
                await self._wait(self._server_up, self._backoff(1))
                continue
            if not claim.events:
                await self._wait_for_rows(claim.leased_elsewhere > 0)
                continue
            try:
                await self._send_batch(claim.events)
            except OutboxUnavailable:
                return
            except Exception as exc:  # rows stay leased until the lease runs out
                logger.warning("errlink: could not update the outbox: %r", exc, extra=LOG_EXTRA)
                await self._wait(self._server_up, self._backoff(1))

    async def _send_batch(self, events: list[StoredEvent]) -> None:
        loop = asyncio.get_running_loop()
        for index, event in enumerate(events):
            paused = self._server_paused_for()
            limited = self._rate_limits.retry_after(event.category)
            if paused > 0 or limited > 0:
                await self._outbox.release([e.row_id for e in events[index:]])
                await self._wait(self._server_up, max(paused, limited))
                return
            now = loop.time()
            if self._next_send_at > now:
                await asyncio.sleep(self._next_send_at - now)
            self._next_send_at = max(now, self._next_send_at) + self._interval
            result = await self._send(event)
            if result in ("delivered", "refused"):
                self._failures = 0
                await self._remove(event, None if result == "delivered" else "send_error")
                continue
            await self._outbox.release([e.row_id for e in events[index:]])
            if result == "rate_limited":
                await self._wait(self._server_up, self._rate_limits.retry_after(event.category))
            else:
                self._failures += 1
                delay = max(self._backoff(self._failures), self._server_paused_for())
                await self._wait(self._server_up, delay)
            return

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
            await asyncio.wait_for(self._rows_added.wait(), timeout)
        except asyncio.TimeoutError:
            pass

    async def _wait(self, event: asyncio.Event, timeout: float) -> None:
        """Sleep `timeout` seconds, or until `event` is set (from now on)."""
        if timeout <= 0:
            return
        event.clear()
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except asyncio.TimeoutError:
            pass

    def _backoff(self, failures: int) -> float:
        ceiling: float = self._retry_base_delay * 2 ** min(failures - 1, 32)
        return min(self._retry_max_delay, ceiling) * random.uniform(0.5, 1.0)
