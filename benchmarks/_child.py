"""One benchmark measurement in a fresh process: `python -m benchmarks._child SCENARIO JSON`.

Prints one JSON line with the result (the parent aggregates medians over several processes).
"""

from __future__ import annotations

import asyncio
import gc
import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from benchmarks._workload import raise_deep


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _send_path_imported(sdk: str) -> None:
    """For errlink: wait until its loop thread has imported the send path, which it does after
    `init()` returns, so that a memory figure taken next does not count that import."""
    if sdk.startswith("errlink"):
        from errlink.sync import _warmup

        _warmup.wait(30)


def _per_call_us(fn: Callable[[], Any], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


def capture(p: dict[str, Any]) -> dict[str, Any]:
    """Caller-side µs per capture_exception of a fresh exception (raise cost subtracted)."""
    from benchmarks._sdks import make

    # Room for every capture below half the queue: errlink never paces in this scenario.
    sdk = make(p["sdk"], p["dsn"], include_locals=p["locals"], queue_size=2 * p["n"] + 100)
    n = p["n"]
    raise_us = _per_call_us(raise_deep, n)
    if p["sdk"] == "errlink-async":

        async def run() -> float:
            for _ in range(50):
                await sdk.capture_async(raise_deep())
            await sdk.flush_async(30)
            start = time.perf_counter()
            for _ in range(n):
                await sdk.capture_async(raise_deep())
            elapsed = (time.perf_counter() - start) / n * 1e6
            await sdk.flush_async(60)
            await sdk.close_async()  # type: ignore[attr-defined]
            return elapsed

        total_us = asyncio.run(run())
    else:
        for _ in range(50):
            sdk.capture(raise_deep())
        sdk.flush(30)
        total_us = _per_call_us(lambda: sdk.capture(raise_deep()), n)
        sdk.flush(60)
        sdk.close()
    return {"us": total_us - raise_us}


def throughput(p: dict[str, Any]) -> dict[str, Any]:
    """A burst of n captures, then flush: the parent reads how many reached the sink."""
    from benchmarks._sdks import make

    sdk = make(
        p["sdk"],
        p["dsn"],
        include_locals=True,
        queue_size=p.get("queue_size"),
        queue_max_bytes=p.get("queue_max_bytes"),
    )
    exceptions = [raise_deep() for _ in range(p["n"])]
    cpu_start = time.process_time()
    if p["sdk"] == "errlink-async":

        async def run() -> tuple[float, float]:
            start = time.perf_counter()
            for exc in exceptions:
                await sdk.capture_async(exc)
            captured = time.perf_counter()
            await sdk.flush_async(p["timeout"])
            return start, captured

        start, captured = asyncio.run(run())
    else:
        start = time.perf_counter()
        for exc in exceptions:
            sdk.capture(exc)
        captured = time.perf_counter()
        sdk.flush(p["timeout"])
    done = time.perf_counter()
    return {
        "capture_seconds": captured - start,
        "seconds": done - start,
        # Every thread of the process: the captures and the sender's work, which share one GIL.
        "cpu_us_per_event": (time.process_time() - cpu_start) / p["n"] * 1e6,
        "dropped": sdk.dropped(),
    }


def loop_lag(p: dict[str, Any]) -> dict[str, Any]:
    """Lateness of a 1 ms ticker while coroutines capture (a burst, then paced captures)."""
    from benchmarks._sdks import make

    sdk = (
        make(p["sdk"], p["dsn"], include_locals=True, queue_size=10_000)
        if p["sdk"] != "none"
        else None
    )

    async def capture_one() -> None:
        exc = raise_deep()
        if sdk is not None:
            await sdk.capture_async(exc)
        await asyncio.sleep(0)

    async def run() -> dict[str, Any]:
        lags: list[float] = []
        running = True

        async def ticker() -> None:
            loop = asyncio.get_running_loop()
            while running:
                before = loop.time()
                await asyncio.sleep(0.001)
                lags.append(max(0.0, loop.time() - before - 0.001))

        tick = asyncio.create_task(ticker())
        await asyncio.sleep(0.05)
        lags.clear()
        await asyncio.gather(*(capture_one() for _ in range(p["burst"])))
        await asyncio.sleep(0.05)
        burst_max = max(lags) if lags else 0.0
        if sdk is not None:
            await sdk.flush_async(60)  # the paced part starts with nothing left to send
        await asyncio.sleep(0.05)
        lags.clear()
        for _ in range(p["paced"]):
            await capture_one()
            await asyncio.sleep(0.002)
        paced = sorted(lags) or [0.0]
        running = False
        await tick
        if sdk is not None:
            await sdk.flush_async(60)
        return {
            "burst_max_ms": burst_max * 1000,
            "paced_p50_ms": statistics.median(paced) * 1000,
            "paced_p99_ms": paced[int(len(paced) * 0.99) - 1 if len(paced) > 1 else 0] * 1000,
            "paced_max_ms": paced[-1] * 1000,
        }

    if p.get("selector") == "select":
        # select() waits with microsecond precision; epoll (asyncio's default on Linux) rounds
        # every wait up to a whole millisecond.
        import selectors

        loop = asyncio.SelectorEventLoop(selectors.SelectSelector())
        try:
            return loop.run_until_complete(run())
        finally:
            loop.close()
    return asyncio.run(run())


def server_down(p: dict[str, Any]) -> dict[str, Any]:
    """Capture cost and memory with nothing listening; the parent times the exit after this."""
    from benchmarks._sdks import make

    sdk = make(p["sdk"], p["dsn"], include_locals=True)
    _send_path_imported(p["sdk"])
    gc.collect()
    before = rss_kib()

    def measured(us: float) -> dict[str, Any]:
        gc.collect()
        return {"us": us, "rss_growth_kib": rss_kib() - before, "dropped": sdk.dropped()}

    if p["sdk"] == "errlink-async":

        async def run() -> dict[str, Any]:
            start = time.perf_counter()
            for _ in range(p["n"]):
                await sdk.capture_async(raise_deep())
            result = emit(measured((time.perf_counter() - start) / p["n"] * 1e6))
            # An async application closes its client on its loop before it exits: the exit
            # time the parent measures from the result line includes that.
            await sdk.close_async()
            return result

        return asyncio.run(run())
    return measured(_per_call_us(lambda: sdk.capture(raise_deep()), p["n"]))


def startup(p: dict[str, Any]) -> dict[str, Any]:
    """Import time and resident memory of importing and initialising the SDK, idle."""
    before = rss_kib()
    start = time.perf_counter()
    if p["sdk"] != "none":
        from benchmarks._sdks import make

        make(p["sdk"], p["dsn"])
    seconds = time.perf_counter() - start
    # init() has returned; errlink's loop thread imports the send path from here on. The
    # memory figure is read once that is done, and the time it took is reported too.
    _send_path_imported(p["sdk"])
    ready = time.perf_counter() - start
    gc.collect()
    return {
        "ms": seconds * 1000,
        "ready_ms": ready * 1000,
        "rss_kib": rss_kib(),
        "rss_growth_kib": rss_kib() - before,
    }


def floor(p: dict[str, Any]) -> dict[str, Any]:
    """What the wire allows: encoding the same event, and a raw aiohttp loop POSTing its
    envelope to the sink."""
    import gzip

    import aiohttp
    import orjson

    from errlink._capture.event import EventBuilder
    from errlink._capture.scope import current_scope
    from errlink._options import build_options

    builder = EventBuilder(build_options(None, {}))
    event = builder.exception_event(raise_deep(), current_scope(), {})
    encoded = orjson.dumps(event)
    n = p["n"]
    result: dict[str, Any] = {
        "event_bytes": len(encoded),
        "json_us": _per_call_us(lambda: json.dumps(event), n),
        "orjson_us": _per_call_us(lambda: orjson.dumps(event), n),
        "gzip1_us": _per_call_us(lambda: gzip.compress(encoded, 1), n),
        "gzip9_us": _per_call_us(lambda: gzip.compress(encoded, 9), n),
    }
    # The request errlink makes for this event, made by hand: the same envelope, gzipped, to
    # the same endpoint (the sink undoes the gzip and reads the item headers, as for errlink).
    envelope = b"\n".join(
        [
            orjson.dumps({"event_id": event["event_id"]}),
            orjson.dumps({"type": "event", "length": len(encoded)}),
            encoded,
            b"",
        ]
    )
    body = gzip.compress(envelope, 1)
    url = p["dsn"].replace("pub@", "").rsplit("/", 1)[0] + "/api/1/envelope/"
    headers = {
        "Content-Encoding": "gzip",
        "Content-Type": "application/x-sentry-envelope",
        "X-Sentry-Auth": "Sentry sentry_key=pub, sentry_version=7",
    }

    async def post_loop(in_flight: int) -> float:
        connector = aiohttp.TCPConnector(limit=in_flight)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def worker(count: int) -> None:
                for _ in range(count):
                    async with session.post(url, data=body, headers=headers) as response:
                        await response.read()

            requests = p["posts"]
            start = time.perf_counter()
            await asyncio.gather(*(worker(requests // in_flight) for _ in range(in_flight)))
            return requests / (time.perf_counter() - start)

    result["post_rps_1"] = asyncio.run(post_loop(1))
    result["post_rps_4"] = asyncio.run(post_loop(4))  # errlink's max_in_flight
    result["post_rps_8"] = asyncio.run(post_loop(8))
    return result


def delivery_alone(p: dict[str, Any]) -> dict[str, Any]:
    """errlink's pipeline sending n events built beforehand: the burst without its captures,
    the part that the raw POST floor compares with."""
    import orjson

    from errlink._capture.event import EventBuilder
    from errlink._capture.scope import current_scope
    from errlink._delivery.build import build_pipeline
    from errlink._delivery.stats import Stats
    from errlink._options import build_options

    n = p["n"]
    event = EventBuilder(build_options(None, {})).exception_event(raise_deep(), current_scope(), {})
    encoded = orjson.dumps(event)
    events = [orjson.loads(encoded) for _ in range(n)]
    for index, copy in enumerate(events):
        copy["event_id"] = f"{index:032x}"
    options = build_options(p["dsn"], {"queue_size": n + 10, "queue_max_bytes": 1 << 40})
    stats = Stats()
    pipeline = build_pipeline(options, stats=stats, sdk_info={"name": "bench", "version": "0"})
    for copy in events:
        pipeline.submit(copy)
    pipeline.prepare()

    async def run() -> tuple[float, float]:
        cpu_start, start = time.process_time(), time.perf_counter()
        pipeline.start()
        await pipeline.flush(p["timeout"])
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        await pipeline.aclose(5)
        return seconds, cpu

    seconds, cpu = asyncio.run(run())
    return {"seconds": seconds, "cpu_us_per_event": cpu / n * 1e6, "sent": stats.snapshot().sent}


SCENARIOS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "capture": capture,
    "throughput": throughput,
    "delivery_alone": delivery_alone,
    "loop_lag": loop_lag,
    "server_down": server_down,
    "startup": startup,
    "floor": floor,
}


_emitted = False


def emit(result: dict[str, Any]) -> dict[str, Any]:
    """Print the result line now (a scenario that goes on after measuring calls this itself)."""
    global _emitted
    if not _emitted:
        _emitted = True
        print("RESULT " + json.dumps(result), flush=True)
    return result


def main() -> None:
    scenario, params = sys.argv[1], json.loads(sys.argv[2])
    emit(SCENARIOS[scenario](params))


if __name__ == "__main__":
    main()
