"""Running a Collector in the foreground until SIGINT/SIGTERM, as `errlink serve` does."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator
from typing import TextIO

from ._collector import Collector
from ._optional_codecs import INSTALL_CODECS, unavailable_encodings


async def serve_until_signalled(collector: Collector, out: TextIO) -> None:
    """Start the collector, print where to send events, and stop cleanly on Ctrl-C or SIGTERM."""
    with stop_on_signals() as stop_requested:
        async with collector:
            print(f"errlink collector listening on {collector.url}", file=out)
            print(f"  DSN:      {collector.dsn}", file=out)
            print(f"  web UI:   {collector.ui_url}", file=out)
            print(f"  stats:    {collector.url}/stats/", file=out)
            print(f"  events:   {collector.events_url}", file=out)
            print(f"  database: {collector.db_path}", file=out)
            if collector.max_events is not None:
                print(f"  keeping the newest {collector.max_events} events", file=out)
            if collector.faults.active:
                print(f"  faults:   {collector.faults.describe()}", file=out)
            missing = unavailable_encodings()
            if missing:
                codings = " and ".join(missing)
                print(f"  note:     {codings} bodies get 415 until: {INSTALL_CODECS}", file=out)
            print("Press Ctrl-C to stop.", file=out, flush=True)
            await stop_requested.wait()
            print("errlink collector stopping", file=out, flush=True)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[asyncio.Event]:
    """An event set by SIGINT or SIGTERM while the block runs (on the running loop)."""
    stop_requested = asyncio.Event()
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        # Not available on Windows; there Ctrl-C arrives as KeyboardInterrupt instead.
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop_requested.set)
            handled.append(signum)
    try:
        yield stop_requested
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)
