"""Running a Collector in the foreground until SIGINT/SIGTERM, as `errlink serve` does."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import TextIO

from ._collector import Collector


async def serve_until_signalled(collector: Collector, out: TextIO) -> None:
    """Start the collector, print where to send events, and stop cleanly on Ctrl-C or SIGTERM."""
    stop_requested = asyncio.Event()
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        # Not available on Windows; there Ctrl-C arrives as KeyboardInterrupt instead.
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop_requested.set)
            handled.append(signum)
    try:
        async with collector:
            print(f"errlink collector listening on {collector.url}", file=out)
            print(f"  database: {collector.db_path}", file=out)
            print(f"  DSN:      {collector.dsn}", file=out)
            print(f"  events:   {collector.events_url}", file=out)
            print("Press Ctrl-C to stop.", file=out, flush=True)
            await stop_requested.wait()
            print("errlink collector stopping", file=out, flush=True)
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)
