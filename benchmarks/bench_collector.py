"""The local collector: storing with grouping, ingesting over HTTP, and UI pages at 100k events.

Run: python -m benchmarks.bench_collector [--quick] [--events N]

- bulk store: N synthetic Python errors (a 3-frame stack with source context and locals,
  ~2 KB of JSON; half in one hot group, the rest over 200 groups) written through the
  store's own write path, 2,000 per transaction, grouping on.
- HTTP ingest: one envelope per event posted by 8 concurrent connections to `errlink serve`
  in another process, once with every event in one group, once with every event its own group.
- pages: `errlink serve` in another process on the N-event database; each page fetched
  sequentially (after a warm-up), median and 95th percentile of the time to the full body.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from errlink._wire.dsn import Dsn
from errlink._wire.envelope import Envelope
from errlink.collector._records import WriteBatch, event_record
from errlink.collector._store import EventStore
from tests._support.collector import CollectorProcess

GROUPS = 200
ENVIRONMENTS = ("production", "staging", "development", None)
LEVELS = ("error", "warning", "info", "fatal")
_SOURCE = [f"    line_{n} = compute(step={n})" for n in range(5)]


def synthetic_payload(n: int) -> dict[str, Any]:
    group = 0 if n % 2 == 0 else n % GROUPS
    frames = [
        {
            "filename": f"app/module_{depth}.py",
            "abs_path": f"/srv/app/module_{depth}.py",
            "module": f"app.module_{depth}",
            "function": f"job_{group}" if depth == 2 else f"step_{depth}",
            "lineno": 10 + n % 300,
            "pre_context": _SOURCE,
            "context_line": f"    raise JobError(item={n})",
            "post_context": _SOURCE,
            "in_app": depth > 0,
            "vars": {"item": n, "batch": f"batch-{n // 100}", "attempt": n % 3},
        }
        for depth in range(3)
    ]
    payload: dict[str, Any] = {
        "event_id": uuid.uuid4().hex,
        "level": LEVELS[group % len(LEVELS)],
        "platform": "python",
        "release": f"1.{n % 5}.0",
        "exception": {
            "values": [
                {"type": f"Error{group}", "value": f"item {n} failed",
                 "stacktrace": {"frames": frames}},
            ]
        },
        "breadcrumbs": {"values": [{"category": "job", "message": f"picked item {n}"}]},
        "tags": {"queue": f"q{n % 7}"},
    }  # fmt: skip
    environment = ENVIRONMENTS[(n // GROUPS) % len(ENVIRONMENTS)]
    if environment is not None:
        payload["environment"] = environment
    return payload


async def build_database(path: Path, n: int) -> dict[str, float]:
    store = EventStore(path)
    await asyncio.to_thread(store.open)
    payload_seconds = store_seconds = 0.0
    try:
        for first in range(0, n, 2000):
            started = time.perf_counter()
            batch = WriteBatch(
                events=[
                    event_record(synthetic_payload(i), project_id="1", fallback_event_id=None,
                                 where="event")
                    for i in range(first, min(first + 2000, n))
                ]
            )  # fmt: skip
            built = time.perf_counter()
            await store.write(batch)
            payload_seconds += built - started
            store_seconds += time.perf_counter() - built
    finally:
        await asyncio.to_thread(store.close)
    size = await asyncio.to_thread(lambda: path.stat().st_size)
    return {
        "records_per_s": n / payload_seconds,
        "store_per_s": n / store_seconds,
        "mb": size / 1e6,
    }


async def time_pages(dsn: str, runs: int) -> list[tuple[str, float, float, int]]:
    base = f"http://{Dsn.parse(dsn).netloc}"
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base}/api/0/groups/?limit=50") as response:
            listing = await response.json()
        hot = max(listing["groups"], key=lambda group: group["count"])
        async with session.get(f"{base}/api/0/groups/{hot['id']}/events/?limit=1") as response:
            latest = (await response.json())["events"][0]
        deep_before = latest["id"] // 2
        pages = {
            "issue list": "/",
            "issue list, page 2": f"/?after={listing['next']}",
            "by environment": "/?environment=staging",
            "by level": "/?level=warning",
            "by environment and level": "/?environment=production&level=warning",
            "text search": "/?q=Error1",
            "group page (hot group)": f"/groups/{hot['id']}/",
            "group page, deep": f"/groups/{hot['id']}/?before={deep_before}",
            "event page": f"/events/{latest['event_id']}/",
            "API: groups": "/api/0/groups/",
        }
        rows = []
        for name, path in pages.items():
            timings = []
            size = 0
            for attempt in range(runs + 3):
                started = time.perf_counter()
                async with session.get(base + path) as response:
                    body = await response.read()
                    assert response.status == 200, (path, response.status)
                if attempt >= 3:
                    timings.append((time.perf_counter() - started) * 1000)
                size = len(body)
            timings.sort()
            p95 = timings[min(len(timings) - 1, int(len(timings) * 0.95))]
            rows.append((name, statistics.median(timings), p95, size))
    return rows


async def ingest_rate(dsn: str, n: int, *, distinct_groups: bool) -> float:
    parsed = Dsn.parse(dsn)
    headers = {"X-Sentry-Auth": parsed.auth_header()}
    bodies = []
    for i in range(n):
        payload = synthetic_payload(0 if not distinct_groups else 1)
        if distinct_groups:
            payload["exception"]["values"][0]["type"] = f"Distinct{i}"
        envelope = Envelope({"event_id": payload["event_id"]})
        envelope.add_json("event", payload)
        bodies.append(envelope.to_bytes())
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)

    async def worker(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            body = queue.get_nowait()
            async with session.post(parsed.envelope_url, data=body, headers=headers) as response:
                await response.read()
                assert response.status == 200

    async with aiohttp.ClientSession() as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(8)))
        return n / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small database (smoke test)")
    parser.add_argument("--events", type=int, default=None, help="events in the database")
    args = parser.parse_args(argv)
    n = args.events or (5_000 if args.quick else 100_000)
    ingest_n = 500 if args.quick else 5_000
    runs = 5 if args.quick else 30
    with tempfile.TemporaryDirectory(prefix="errlink-bench-collector-") as tmp:
        db = Path(tmp) / "events.db"
        built = asyncio.run(build_database(db, n))
        with CollectorProcess(db=db) as collector:
            pages = asyncio.run(time_pages(collector.dsn, runs))
        with CollectorProcess(db=Path(tmp) / "ingest.db") as collector:
            one_group = asyncio.run(ingest_rate(collector.dsn, ingest_n, distinct_groups=False))
            many_groups = asyncio.run(ingest_rate(collector.dsn, ingest_n, distinct_groups=True))

    print(f"database: {n:,} events, {built['mb']:.0f} MB\n")
    print("| store path | events/s |")
    print("|---|---:|")
    print(f"| validate + group key (event_record) | {built['records_per_s']:,.0f} |")
    print(f"| store.write, 2,000 per transaction, grouping on | {built['store_per_s']:,.0f} |")
    print(f"| HTTP, 8 connections, one event per envelope, one group | {one_group:,.0f} |")
    print(f"| HTTP, 8 connections, one event per envelope, new group each | {many_groups:,.0f} |")
    print(f"\npages with {n:,} stored events ({runs} sequential fetches each)\n")
    print("| page | median ms | p95 ms | KB |")
    print("|---|---:|---:|---:|")
    for name, median, p95, size in pages:
        print(f"| {name} | {median:.1f} | {p95:.1f} | {size / 1024:.0f} |")


if __name__ == "__main__":
    main()
