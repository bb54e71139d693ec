"""The outbox across processes: kill -9 at random moments, and several processes sharing it.

Children are real Python processes running errlink's sync client; the collector and the fault
proxy run in this process. After every kill the file must pass SQLite's integrity check, and
the final drain must deliver every stored event: exactly once after kills while spilling, and
with at most one extra copy per kill while draining (the window between the server's 2xx and
the row's delete).
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO

import pytest

from errlink import AsyncClient
from errlink.collector import Collector
from tests._support import wait_until_async
from tests.faults._proxy import FaultProxy

SPILL_FOREVER = textwrap.dedent(
    """
    import sys, time
    from errlink.sync import Client
    dsn, outbox, name = sys.argv[1:4]
    client = Client(dsn, outbox=outbox, http_timeout=1.0)
    print("ready", flush=True)
    n = 0
    while True:
        client.capture_message(f"{name} {n}")
        n += 1
        time.sleep(0.002)  # a busy app, not a flood: keeps the final drain short
    """
)

SPILL_SOME = textwrap.dedent(
    """
    import json, sys, time
    from errlink.sync import Client
    dsn, outbox, name, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    client = Client(dsn, outbox=outbox, http_timeout=1.0)
    for n in range(count):
        client.capture_message(f"{name} {n}")
        time.sleep(0.001)
    client.close(10)
    s = client.stats
    print(json.dumps({"spilled": s.spilled, "in_outbox": s.in_outbox, "dropped": s.dropped}))
    """
)

DRAIN_UNTIL_TOLD = textwrap.dedent(
    """
    import json, sys
    from errlink.sync import Client
    dsn, outbox, rate = sys.argv[1], sys.argv[2], float(sys.argv[3])
    client = Client(dsn, outbox=outbox, outbox_drain_rate=rate, http_timeout=2.0)
    print("ready", flush=True)
    sys.stdin.readline()
    client.close(5)
    s = client.stats
    print(json.dumps({"drained": s.drained, "adopted": s.adopted, "sent": s.sent}), flush=True)
    """
)


def start_child(script: str, *args: str) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    assert line.strip() == "ready", line
    return child


def kill_hard(child: subprocess.Popen[str]) -> None:
    child.send_signal(signal.SIGKILL)
    child.wait(30)
    assert child.returncode == -signal.SIGKILL
    for stream in (child.stdin, child.stdout):
        if stream is not None:
            stream.close()


def check_integrity(path: Path) -> list[str]:
    """SQLite's own consistency check (after WAL recovery), then the stored event ids."""
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        return [row[0] for row in db.execute("SELECT event_id FROM outbox ORDER BY id")]
    finally:
        db.close()


def output_of(stream: IO[str] | None) -> str:
    assert stream is not None
    return stream.read()


@pytest.fixture
async def proxy(collector: Collector) -> AsyncIterator[FaultProxy]:
    started = await FaultProxy(collector.url).start()
    yield started
    await started.stop()


async def drain_all(dsn: str, outbox: Path, collector: Collector, expected: int) -> None:
    async with AsyncClient(dsn, outbox=outbox, outbox_drain_rate=2000.0, http_timeout=5.0):
        await collector.wait_for_events(expected, timeout=60)
        await wait_until_async(
            lambda: not check_integrity(outbox), 30, interval=0.05, message="the outbox emptied"
        )


async def test_kill_9_while_spilling_loses_nothing_that_was_written(
    collector: Collector, proxy: FaultProxy, tmp_path: Path
) -> None:
    outbox = tmp_path / "outbox.sqlite3"
    await proxy.go_down()
    rng = random.Random()
    stored: list[str] = []
    for round_number in range(4):
        child = await asyncio.to_thread(
            start_child, SPILL_FOREVER, proxy.dsn(), str(outbox), f"round{round_number}"
        )
        await asyncio.sleep(rng.uniform(0.3, 1.2))
        kill_hard(child)
        now_stored = check_integrity(outbox)
        assert now_stored[: len(stored)] == stored  # nothing written earlier was lost
        assert len(now_stored) > len(stored), "the child was not spilling when killed"
        stored = now_stored
    assert len(set(stored)) == len(stored)

    await proxy.come_back()
    await drain_all(proxy.dsn(), outbox, collector, len(stored))
    delivered = Counter(event["event_id"] for event in collector.events())
    assert set(delivered) == set(stored)
    assert max(delivered.values()) == 1  # exactly once


async def test_kill_9_while_draining_loses_nothing_and_repeats_at_most_one_per_kill(
    collector: Collector, proxy: FaultProxy, tmp_path: Path
) -> None:
    outbox = tmp_path / "outbox.sqlite3"
    await proxy.go_down()
    async with AsyncClient(proxy.dsn(), outbox=outbox, http_timeout=1.0) as client:
        for n in range(400):
            await client.capture_message(f"to drain {n}")
            await asyncio.sleep(0.0005)
        assert await client.flush(30)
        assert client.stats.in_outbox == 400
    stored = check_integrity(outbox)
    assert len(stored) == 400

    await proxy.come_back()
    kills = 0
    rng = random.Random()
    remaining = stored
    while kills < 3 and remaining:
        child = await asyncio.to_thread(
            start_child, DRAIN_UNTIL_TOLD, proxy.dsn(), str(outbox), "300"
        )
        await asyncio.sleep(rng.uniform(0.1, 0.4))
        kill_hard(child)
        kills += 1
        remaining = check_integrity(outbox)
    assert len(remaining) < 400, "no child drained anything before being killed"

    await drain_all(proxy.dsn(), outbox, collector, len(set(stored)))
    delivered = Counter(event["event_id"] for event in collector.events())
    assert set(delivered) == set(stored)  # nothing lost
    assert sum(delivered.values()) - len(stored) <= kills


async def test_processes_sharing_an_outbox_never_send_an_event_twice(
    collector: Collector, proxy: FaultProxy, tmp_path: Path
) -> None:
    outbox = tmp_path / "shared.sqlite3"
    await proxy.go_down()
    # Three "workers" spill into the same file at the same time.
    writers = [
        await asyncio.to_thread(
            subprocess.Popen,
            [sys.executable, "-c", SPILL_SOME, proxy.dsn(), str(outbox), f"w{index}", "200"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for index in range(3)
    ]
    reports = []
    for writer in writers:
        out, _ = await asyncio.to_thread(writer.communicate, timeout=120)
        assert writer.returncode == 0
        reports.append(json.loads(out))
    assert [r["in_outbox"] for r in reports] == [200, 200, 200]
    assert all(r["dropped"] == {} for r in reports)
    stored = check_integrity(outbox)
    assert len(set(stored)) == len(stored) == 600

    # Three workers drain it at the same time.
    await proxy.come_back()
    drainers = [
        await asyncio.to_thread(start_child, DRAIN_UNTIL_TOLD, proxy.dsn(), str(outbox), "100")
        for _ in range(3)
    ]
    await collector.wait_for_events(600, timeout=90)
    await wait_until_async(
        lambda: not check_integrity(outbox), 30, interval=0.05, message="the outbox emptied"
    )
    results = []
    for child in drainers:
        assert child.stdin is not None
        child.stdin.write("stop\n")
        child.stdin.flush()
        out, _ = await asyncio.to_thread(child.communicate, timeout=60)
        results.append(json.loads(out.strip().splitlines()[-1]))
    delivered = Counter(event["event_id"] for event in collector.events())
    assert set(delivered) == set(stored)
    assert max(delivered.values()) == 1
    assert sum(r["drained"] for r in results) == 600
    assert sum(r["drained"] > 0 for r in results) >= 2  # they really shared the work
    assert all(r["adopted"] == r["drained"] == r["sent"] for r in results)


FORK_WHILE_SPILLING = textwrap.dedent(
    """
    import json, os, random, sys, threading, time
    from errlink.sync import Client
    dsn, outbox = sys.argv[1], sys.argv[2]
    client = Client(dsn, outbox=outbox, http_timeout=1.0)
    stop = threading.Event()

    def keep_capturing():
        n = 0
        while not stop.is_set():
            client.capture_message(f"parent {n}")
            n += 1
            time.sleep(0.0005)

    capturer = threading.Thread(target=keep_capturing)
    capturer.start()
    children = []
    for index in range(5):
        time.sleep(random.uniform(0.05, 0.3))  # the writer thread is busy spilling meanwhile
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                stop.set()  # the capturing thread does not exist here; this client is reset
                for n in range(20):
                    client.capture_message(f"child {index} {n}")
                client.close(10)
                code = 0 if client.stats.in_outbox == 20 else 2
            finally:
                os._exit(code)
        children.append(pid)
    codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in children]
    stop.set()
    capturer.join()
    client.close(10)
    print(json.dumps({"codes": codes, "parent": client.stats.in_outbox}))
    """
)


async def test_forking_while_the_writer_spills_neither_deadlocks_nor_corrupts(
    proxy: FaultProxy, tmp_path: Path
) -> None:
    outbox = tmp_path / "outbox.sqlite3"
    await proxy.go_down()
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", FORK_WHILE_SPILLING, proxy.dsn(), str(outbox)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["codes"] == [0] * 5  # every child spilled its own 20 events
    stored = check_integrity(outbox)
    assert len(stored) == result["parent"] + 5 * 20
    assert len(set(stored)) == len(stored)
