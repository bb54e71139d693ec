"""Helpers shared by the test suite (and the benchmarks, which run from the repo root).

Import them as `from tests._support import wait_until, wait_until_async, free_port`.
"""

from __future__ import annotations

import asyncio
import inspect
import socket
import time
from collections.abc import Callable
from typing import Any

__all__ = ["FakeClock", "free_port", "wait_until", "wait_until_async"]


def _source_of(predicate: Callable[[], Any]) -> str:
    try:
        return inspect.getsource(predicate).strip()  # for a lambda: the line that passed it
    except (OSError, TypeError):
        return getattr(predicate, "__qualname__", repr(predicate))


class _Deadline:
    """`timeout` seconds from now for `predicate`; `met()` fails the test once they are up."""

    def __init__(self, predicate: Callable[[], Any], timeout: float, message: str | None) -> None:
        self.predicate = predicate
        self.timeout = timeout
        self.message = message
        self.at = time.monotonic() + timeout

    def met(self) -> bool:
        if self.predicate():
            return True
        if time.monotonic() > self.at:
            what = self.message or _source_of(self.predicate)
            raise AssertionError(f"timed out after {self.timeout}s waiting for: {what}")
        return False


def wait_until(
    predicate: Callable[[], Any],
    timeout: float = 30.0,
    interval: float = 0.02,
    message: str | None = None,
) -> None:
    """Poll `predicate()` until it is truthy; fail the test if `timeout` seconds pass first."""
    deadline = _Deadline(predicate, timeout, message)
    while not deadline.met():
        time.sleep(interval)


async def wait_until_async(
    predicate: Callable[[], Any],
    timeout: float = 30.0,
    interval: float = 0.02,
    message: str | None = None,
) -> None:
    """`wait_until` for coroutines: polls with `asyncio.sleep` so the event loop keeps running."""
    deadline = _Deadline(predicate, timeout, message)
    while not deadline.met():  # noqa: ASYNC110 (polling any predicate is the point)
        await asyncio.sleep(interval)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class FakeClock:
    """A clock for code that takes one (`clock=`, `now=`): it only moves when told to."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
