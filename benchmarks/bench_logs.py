"""Caller-side cost of one structured log line: `errlink.logger.info(...)` against the stdlib
`logging` call it resembles, and `sentry_sdk.logger.info(...)` when sentry-sdk is installed.

Run: python -m benchmarks.bench_logs [--quick]

What is measured is the CPU time of the calling thread (`time.thread_time`) per call, so the
work a library does in its own threads (errlink builds, scrubs and encodes records on its
sender; sentry-sdk has a flusher thread) is not charged to the caller, and the figure is what
the application's thread pays. Every line is enabled (nothing is filtered out by level).

The stdlib baselines, a logger at INFO with one handler:

- ``QueueHandler``: `logging.handlers.QueueHandler` on a `queue.SimpleQueue`, the stdlib's own
  way of keeping a handler's I/O out of the caller: it formats the message and hands the record
  to another thread. This is the fair equivalent of errlink's work (keep the record, hand it
  over), and the target: errlink's call should cost no more.
- ``NullHandler``: the record is made and handed to a handler that does nothing with it, the
  least an enabled stdlib call can cost (for scale).

Two lines: one parameter, and three parameters with two attributes (``extra=`` for the stdlib).
Each SDK runs in a fresh process, with a transport that discards what it is given, in rounds of
2,000 calls (a flush between rounds, not timed, so no buffer overflows); the figure is the
median round.
"""

from __future__ import annotations

import argparse
import json
import logging
import logging.handlers
import os
import queue
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PER_ROUND = 2000
SUBJECTS = ("stdlib QueueHandler", "stdlib NullHandler", "errlink", "sentry-sdk")

Line = Callable[[int], None]


def _median_us(line: Line, rounds: int, between: Callable[[], Any]) -> float:
    samples = []
    for _ in range(rounds):
        start = time.thread_time()
        for n in range(PER_ROUND):
            line(n)
        samples.append((time.thread_time() - start) / PER_ROUND * 1e6)
        between()
    return statistics.median(samples)


def _stdlib(handler: logging.Handler) -> tuple[Line, Line, Callable[[], Any]]:
    log = logging.getLogger(f"bench.{type(handler).__name__}")
    log.propagate = False
    log.setLevel(logging.INFO)
    log.addHandler(handler)
    extra = {"shop": "eu", "retry": True}

    def one(n: int) -> None:
        log.info("payment %s failed", n)

    def three(n: int) -> None:
        log.info("payment %s failed for %s after %s tries", n, "ada", 3, extra=extra)

    return one, three, lambda: None


def _queue_handler() -> tuple[Line, Line, Callable[[], Any]]:
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    one, three, _ = _stdlib(logging.handlers.QueueHandler(records))

    def drain() -> None:  # what a QueueListener's thread would take off the queue
        while not records.empty():
            records.get_nowait()

    return one, three, drain


def _errlink() -> tuple[Line, Line, Callable[[], Any]]:
    import errlink
    from benchmarks.bench_capture import NullTransport
    from errlink._capture.binding import set_default_client
    from errlink.sync import Client

    client = Client("http://k@127.0.0.1:1/1", transport=NullTransport())
    set_default_client(client.core)
    log = errlink.logger
    attributes = {"shop": "eu", "retry": True}

    def one(n: int) -> None:
        log.info("payment {order_id} failed", order_id=n)

    def three(n: int) -> None:
        log.info(
            "payment {order_id} failed for {user} after {tries} tries",
            order_id=n,
            user="ada",
            tries=3,
            attributes=attributes,
        )

    return one, three, lambda: client.flush(30)


def _sentry_sdk() -> tuple[Line, Line, Callable[[], Any]] | None:
    from benchmarks._sdks import init_sentry_sdk_without_transport

    try:
        sdk = init_sentry_sdk_without_transport(enable_logs=True)
    except TypeError:  # older releases: an experiment
        sdk = init_sentry_sdk_without_transport(_experiments={"enable_logs": True})
    if sdk is None:
        return None
    from sentry_sdk import logger as log

    attributes = {"shop": "eu", "retry": True}

    def one(n: int) -> None:
        log.info("payment {order_id} failed", order_id=n)

    def three(n: int) -> None:
        log.info(
            "payment {order_id} failed for {user} after {tries} tries",
            order_id=n,
            user="ada",
            tries=3,
            attributes=attributes,
        )

    return one, three, lambda: sdk.flush(30)


def child(subject: str, rounds: int) -> dict[str, Any]:
    if subject == "stdlib QueueHandler":
        lines = _queue_handler()
    elif subject == "stdlib NullHandler":
        lines = _stdlib(logging.NullHandler())
    elif subject == "errlink":
        lines = _errlink()
    else:
        found = _sentry_sdk()
        if found is None:
            return {"missing": True}
        lines = found
    one, three, between = lines
    for line in (one, three):  # warm up
        for n in range(200):
            line(n)
        between()
    return {
        "one": _median_us(one, rounds, between),
        "three": _median_us(three, rounds, between),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    rounds = 3 if args.quick else 15
    if args.child:
        print(json.dumps(child(args.child, rounds)))
        return 0
    results: dict[str, dict[str, Any]] = {}
    for subject in SUBJECTS:
        proc = subprocess.run(
            [sys.executable, "-m", "benchmarks.bench_logs", "--child", subject]
            + (["--quick"] if args.quick else []),
            capture_output=True,
            text=True,
            timeout=600,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        if proc.returncode != 0:
            raise RuntimeError(f"{subject} failed:\n{proc.stderr[-2000:]}")
        results[subject] = json.loads(proc.stdout.strip().splitlines()[-1])
    print("| log line | SDK | µs/call in the caller | vs stdlib QueueHandler | notes |")
    print("|---|---|---|---|---|")
    for key, label in (("one", "1 parameter"), ("three", "3 parameters + 2 attributes")):
        target = results["stdlib QueueHandler"][key]
        for subject in SUBJECTS:
            figures = results[subject]
            if figures.get("missing"):
                print(f"| {label} | {subject} | not installed | | |")
                continue
            note = "the target" if subject == "stdlib QueueHandler" else ""
            print(
                f"| {label} | {subject} | {figures[key]:.2f} µs | "
                f"{figures[key] / target:.2f}x | {note} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
