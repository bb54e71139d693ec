"""The disk outbox seen from a client: what is spilled, when it drains, how it is counted.

Every test runs a real collector behind the loopback fault proxy of `tests/faults`, so "the
server is down" means connections are refused on a real port and "it is back" means the same
port answers again.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from errlink import AsyncClient, StatsSnapshot
from errlink._outbox import store as store_module
from errlink._outbox.store import OutboxStore
from errlink.collector import Collector, CollectorThread
from errlink.sync import Client
from tests._support import FakeClock, wait_until, wait_until_async
from tests.faults._proxy import HANG, Delay, FaultProxy, ProxyThread, always

FAST = {"http_timeout": 1.0, "outbox_drain_rate": 1000.0}


def outbox_event_ids(path: Path) -> list[str]:
    """The event ids stored in an outbox file, oldest first (read-only)."""
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db, db:
        return [row[0] for row in db.execute("SELECT event_id FROM outbox ORDER BY id")]


def assert_books_balance(stats: StatsSnapshot) -> None:
    assert stats.captured + stats.adopted == (
        stats.sent + stats.in_outbox + stats.pending + stats.dropped_total
    ), stats


def collector_ids(events: list[dict[str, Any]]) -> list[str]:
    return [event["event_id"] for event in events]


@pytest.fixture
async def proxy(collector: Collector) -> AsyncIterator[FaultProxy]:
    started = await FaultProxy(collector.url).start()
    yield started
    await started.stop()


@pytest.fixture
def proxy_thread(collector_thread: CollectorThread) -> Iterator[ProxyThread]:
    with ProxyThread(collector_thread.url) as started:
        yield started


async def capture_yielding(client: AsyncClient, count: int, prefix: str) -> list[str]:
    ids = []
    for n in range(count):
        event_id = await client.capture_message(f"{prefix} {n}")
        assert event_id is not None
        ids.append(event_id)
        await asyncio.sleep(0.001)  # an application yields now and then: the senders run
    return ids


# -- spilling and draining -------------------------------------------------------------------


async def test_what_fails_while_the_server_is_down_is_delivered_once_it_is_back(
    collector: Collector, proxy: FaultProxy, tmp_path: Path
) -> None:
    outbox = tmp_path / "outbox.sqlite3"
    await proxy.go_down()
    client = AsyncClient(proxy.dsn(), outbox=outbox, queue_size=20, **FAST)
    ids = await capture_yielding(client, 100, "down")
    assert await client.flush(30)
    stats = client.stats
    assert (stats.in_outbox, stats.spilled, stats.sent, stats.pending) == (100, 100, 0, 0)
    assert stats.dropped == {}
    assert_books_balance(stats)
    stored = outbox_event_ids(outbox)
    assert sorted(stored) == sorted(ids)

    await proxy.come_back()
    await collector.wait_for_events(100, timeout=60)
    await wait_until_async(lambda: client.stats.in_outbox == 0)
    # Drained oldest first, each exactly once.
    assert collector_ids(collector.events()) == stored
    stats = client.stats
    assert (stats.sent, stats.drained, stats.in_outbox, stats.adopted) == (100, 100, 0, 0)
    assert_books_balance(stats)
    assert outbox_event_ids(outbox) == []
    await client.aclose(5)


async def test_a_new_client_drains_what_an_earlier_one_left(
    collector: Collector, proxy: FaultProxy, tmp_path: Path
) -> None:
    outbox = tmp_path / "outbox.sqlite3"
    await proxy.go_down()
    first = AsyncClient(proxy.dsn(), outbox=outbox, **FAST)
    ids = await capture_yielding(first, 30, "first run")
    assert await first.aclose(10)
    assert (first.stats.in_outbox, first.stats.dropped) == (30, {})

    await proxy.come_back()
    async with AsyncClient(proxy.dsn(), outbox=outbox, **FAST) as second:
        # Started by entering the block: no capture needed for the drain to begin.
        await collector.wait_for_events(30, timeout=30)
        await wait_until_async(lambda: second.stats.adopted == 30)
        stats = second.stats
        assert (stats.captured, stats.sent, stats.drained, stats.adopted) == (0, 30, 30, 30)
        assert_books_balance(stats)
    assert sorted(collector_ids(collector.events())) == sorted(ids)


async def test_close_writes_what_is_still_queued_to_the_outbox(
    collector: Collector, proxy: FaultProxy, tmp_path: Path
) -> None:
    outbox = tmp_path / "outbox.sqlite3"
    proxy.policy = always(HANG)  # accepts, never answers: nothing can finish sending
    client = AsyncClient(proxy.dsn(), outbox=outbox, http_timeout=30.0)
    ids = await capture_yielding(client, 40, "queued at close")
    assert await client.aclose(timeout=1.0)
    stats = client.stats
    assert (stats.in_outbox, stats.pending, stats.sent, stats.dropped) == (40, 0, 0, {})
    assert_books_balance(stats)
    assert sorted(outbox_event_ids(outbox)) == sorted(ids)


def test_interpreter_exit_spills_what_the_sync_facade_still_holds(
    proxy_thread: ProxyThread, tmp_path: Path
) -> None:
    outbox = tmp_path / "outbox.sqlite3"
    proxy_thread.set_policy(always(HANG))
    script = textwrap.dedent(
        """
        import sys, errlink
        errlink.init(sys.argv[1], outbox=sys.argv[2], http_timeout=30.0, shutdown_timeout=2.0)
        for n in range(200):
            print(errlink.capture_message(f"at exit {n}"), flush=True)
        # no close(): the atexit hook must write what is queued to the outbox
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, proxy_thread.dsn(), str(outbox)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    captured = done.stdout.split()
    assert len(captured) == 200
    assert sorted(outbox_event_ids(outbox)) == sorted(captured)


def burst(client: Client, count: int, label: str) -> list[str | None]:
    ids = []
    for n in range(count):
        ids.append(client.capture_message(f"{label} {n}"))
        time.sleep(0.002)
    return ids


def test_a_full_queue_spills_instead_of_dropping_while_the_server_is_slow(
    collector_thread: CollectorThread, proxy_thread: ProxyThread, tmp_path: Path
) -> None:
    proxy_thread.set_policy(always(Delay(0.1)))  # 4 requests at a time, 0.1 s each
    options: dict[str, Any] = {"queue_size": 50, "http_timeout": 5.0}
    without = Client(proxy_thread.dsn(), **options)
    burst(without, 150, "no outbox")
    without.close(0.5)
    overflowed_without = without.stats.dropped.get("queue_overflow", 0)

    client = Client(proxy_thread.dsn(), outbox=tmp_path / "o.sqlite3", **options)
    ids = burst(client, 150, "outbox")
    assert client.flush(30)
    stats = client.stats
    assert stats.spilled > 0  # the surplus went to disk...
    overflowed = stats.dropped.get("queue_overflow", 0)
    assert set(stats.dropped) <= {"queue_overflow"}
    # ...instead of being refused (a stalled disk on a busy machine may still refuse a few).
    assert overflowed * 4 < overflowed_without, (overflowed, overflowed_without)
    assert_books_balance(stats)

    proxy_thread.set_policy(always(Delay(0)))
    wait_until(lambda: client.stats.in_outbox == 0)
    accepted = {event_id for event_id in ids if event_id is not None}
    assert len(accepted) == 150 - overflowed
    delivered = Counter(e["event_id"] for e in collector_thread.events())
    assert accepted <= set(delivered)
    assert max(delivered[event_id] for event_id in accepted) == 1
    assert_books_balance(client.stats)
    client.close(5)


# -- bounds ------------------------------------------------------------------------------------


async def test_the_size_bound_evicts_the_oldest_and_reports_cache_overflow(
    collector: Collector, proxy: FaultProxy, tmp_path: Path
) -> None:
    await proxy.go_down()
    client = AsyncClient(
        proxy.dsn(), outbox=tmp_path / "o.sqlite3", outbox_max_mb=0.002, **FAST
    )  # about 2 KB: a handful of events
    padding = "".join(f"{n:x}" for n in range(2000))  # compresses poorly
    ids = []
    for n in range(30):
        ids.append(await client.capture_message(f"big {n} {padding}"))
        await asyncio.sleep(0.001)
    assert await client.flush(30)
    stats = client.stats
    kept = stats.in_outbox
    assert 0 < kept < 30
    assert stats.dropped == {"cache_overflow": 30 - kept}
    assert_books_balance(stats)
    stored = outbox_event_ids(Path(client.options.outbox or ""))
    assert len(stored) == kept
    assert set(stored) <= set(ids)

    await proxy.come_back()
    await collector.wait_for_events(kept, timeout=30)
    await wait_until_async(lambda: client.stats.in_outbox == 0)
    assert await client.flush(10)
    # What survived was delivered; the server was told about the evicted ones.
    assert collector_ids(collector.events()) == stored
    assert collector.discarded_totals() == {("cache_overflow", "error"): 30 - kept}
    assert_books_balance(client.stats)
    await client.aclose(5)


async def test_events_older_than_max_age_expire_as_network_error(
    collector: Collector, proxy: FaultProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The outbox store takes a clock (the client does not): the client's store reads this one.
    clock = FakeClock(time.monotonic())
    monkeypatch.setattr(
        store_module, "OutboxStore", functools.partial(OutboxStore, monotonic=clock)
    )
    await proxy.go_down()
    client = AsyncClient(proxy.dsn(), outbox=tmp_path / "o.sqlite3", outbox_max_age=1.0, **FAST)
    await capture_yielding(client, 10, "stale")
    assert await client.flush(30)
    assert client.stats.in_outbox == 10
    clock.advance(0.9)  # not old enough yet: still there
    await capture_yielding(client, 1, "younger")
    assert await client.flush(30)
    assert client.stats.in_outbox == 11
    clock.advance(0.3)  # past max_age for the first ten only
    await proxy.come_back()
    await wait_until_async(lambda: client.stats.in_outbox == 0)
    await client.capture_message("fresh")
    assert await client.flush(10)
    await collector.wait_for_events(2)
    assert [e["logentry"]["formatted"] for e in collector.events()] == ["younger 0", "fresh"]
    assert client.stats.dropped == {"network_error": 10}
    assert collector.discarded_totals() == {("network_error", "error"): 10}
    assert_books_balance(client.stats)
    await client.aclose(5)


# -- what the outbox must never do -------------------------------------------------------------


def test_capture_never_touches_the_disk(proxy_thread: ProxyThread, tmp_path: Path) -> None:
    outbox_dir = tmp_path / "outbox-dir"
    touched: list[tuple[str, str]] = []
    watching = threading.Event()

    def audit(event: str, args: tuple[Any, ...]) -> None:
        relevant = watching.is_set() and event in ("open", "sqlite3.connect") and args
        if relevant and str(outbox_dir) in str(args[0]):
            touched.append((event, threading.current_thread().name))

    sys.addaudithook(audit)
    watching.set()
    try:
        proxy_thread.go_down()
        client = Client(proxy_thread.dsn(), outbox=outbox_dir / "o.sqlite3", **FAST)
        for n in range(50):
            client.capture_message(f"spilled {n}")
            time.sleep(0.002)
        assert client.flush(30)
        assert client.stats.in_outbox == 50
        client.close(5)
    finally:
        watching.clear()
    # The file is opened, once, by the outbox's writer thread; its connection refuses any
    # other thread (sqlite3's check_same_thread), so no SQL ran anywhere else.
    assert touched
    assert {thread for _event, thread in touched} == {"errlink-outbox"}


async def test_an_unusable_outbox_file_falls_back_to_counted_drops(
    collector: Collector, proxy: FaultProxy, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not a database\n" * 200)
    await proxy.go_down()
    with caplog.at_level(logging.WARNING, logger="errlink"):
        client = AsyncClient(proxy.dsn(), outbox=notes, **FAST)
        await capture_yielding(client, 10, "nowhere to go")
        await client.aclose(1.0)  # what is left is counted as dropped, as without an outbox
    assert any("outbox is disabled" in r.getMessage() for r in caplog.records)
    stats = client.stats
    assert stats.spilled == 0
    assert stats.dropped == {"network_error": 10}
    assert_books_balance(stats)
    assert notes.read_text() == "not a database\n" * 200


async def test_clients_of_different_projects_share_a_file_without_mixing(
    collector: Collector, proxy: FaultProxy, tmp_path: Path
) -> None:
    outbox = tmp_path / "shared.sqlite3"
    other_collector = Collector(db_path=tmp_path / "other.db", project_id="2", public_key="errlink")
    await other_collector.start()
    other_proxy = await FaultProxy(other_collector.url).start()
    try:
        await proxy.go_down()
        await other_proxy.go_down()
        one = AsyncClient(proxy.dsn(), outbox=outbox, **FAST)
        two = AsyncClient(other_proxy.dsn(project_id="2"), outbox=outbox, **FAST)
        ids_one = await capture_yielding(one, 10, "one")
        ids_two = await capture_yielding(two, 10, "two")
        assert await one.flush(30)
        assert await two.flush(30)
        assert len(outbox_event_ids(outbox)) == 20
        await proxy.come_back()
        await other_proxy.come_back()
        await collector.wait_for_events(10, timeout=30)
        await other_collector.wait_for_events(10, timeout=30)
        await wait_until_async(lambda: one.stats.in_outbox == two.stats.in_outbox == 0)
        assert sorted(collector_ids(collector.events())) == sorted(ids_one)
        assert sorted(collector_ids(other_collector.events())) == sorted(ids_two)
        await one.aclose(5)
        await two.aclose(5)
    finally:
        await other_proxy.stop()
        await other_collector.stop()


def test_outbox_options_are_validated(tmp_path: Path) -> None:
    dsn = "http://k@127.0.0.1:9/1"
    with pytest.raises(TypeError, match="outbox"):
        Client(dsn, outbox=42)  # type: ignore[typeddict-item]
    with pytest.raises(ValueError, match="outbox_max_mb"):
        Client(dsn, outbox=str(tmp_path / "o"), outbox_max_mb=0)
    with pytest.raises(ValueError, match="outbox_max_age"):
        Client(dsn, outbox=str(tmp_path / "o"), outbox_max_age=0.5)
    with pytest.raises(ValueError, match="outbox_drain_rate"):
        Client(dsn, outbox=str(tmp_path / "o"), outbox_drain_rate=0)
    # A directory gets the default file name inside it.
    client = Client(dsn, outbox=tmp_path)
    assert client.options.outbox == str(tmp_path / "errlink-outbox.sqlite3")
    client.close(0.5)
    assert Client(dsn).options.outbox is None  # off by default
