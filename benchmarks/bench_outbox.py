"""The disk outbox: the store choice, spill rate, drain rate and disk bytes per event.

Run: python -m benchmarks.bench_outbox [--quick]

1. Store choice. The same realistic events (an exception 10 frames deep with 5 locals per frame,
   encoded as errlink sends it) written by errlink's SQLite store (WAL, one transaction per
   batch, zlib level 1) and by a one-file-per-event store (write a temporary file, rename it
   into place: atomic, so a crash never leaves half a record), with and without fsync. Then
   claiming and deleting them all. Disk bytes per event are the allocated blocks.
2. Spill rate. N events queued at once in a client whose server refuses connections; events/s
   from the first spill until all are in the outbox (the sender side and the writer thread,
   not capture cost; see bench_capture for that).
3. Drain rate. An outbox holding N events for a collector running in another process; events/s
   from the client's start until the collector stored all N (sequential sends, each deleted
   after its 2xx, no rate limit).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
import zlib
from pathlib import Path
from typing import Any

from benchmarks._workload import raise_deep
from errlink import Dsn
from errlink._assembly import assemble_core
from errlink._capture.event import EventBuilder
from errlink._capture.scope import current_scope
from errlink._options import build_options
from errlink._outbox.records import SpillRecord, outbox_target
from errlink._outbox.store import OutboxStore
from errlink._wire.codec import dumps
from errlink.sync import Client
from tests._support import free_port, wait_until, wait_until_async
from tests._support.collector import CollectorProcess


def realistic_payloads(n: int) -> list[SpillRecord]:
    builder = EventBuilder(build_options(None, {}), ())
    records = []
    for _ in range(n):
        event = builder.exception_event(raise_deep(10), current_scope(), {}, handled=True)
        payload = dumps(event)
        records.append(SpillRecord(event["event_id"], "event", "error", payload))
    return records


def disk_bytes(paths: list[Path]) -> int:
    total = 0
    for path in paths:
        if path.is_dir():
            total += sum(p.stat().st_blocks * 512 for p in path.iterdir())
        elif path.exists():
            total += path.stat().st_blocks * 512
    return total


# -- 1. the store choice -------------------------------------------------------------------------


def bench_sqlite(records: list[SpillRecord], batch: int, workdir: Path) -> dict[str, float]:
    path = workdir / f"sqlite-{batch}.sqlite3"
    store = OutboxStore(path, target="bench", max_bytes=10**12, max_age=10**9)
    store.open()
    start = time.perf_counter()
    for index in range(0, len(records), batch):
        store.append(records[index : index + batch])
    spilled = time.perf_counter() - start
    on_disk = disk_bytes([path, path.with_name(path.name + "-wal")])
    start = time.perf_counter()
    while True:
        claim = store.claim(20, 60)
        if not claim.events:
            break
        for event in claim.events:
            store.remove(event.row_id)
    drained = time.perf_counter() - start
    store.close()
    return {"spill": len(records) / spilled, "drain": len(records) / drained, "bytes": on_disk}


def bench_files(records: list[SpillRecord], fsync: bool, workdir: Path) -> dict[str, float]:
    directory = workdir / f"files-{fsync}"
    directory.mkdir()
    start = time.perf_counter()
    for seq, record in enumerate(records):
        blob = zlib.compress(record.payload, 1)
        temporary = directory / f".tmp-{record.event_id}"
        with open(temporary, "wb") as handle:
            handle.write(blob)
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(temporary, directory / f"{seq:012d}-{record.event_id}.z")
    spilled = time.perf_counter() - start
    on_disk = disk_bytes([directory])
    start = time.perf_counter()
    while True:
        # Claiming a file is renaming it away (atomic across processes), oldest first.
        names = sorted(n for n in os.listdir(directory) if not n.startswith((".", "claimed")))[:20]
        if not names:
            break
        for name in names:
            claimed = directory / f"claimed-{os.getpid()}-{name}"
            os.rename(directory / name, claimed)
            zlib.decompress(claimed.read_bytes())
            claimed.unlink()
    drained = time.perf_counter() - start
    return {"spill": len(records) / spilled, "drain": len(records) / drained, "bytes": on_disk}


# -- 2. spill rate through a client --------------------------------------------------------------


def refused_dsn() -> str:
    return f"http://bench@127.0.0.1:{free_port()}/1"  # nothing listens there any more


def bench_spill(n: int, workdir: Path) -> dict[str, Any]:
    """Steady-state spill rate of the pipeline: N events queued at once, the server refusing.

    Events are built up front (shallow copies of one exception event with fresh ids) so the
    figure is what the sender side and the writer thread can move to disk, not capture cost.
    The clock starts at the first spill: the first attempts wait out a retry before the
    client decides the server is down.
    """
    outbox = workdir / "spill.sqlite3"
    core = assemble_core(
        build_options(refused_dsn(), {"outbox": str(outbox), "queue_size": n, "http_timeout": 1.0}),
        start=lambda pipeline: None,  # started below, on this benchmark's loop
    )
    pipeline = core.pipeline
    assert pipeline is not None
    base = core.builder.exception_event(raise_deep(10), current_scope(), {}, handled=True)
    for _ in range(n):
        pipeline.submit({**base, "event_id": uuid.uuid4().hex})

    async def run() -> tuple[float, float]:
        pipeline.start()
        await wait_until_async(lambda: core.stats.snapshot().spilled > 0, 600, interval=0.0005)
        first = time.perf_counter()
        await wait_until_async(lambda: core.stats.snapshot().pending == 0, 600, interval=0.0005)
        last = time.perf_counter()
        await pipeline.aclose(10)
        return first, last

    first, last = asyncio.run(run())
    stats = core.stats.snapshot()
    on_disk = disk_bytes([outbox, outbox.with_name(outbox.name + "-wal")])
    return {
        "rate": (stats.spilled - 1) / (last - first),
        "in_outbox": stats.in_outbox,
        "dropped": dict(stats.dropped),
        "bytes": on_disk / max(1, stats.in_outbox),
    }


# -- 3. drain rate to a collector in another process -------------------------------------------


def bench_drain(records: list[SpillRecord], workdir: Path) -> dict[str, Any]:
    outbox = workdir / "drain.sqlite3"
    with CollectorProcess() as sink:
        store = OutboxStore(
            outbox,
            target=outbox_target(Dsn.parse(sink.dsn), None),
            max_bytes=10**12,
            max_age=10**9,
        )
        store.open()
        store.append(records)
        store.close()
        before = sink.stats()["events"]
        start = time.perf_counter()
        client = Client(sink.dsn, outbox=outbox, outbox_drain_rate=1e9)
        wait_until(lambda: client.stats.drained >= len(records), 600, interval=0.005)
        done = time.perf_counter()
        client.close(10)
        stored = sink.stats()["events"] - before
    return {"rate": len(records) / (done - start), "stored": stored}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few hundred events (smoke test)")
    args = parser.parse_args(argv)
    n = 300 if args.quick else 5000
    records = realistic_payloads(n)
    raw = sum(len(r.payload) for r in records) / n
    with tempfile.TemporaryDirectory(prefix="errlink-bench-outbox-") as tmp:
        workdir = Path(tmp)
        rows = [
            ("SQLite WAL, 1 event per transaction", bench_sqlite(records, 1, workdir)),
            ("SQLite WAL, 100 events per transaction", bench_sqlite(records, 100, workdir)),
            ("file per event, rename, no fsync", bench_files(records, False, workdir)),
            ("file per event, rename, fsync", bench_files(records, True, workdir)),
        ]
        spill = bench_spill(n, workdir)
        drain = bench_drain(records, workdir)

    print(f"{n} events, exception 10 frames deep with 5 locals; {raw:.0f} bytes of JSON each\n")
    print("| store | spill events/s | claim+delete events/s | disk bytes/event |")
    print("|---|---:|---:|---:|")
    for name, r in rows:
        print(f"| {name} | {r['spill']:,.0f} | {r['drain']:,.0f} | {r['bytes'] / n:,.0f} |")
    print()
    print("| through a client | events/s | notes |")
    print("|---|---:|---|")
    dropped = ", ".join(f"{k} {v}" for k, v in spill["dropped"].items()) or "none"
    print(
        f"| spill (server refusing) | {spill['rate']:,.0f} | {spill['in_outbox']} in outbox, "
        f"dropped: {dropped}, {spill['bytes']:,.0f} disk bytes/event |"
    )
    rate, stored = drain["rate"], drain["stored"]
    print(f"| drain (collector in another process) | {rate:,.0f} | stored {stored} |")
    assert drain["stored"] == n, drain


if __name__ == "__main__":
    main()
