"""Delivery to a loopback collector in another process: events/s, drops, and caller cost.

Run: python -m benchmarks.bench_delivery [--quick]

- async burst: one coroutine captures N exceptions with `await AsyncClient.capture_exception()`
  (queue large enough to hold them), then flushes; events/s is N over capture-to-flushed time.
- sync threads: 8 threads capture N/8 each through `errlink.sync.Client`, then flush; also the
  caller-side µs per capture while the sender is busy.
- default queue: the same async burst with the default queue_size (1000), showing how many were
  dropped as queue_overflow and that every event is accounted for.
The collector counts what it stored, so "delivered" is the server's own count.
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
from typing import Any

from benchmarks._workload import raise_deep
from errlink import AsyncClient
from errlink.sync import Client
from tests._support.collector import CollectorProcess


async def _async_burst(dsn: str, n: int, queue_size: int) -> dict[str, Any]:
    client = AsyncClient(dsn, queue_size=queue_size)
    start = time.perf_counter()
    for _ in range(n):
        await client.capture_exception(raise_deep(10))
    captured_at = time.perf_counter()
    flushed = await client.flush(timeout=600)
    done = time.perf_counter()
    stats = client.stats
    await client.aclose(10)
    return {
        "captured": n,
        "capture_us": (captured_at - start) / n * 1e6,
        "seconds": done - start,
        "flushed": flushed,
        "sent": stats.sent,
        "dropped": dict(stats.dropped),
    }


def _sync_threads(dsn: str, n: int, threads: int) -> dict[str, Any]:
    client = Client(dsn, queue_size=n)
    per_thread = n // threads
    caller_seconds: list[float] = []
    barrier = threading.Barrier(threads)

    def worker() -> None:
        barrier.wait()
        begin = time.perf_counter()
        for _ in range(per_thread):
            client.capture_exception(raise_deep(10))
        caller_seconds.append(time.perf_counter() - begin)

    start = time.perf_counter()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    flushed = client.flush(600)
    done = time.perf_counter()
    stats = client.stats
    client.close(10)
    return {
        "captured": per_thread * threads,
        "capture_us": sum(caller_seconds) / (per_thread * threads) * 1e6,
        "seconds": done - start,
        "flushed": flushed,
        "sent": stats.sent,
        "dropped": dict(stats.dropped),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small bursts (smoke test)")
    args = parser.parse_args(argv)
    n = 500 if args.quick else 10_000
    rows = []
    with CollectorProcess() as sink:
        before = sink.stats()["events"]
        result = asyncio.run(_async_burst(sink.dsn, n, queue_size=n))
        result["stored"] = sink.stats()["events"] - before
        rows.append(("async burst, queue holds all", result))

        before = sink.stats()["events"]
        result = _sync_threads(sink.dsn, n, threads=8)
        result["stored"] = sink.stats()["events"] - before
        rows.append(("sync, 8 threads", result))

        before = sink.stats()["events"]
        result = asyncio.run(_async_burst(sink.dsn, n, queue_size=1000))
        result["stored"] = sink.stats()["events"] - before
        rows.append(("async burst, default queue 1000", result))

    print(f"exception 10 frames deep, 5 locals per frame; {n} captures per row\n")
    print("| scenario | caller µs/capture | delivered | events/s | dropped | flush ok |")
    print("|---|---:|---:|---:|---|---|")
    for name, r in rows:
        rate = r["stored"] / r["seconds"] if r["seconds"] else 0.0
        dropped = ", ".join(f"{k} {v}" for k, v in r["dropped"].items()) or "0"
        print(
            f"| {name} | {r['capture_us']:.1f} | {r['stored']} | {rate:.0f} | {dropped} "
            f"| {r['flushed']} |"
        )
        assert r["stored"] + sum(r["dropped"].values()) == r["captured"], r


if __name__ == "__main__":
    main()
