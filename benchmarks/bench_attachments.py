"""Memory under a burst of captures with attachments while the server is down.

Run: python -m benchmarks.bench_attachments [--quick]

Each SDK runs in a fresh process pointed at a port where nothing listens (connections refused):
N captures (1,000; 200 with --quick), each with a 1 MiB attachment built just before it (fresh,
touched memory, released by the caller right after). Reported: RSS growth after the burst and
at its peak (VmHWM), against RSS before it, and what the SDK says it held or dropped. errlink
keeps at most `queue_max_attachment_bytes` of attachments queued (64 MiB by default) and drops
the rest, counted, while every event is still queued; sentry-sdk keeps whole envelopes in its
worker queue (100 by default) with their attachments.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests._support import free_port

ROOT = Path(__file__).resolve().parent.parent
MiB = 1024 * 1024


def _status(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _blob(n: int) -> bytes:
    # Touched pages (bytes(MiB) would be lazily zeroed and cost no RSS until read).
    return bytes([n % 251 + 1]) * MiB


def child(sdk: str, p: dict[str, Any]) -> dict[str, Any]:
    n, dsn = p["n"], p["dsn"]
    if sdk == "errlink":
        import errlink

        client = errlink.init(dsn, excepthook=False, **p.get("options", {}))

        def capture(i: int) -> None:
            errlink.capture_message(
                f"burst {i}", attachments=[errlink.Attachment(_blob(i), filename=f"{i}.bin")]
            )

    else:
        import sentry_sdk

        sentry_sdk.init(dsn=dsn, default_integrations=False)

        def capture(i: int) -> None:
            with sentry_sdk.new_scope() as scope:
                scope.add_attachment(bytes=_blob(i), filename=f"{i}.bin")
                sentry_sdk.capture_message(f"burst {i}")

    capture(-1)  # warm up: imports, the loop or worker thread, the first connection attempt
    time.sleep(0.5)
    before = _status("VmRSS")
    peak_before = _status("VmHWM")
    started = time.perf_counter()
    for i in range(n):
        capture(i)
    seconds = time.perf_counter() - started
    after = _status("VmRSS")
    result: dict[str, Any] = {
        "rss_growth_kib": after - before,
        "peak_growth_kib": max(_status("VmHWM"), peak_before) - before,
        "us_per_capture": seconds / n * 1e6,
    }
    if sdk == "errlink":
        stats = client.stats
        result["held_attachment_mib"] = client.core.pipeline._attachments.held_bytes / MiB  # type: ignore[union-attr]
        result["dropped_attachment_mib"] = {
            f"{reason}": quantity / MiB for (reason, _), quantity in stats.discarded.items()
        }
        result["events_queued"] = stats.queued
    return result


def run_child(sdk: str, params: dict[str, Any]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_attachments", "--child", sdk],
        input=json.dumps(params),
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return dict(json.loads(line[len("RESULT ") :]))
    return {"error": (proc.stderr.strip().splitlines() or ["no result"])[-1][:200]}


def _have_sentry() -> bool:
    try:
        import sentry_sdk  # noqa: F401
    except ImportError:
        return False
    return True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer captures (smoke test)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        result = child(args.child, json.loads(sys.stdin.read()))
        print("RESULT " + json.dumps(result), flush=True)
        os._exit(0)  # nobody waits for a server that is down

    n = 200 if args.quick else 1000
    dsn = f"http://pub@127.0.0.1:{free_port()}/1"
    variants: list[tuple[str, str, dict[str, Any]]] = [
        ("errlink", "errlink (defaults: 64 MiB bound)", {}),
        (
            "errlink",
            "errlink (queue_max_attachment_bytes=16 MiB)",
            {"queue_max_attachment_bytes": 16 * MiB},
        ),
    ]
    if _have_sentry():
        variants.append(("sentry-sdk", "sentry-sdk (defaults)", {}))
    print("| scenario | SDK | RSS growth | peak RSS growth | notes |")
    print("|---|---|---:|---:|---|")
    what = f"1 MiB attachments, server down, {n} captures"
    for sdk, label, options in variants:
        r = run_child(sdk, {"n": n, "dsn": dsn, "options": options})
        if "error" in r:
            print(f"| {what} | {label} | FAILED | | {r['error']} |")
            continue
        notes = [f"{r['us_per_capture']:.0f} µs/capture"]
        if "held_attachment_mib" in r:
            notes.append(f"attachments held {r['held_attachment_mib']:.0f} MiB")
            dropped = ", ".join(f"{k} {v:.0f} MiB" for k, v in r["dropped_attachment_mib"].items())
            notes.append(f"dropped {dropped or 'none'}; {r['events_queued']} events queued")
        print(
            f"| {what} | {label} | {r['rss_growth_kib'] / 1024:,.1f} MiB | "
            f"{r['peak_growth_kib'] / 1024:,.1f} MiB | {'; '.join(notes)} |"
        )


if __name__ == "__main__":
    main()
