"""`errlink test [DSN]`: send one test event and report whether the server accepted it."""

from __future__ import annotations

import asyncio
import logging
from typing import TextIO

from .._async_client import AsyncClient
from .._wire.dsn import Dsn


async def send_test_event(dsn: str, *, timeout: float, out: TextIO, err: TextIO) -> int:
    """Exit status 0 only when the server answered 2xx for the test event."""
    try:
        parsed = Dsn.parse(dsn)
    except ValueError as exc:
        print(f"errlink test: {exc}", file=err)
        return 2
    logging.getLogger("errlink").addHandler(logging.StreamHandler(err))
    client = AsyncClient(parsed, http_timeout=timeout, shutdown_timeout=timeout)
    event_id = await client.capture_message(
        "errlink test event: if you can read this, errlink can reach this server",
        level="info",
        tags={"errlink_test": "yes"},
    )
    await client.flush(timeout)
    stats = client.stats
    await client.aclose(1)
    if stats.sent == 1:
        print(f"sent test event {event_id} to {parsed}: accepted", file=out)
        return 0
    reasons = ", ".join(f"{reason} x{n}" for reason, n in stats.dropped.items()) or "timed out"
    print(f"errlink test: the server at {parsed} did not accept the event ({reasons})", file=err)
    return 1


def run_selftest(dsn: str, *, timeout: float, out: TextIO, err: TextIO) -> int:
    return asyncio.run(send_test_event(dsn, timeout=timeout, out=out, err=err))
