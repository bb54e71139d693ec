"""Caller-side cost of capturing an exception whose locals hold 100 KB of digit-heavy text.

Run: python -m benchmarks.bench_scan [--quick]

The card-number scan runs over every string an event carries. A frame whose locals hold numeric
data (ids, amounts, CSV rows) must not cost much more to capture than one holding letters. The
exception is raised 10 frames deep; the frame that raises holds 100 KB of text in its locals,
in two shapes at once:

- ``rows``: 100 strings of 1 KB (two lists of 50, since containers are cut at 50 items), each
  kept whole, so every character is scanned;
- ``blob``: one 100 KB string, cut to ``max_value_length`` (the scan must still cover what is
  kept, including a card straddling the cut).

Texts: letters (the baseline), ``'1234 5678 '`` repeated, random numbers of 1-8 digits with
spaces and dashes, and random digits with few separators (card-shaped numbers, the worst case).
Each figure is the median µs per capture, errlink's sync client and sentry-sdk side by side,
each with an in-memory transport; the ratio is digit-heavy / letters for the same SDK. Rounds
take turns between the texts, so that a noisy neighbour slows them alike; still, compare figures
within one run (the machine is shared).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from benchmarks._sdks import init_sentry_sdk_without_transport
from benchmarks.bench_capture import NullTransport
from errlink.sync import Client

SIZE = 100_000
ROW = 1000


def _texts() -> dict[str, str]:
    rng = random.Random(7)
    return {
        "letters": "".join(rng.choice("abcdefghij klmnop") for _ in range(SIZE)),
        "'1234 5678 ' repeated": "1234 5678 " * (SIZE // 10),
        # Numbers of 1 to 8 digits, as in a table of ids and amounts.
        "random numbers, spaces, dashes": "".join(
            "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 8))) + rng.choice(" -")
            for _ in range(SIZE // 4)
        )[:SIZE],
        # Random digits, a space or dash one character in 16: numbers of 16 digits on average,
        # many of them shaped like cards, each needing a Luhn check.
        "random digits, 1 in 16 a space or dash": "".join(
            rng.choice("0123456789" * 3 + " -") for _ in range(SIZE)
        ),
    }


def _raise_with(text: str) -> BaseException:
    return _deep(10, text)


def _deep(remaining: int, text: str) -> BaseException:
    if remaining > 1:
        return _deep(remaining - 1, text)
    rows = [text[i : i + ROW] for i in range(0, SIZE // 2, ROW)]
    more_rows = [text[i : i + ROW] for i in range(SIZE // 2, SIZE, ROW)]
    blob = text
    try:
        raise ValueError(f"payment declined ({len(rows)}, {len(more_rows)}, {len(blob)})")
    except ValueError as exc:
        return exc


def _median_us_each(
    capture: Callable[[BaseException], Any], texts: dict[str, str], rounds: int, per_round: int
) -> dict[str, float]:
    """Median µs per capture for each text. Rounds take turns between the texts, so that a noisy
    neighbour on the machine slows them all alike instead of one."""
    samples: dict[str, list[float]] = {name: [] for name in texts}
    for _ in range(rounds):
        for name, text in texts.items():
            # A fresh exception per capture: the same object is reported once by design.
            exceptions = [_raise_with(text) for _ in range(per_round)]
            start = time.perf_counter()
            for exception in exceptions:
                capture(exception)
            samples[name].append((time.perf_counter() - start) / per_round * 1e6)
    return {name: statistics.median(values) for name, values in samples.items()}


def bench_errlink(texts: dict[str, str], rounds: int, per_round: int) -> dict[str, float]:
    client = Client(transport=NullTransport(), queue_size=1_000_000)
    results = _median_us_each(client.capture_exception, texts, rounds, per_round)
    client.close(10)
    return results


def bench_sentry_sdk(texts: dict[str, str], rounds: int, per_round: int) -> dict[str, float]:
    sentry_sdk = init_sentry_sdk_without_transport()
    if sentry_sdk is None:
        return {}
    results = _median_us_each(sentry_sdk.capture_exception, texts, rounds, per_round)
    sentry_sdk.get_client().close(timeout=0)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few rounds only (smoke test)")
    args = parser.parse_args(argv)
    rounds, per_round = (3, 10) if args.quick else (31, 20)
    texts = _texts()
    sdks = {"errlink": bench_errlink(texts, rounds, per_round)}
    peer = bench_sentry_sdk(texts, rounds, per_round)
    if peer:
        sdks["sentry-sdk"] = peer
    print(f"Python {sys.version.split()[0]}; exception 10 frames deep, 100 KB of text in locals")
    print(f"median of {rounds} rounds x {per_round} captures\n")
    print("| locals | SDK | µs per capture | vs letters |")
    print("|---|---|---:|---:|")
    for name in texts:
        for sdk, results in sdks.items():
            ratio = results[name] / results["letters"]
            print(f"| {name} | {sdk} | {results[name]:.1f} | {ratio:.2f}x |")


if __name__ == "__main__":
    main()
