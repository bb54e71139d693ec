"""What the client believes about the server's health, shared by the senders and the drainer.

One failure only delays its own retry; from the second in a row the server seems down and every
sender waits, for a time that grows with each failure and is never near 0, so a dead server
cannot make the senders spin. Any answer below 500 means the server is up again. Close cuts
every wait short.
"""

from __future__ import annotations

import asyncio
import contextlib
import random

from .._log import INTERNAL, logger


class ServerHealth:
    def __init__(self, retry_base_delay: float, retry_max_delay: float) -> None:
        self.retry_base_delay = retry_base_delay
        self.retry_max_delay = retry_max_delay
        self.last_failure = ""
        self.outage_logged = False  # the current outage was logged once already
        self._consecutive_failures = 0
        self._resume_at = 0.0
        # An asyncio.Event binds to a loop only when first awaited, so it can be made here.
        self._closing = asyncio.Event()
        self._up = asyncio.Event()

    @property
    def closing(self) -> bool:
        return self._closing.is_set()

    def cut_waits_short(self) -> None:
        """Close began: no more backoff waits."""
        self._closing.set()

    def retry_delay(self, attempt: int) -> float:
        """Full jitter: anywhere between 0 and the capped exponential delay of this attempt."""
        ceiling = self.retry_base_delay * 2 ** min(attempt - 1, 32)
        return random.uniform(0.0, min(self.retry_max_delay, ceiling))

    def backoff(self, failures: int) -> float:
        """A wait after `failures` in a row that is never near 0 (for probes while down)."""
        ceiling: float = self.retry_base_delay * 2 ** min(failures - 1, 32)
        return min(self.retry_max_delay, ceiling) * random.uniform(0.5, 1.0)

    def note_failure(self, description: str) -> None:
        self.last_failure = description
        self._consecutive_failures += 1
        logger.debug("errlink: send failed: %s", description, extra=INTERNAL)
        if self._consecutive_failures >= 2:
            exponent = min(self._consecutive_failures - 2, 32)
            pause = min(self.retry_max_delay, self.retry_base_delay * 2**exponent)
            resume_at = asyncio.get_running_loop().time() + pause * random.uniform(0.5, 1.0)
            self._resume_at = max(self._resume_at, resume_at)

    def note_up(self) -> None:
        """The server answered (below 500)."""
        self._consecutive_failures = 0
        self._resume_at = 0.0
        self.outage_logged = False
        self._up.set()

    def paused_for(self) -> float:
        """Seconds until the senders try the server again (0 when it is not considered down)."""
        if not self._resume_at:
            return 0.0
        return max(0.0, self._resume_at - asyncio.get_running_loop().time())

    async def wait_while_down(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._closing.is_set():  # the pause may grow while waiting: others keep failing
            pause = self._resume_at - loop.time()
            if pause <= 0:
                return
            await self.pause(pause)

    async def pause(self, seconds: float) -> None:
        """Sleep `seconds`, or until close begins."""
        if self._closing.is_set():
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)

    async def wait_for_up(self, timeout: float) -> None:
        """Sleep `timeout` seconds, or until the server answers again (from now on)."""
        if timeout <= 0:
            return
        self._up.clear()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._up.wait(), timeout)
