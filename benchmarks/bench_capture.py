"""Caller-side cost of capturing an exception: µs per event, errlink (and peers when installed).

Run: python -m benchmarks.bench_capture [--quick]

Measures, for an exception raised 10 frames deep with 5 locals per frame:
- build: errlink's EventBuilder alone (frames, context lines, locals, scope) - the work the
  host application pays per error;
- capture (sync): `errlink.sync.Client.capture_exception`, build plus hand-over to the pipeline;
- capture (async): `await AsyncClient.capture_exception` on the running loop;
and the same with locals off. The transport is an in-memory sink, so only the caller's work is
timed. Medians over repeated rounds; compare figures within one run (the machine is shared).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from benchmarks._sdks import init_sentry_sdk_without_transport
from benchmarks._workload import raise_deep
from errlink import AsyncClient, TransportResponse
from errlink._capture.scope import current_scope
from errlink._wire.envelope import Envelope
from errlink.sync import Client


class NullTransport:
    async def send(self, envelope: Envelope) -> TransportResponse:
        return TransportResponse(200, {})

    async def aclose(self) -> None:
        pass


def _median_us(fn: Callable[[], Any], rounds: int, per_round: int) -> float:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(per_round):
            fn()
        samples.append((time.perf_counter() - start) / per_round * 1e6)
    return statistics.median(samples)


def bench_errlink(rounds: int, per_round: int) -> dict[str, float]:
    results: dict[str, float] = {}
    for include_locals in (True, False):
        suffix = "" if include_locals else ", locals off"
        client = Client(
            transport=NullTransport(), queue_size=1_000_000, include_locals=include_locals
        )
        builder = client.core.builder
        exc = raise_deep(10)
        scope = current_scope()
        results[f"errlink build{suffix}"] = _median_us(
            lambda b=builder, e=exc, s=scope: b.exception_event(e, s, {}), rounds, per_round
        )

        def capture_sync(c: Client = client) -> None:
            # A fresh exception each time: the same object is deduplicated by design.
            c.capture_exception(raise_deep(10))

        raise_only = _median_us(lambda: raise_deep(10), rounds, per_round)
        results[f"errlink capture (sync){suffix}"] = (
            _median_us(capture_sync, rounds, per_round) - raise_only
        )
        client.close(5)

        async def run_async(
            locals_on: bool = include_locals, baseline: float = raise_only
        ) -> float:
            aclient = AsyncClient(
                transport=NullTransport(), queue_size=1_000_000, include_locals=locals_on
            )
            samples = []
            for _ in range(rounds):
                start = time.perf_counter()
                for _ in range(per_round):
                    await aclient.capture_exception(raise_deep(10))
                samples.append((time.perf_counter() - start) / per_round * 1e6)
                await aclient.flush(30)
            await aclient.aclose(30)
            return statistics.median(samples) - baseline

        results[f"errlink capture (async){suffix}"] = asyncio.run(run_async())
    return results


def bench_sentry_sdk(rounds: int, per_round: int) -> dict[str, float]:
    results: dict[str, float] = {}
    for include_locals in (True, False):
        suffix = "" if include_locals else ", locals off"
        sentry_sdk = init_sentry_sdk_without_transport(include_local_variables=include_locals)
        if sentry_sdk is None:
            return {}
        raise_only = _median_us(lambda: raise_deep(10), rounds, per_round)
        results[f"sentry-sdk capture{suffix}"] = (
            _median_us(lambda s=sentry_sdk: s.capture_exception(raise_deep(10)), rounds, per_round)
            - raise_only
        )
        sentry_sdk.get_client().close(timeout=0)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few rounds only (smoke test)")
    args = parser.parse_args(argv)
    rounds, per_round = (3, 50) if args.quick else (15, 400)
    results = bench_errlink(rounds, per_round)
    results.update(bench_sentry_sdk(rounds, per_round))
    print(f"Python {sys.version.split()[0]}; exception 10 frames deep, 5 locals per frame")
    print(f"median of {rounds} rounds x {per_round} events\n")
    print("| measurement | µs per event |")
    print("|---|---:|")
    for name, value in results.items():
        print(f"| {name} | {value:.1f} |")


if __name__ == "__main__":
    main()
