"""A capture storm: code capturing in a tight loop must not starve the senders.

Without pacing, a busy capturing thread keeps the GIL and errlink's loop thread sends next to
nothing until the storm ends, so everything past the first queue-full overflows; a coroutine
that awaits `capture_exception` without ever suspending starves the senders on its own loop.
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import pytest

from errlink import AsyncClient
from errlink._delivery.pacing import MISSES_TO_PAUSE, PAUSE_SECONDS
from errlink.sync import Client
from tests._support.collector import CollectorProcess

QUEUE = 100
STORM = 10_000


def _fail(depth: int) -> None:
    order_id = depth  # noqa: F841 - a local, as real frames have
    if depth == 0:
        raise ValueError("payment declined")
    _fail(depth - 1)


def _exception() -> ValueError:
    try:
        _fail(5)
    except ValueError as exc:
        return exc
    raise AssertionError("unreachable")


def _assert_books_balance(client: Any, server: CollectorProcess) -> None:
    stats = client.stats
    assert stats.pending == 0
    assert stats.captured == STORM
    assert stats.sent + sum(stats.dropped.values()) == STORM
    assert set(stats.dropped) <= {"queue_overflow"}
    received = server.stats()
    assert received["events"] == stats.sent
    assert received["discarded_total"] == stats.dropped.get("queue_overflow", 0)


def test_a_thread_capturing_in_a_tight_loop_still_gets_events_delivered(
    collector_process: CollectorProcess,
) -> None:
    client = Client(collector_process.dsn, queue_size=QUEUE)
    exceptions = [_exception() for _ in range(STORM)]
    client.capture_exception(exceptions[0])  # connect first: the storm measures sending only
    assert client.flush(5)
    sent_before = client.stats.sent

    for exc in exceptions[1:]:
        client.capture_exception(exc)
    sent_during_storm = client.stats.sent - sent_before

    # The senders delivered several queues' worth while the storm went on, instead of one
    # queue-full after it.
    assert sent_during_storm >= 3 * QUEUE
    assert client.flush(30)
    _assert_books_balance(client, collector_process)
    client.close()


async def test_a_coroutine_capturing_without_suspending_still_gets_events_delivered(
    collector_process: CollectorProcess,
) -> None:
    exceptions = [_exception() for _ in range(STORM)]
    async with AsyncClient(collector_process.dsn, queue_size=QUEUE) as client:
        await client.capture_exception(exceptions[0])
        assert await client.flush(5)
        sent_before = client.stats.sent

        for exc in exceptions[1:]:
            await client.capture_exception(exc)
        sent_during_storm = client.stats.sent - sent_before

        assert sent_during_storm >= 3 * QUEUE
        assert await client.flush(30)
        _assert_books_balance(client, collector_process)


def test_with_the_server_not_answering_captures_yield_only_a_few_times_per_pause() -> None:
    # A listening socket that never accepts: requests hang, the queue fills, the senders wait on
    # the network, and yielding to them would only slow the application down.
    with socket.socket() as black_hole:
        black_hole.bind(("127.0.0.1", 0))
        black_hole.listen(0)
        port = black_hole.getsockname()[1]
        client = Client(f"http://public@127.0.0.1:{port}/1", queue_size=QUEUE, http_timeout=30)
        try:
            exceptions = [_exception() for _ in range(STORM)]
            started = time.monotonic()
            for exc in exceptions:
                client.capture_exception(exc)
            elapsed = time.monotonic() - started
            pipeline = client.core.pipeline
            assert pipeline is not None
            # MISSES_TO_PAUSE fruitless yields, then a pause: bounded by the storm's length.
            allowed = MISSES_TO_PAUSE * (elapsed / PAUSE_SECONDS + 1)
            assert 0 < pipeline._pacer.yields <= allowed
            stats = client.stats
            assert stats.sent == 0
            assert stats.dropped["queue_overflow"] == STORM - stats.pending
        finally:
            client.close(timeout=0.2)


@pytest.mark.parametrize("kind", ["thread", "coroutine"])
def test_below_half_a_queue_capture_never_yields(collector_thread: Any, kind: str) -> None:
    if kind == "thread":
        client = Client(collector_thread.dsn, queue_size=QUEUE)
        for _ in range(QUEUE // 2 - 1):
            client.capture_exception(_exception())
        pipeline = client.core.pipeline
        assert pipeline is not None
        assert pipeline._pacer.yields == 0
        assert client.flush(5)
        client.close()
        return

    async def run() -> int:
        async with AsyncClient(collector_thread.dsn, queue_size=QUEUE) as client:
            for _ in range(QUEUE // 2 - 1):
                await client.capture_exception(_exception())
            pipeline = client.core.pipeline
            assert pipeline is not None
            return pipeline._pacer.yields

    assert asyncio.run(run()) == 0
    assert len(collector_thread.wait_for_events(QUEUE // 2 - 1)) == QUEUE // 2 - 1
