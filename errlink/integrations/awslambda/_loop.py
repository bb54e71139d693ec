"""The event loop ``async def`` handlers run on, kept for the life of the process."""

from __future__ import annotations

import asyncio
import atexit
import threading
from collections.abc import Awaitable
from typing import Any


class _Loops(threading.local):
    loop: asyncio.AbstractEventLoop | None = None


_loops = _Loops()
_created: list[asyncio.AbstractEventLoop] = []


def run(coroutine: Awaitable[Any]) -> Any:
    """Run on a loop kept across invocations (one per thread): clients bound to it stay usable
    in warm invocations."""
    loop = _loops.loop
    if loop is None or loop.is_closed():
        loop = _loops.loop = asyncio.new_event_loop()
        _created.append(loop)
    return loop.run_until_complete(coroutine)


@atexit.register
def _close_loops() -> None:
    for loop in _created:
        if not loop.is_closed() and not loop.is_running():
            loop.close()
