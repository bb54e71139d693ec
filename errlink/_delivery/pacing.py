"""Fair share for the senders while a capture storm fills the queue.

The senders run on one event loop. A thread that captures in a tight loop keeps the GIL, and
CPython hands it to the loop thread only once per switch interval (5 ms): the loop thread gets
one slice per interval, loses the GIL at its next system call, and sends almost nothing while
the queue overflows. A coroutine that awaits `capture_exception` in a loop without ever
suspending starves the senders on its own loop in the same way.

So once the queue is half full, a capture from another thread sleeps `SHARE_SECONDS` (the loop
thread takes the GIL meanwhile), and a capturing coroutine awaits that long (other tasks run).
After a yield, capture runs unhindered for as long again as the yield took (the sleep and the
wait to get the GIL back): the senders get at most half of the time of a storm, and the
application keeps at least half. What they cannot send in their half
overflows the queue and is counted as dropped (or spilled to the outbox), as before.
If the senders delivered nothing during `MISSES_TO_PAUSE` such yields in a row, the backlog is
the server's doing (slow, down, rate limiting), not starvation, and pacing pauses for
`PAUSE_SECONDS`, so a slow server costs capture a few short yields per pause at most. Capture
never waits for the network.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

SHARE_SECONDS = 0.001
PAUSE_SECONDS = 0.1
MISSES_TO_PAUSE = 3


class Pacer:
    """Decides when a capture yields to the senders, and yields; shared by all capturing threads.

    `delivered` counts the events the senders have delivered so far: their progress.
    """

    __slots__ = ("_delivered", "_mark", "_misses", "_next_due", "yields")

    def __init__(self, queue_size: int, delivered: Callable[[], int]) -> None:
        self._delivered = delivered
        self._mark = max(1, queue_size // 2)
        self._next_due = 0.0
        self._misses = 0
        self.yields = 0

    def due(self, held: int) -> bool:
        """Whether a capture that finds `held` events queued should yield now."""
        return held >= self._mark and time.monotonic() >= self._next_due

    def share_thread(self) -> None:
        """Yield from a capturing thread: sleep, so the loop thread can take the GIL."""
        before, start = self._delivered(), time.monotonic()
        time.sleep(SHARE_SECONDS)
        self._yielded(before, start)

    async def share_loop(self) -> None:
        """Yield from a coroutine capturing on the senders' own loop."""
        before, start = self._delivered(), time.monotonic()
        await asyncio.sleep(SHARE_SECONDS)
        self._yielded(before, start)

    def _yielded(self, delivered_before: int, started: float) -> None:
        self.yields += 1
        now = time.monotonic()
        pause = now - started  # the sleep and the wait to get the GIL back
        if self._delivered() != delivered_before:
            self._misses = 0
        else:
            self._misses += 1
            if self._misses >= MISSES_TO_PAUSE:
                self._misses = 0
                pause = PAUSE_SECONDS
        self._next_due = now + pause
