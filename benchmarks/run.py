"""errlink against sentry-sdk and raven, side by side in one run.

    python -m benchmarks [--quick] [--only capture,throughput,...] [--output PATH]

Installs nothing: peers come from the `bench` extra (`pip install -e '.[bench]'`); a missing peer
is reported as such. Every measurement runs in a fresh process against the same loopback sink
(a separate process that answers 200 at once), and each figure is the median over several
processes. Ratios are errlink / peer, measured in this run on this machine: compare those, not
absolute figures from another day. The table goes to stdout and, for a full run, to
benchmarks/RESULTS.md, replacing the table there and keeping the notes that follow it; a run
with --only writes a file only when --output names one.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks._fastsink import Sink
from benchmarks._sdks import SDK_NAMES, version_of
from tests._support import free_port

ROOT = Path(__file__).resolve().parent.parent
PEERS = ("sentry-sdk", "raven")


class Settings:
    def __init__(self, quick: bool) -> None:
        self.quick = quick
        self.repeats = 1 if quick else 5
        self.capture_n = 100 if quick else 1000
        self.burst_n = 500 if quick else 20_000
        self.nodrop_n = 300 if quick else 5000
        self.lag_burst = 100 if quick else 1000
        self.lag_paced = 100 if quick else 1000
        self.down_n = 300 if quick else 5000
        self.floor_n = 50 if quick else 2000
        self.floor_posts = 200 if quick else 5000
        # per_request: the frameworks (aiohttp.web: run bench_async_web alone).
        self.async_web_args = ["--frameworks", "sanic,tornado,fastapi"] + (
            ["--quick", "--requests", "1000"] if quick else ["--requests", "6000", "--rounds", "5"]
        )
        self.sync_web_args = (
            ["--quick"]
            if quick
            else ["--rounds", "7", "--requests", "1200", "--direct-rounds", "20"]
        )


def run_child(scenario: str, params: dict[str, Any], timeout: float = 600) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks._child", scenario, json.dumps(params)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=env,
    )
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line[len("RESULT ") :])
            result["stderr_lines"] = len(proc.stderr.splitlines())
            return result
    raise RuntimeError(f"{scenario} {params.get('sdk')} failed:\n{proc.stderr[-2000:]}")


def median_of(results: list[dict[str, Any]], key: str) -> float:
    return statistics.median(float(r[key]) for r in results)


def available(sdks: Sequence[str]) -> list[str]:
    return [sdk for sdk in sdks if version_of(sdk) != "not installed"]


# -- scenarios ----------------------------------------------------------------------------------


def bench_capture(sink: Sink, s: Settings) -> list[list[str]]:
    rows = []
    for locals_on in (True, False):
        figures: dict[str, float] = {}
        for sdk in available(SDK_NAMES):
            runs = [
                run_child(
                    "capture",
                    {"sdk": sdk, "dsn": sink.dsn(), "locals": locals_on, "n": s.capture_n},
                )
                for _ in range(s.repeats)
            ]
            figures[sdk] = median_of(runs, "us")
        label = "locals on" if locals_on else "locals off"
        for sdk, value in figures.items():
            rows.append(
                [f"capture_exception ({label})", sdk, f"{value:.0f} µs", *_ratios(figures, sdk)]
            )
    return rows


def bench_throughput(sink: Sink, s: Settings) -> list[list[str]]:
    rows = []
    configs: list[tuple[str, dict[str, Any]]] = [(sdk, {}) for sdk in available(SDK_NAMES)]
    # Room for the whole burst, in count and in bytes: nothing is dropped.
    configs.append(("errlink", {"queue_size": s.burst_n, "queue_max_bytes": 1 << 40}))
    for sdk, extra in configs:
        runs = []
        # Peers deliver a 20,000 burst slowly (raven ~300 events/s): one run each keeps the suite
        # under 10 minutes; errlink's configurations get two.
        for _ in range(1 if s.quick or not sdk.startswith("errlink") else 2):
            sink.reset()
            result = run_child(
                "throughput",
                {"sdk": sdk, "dsn": sink.dsn(), "n": s.burst_n, "timeout": 300, **extra},
            )
            counts = sink.counts()
            result["delivered"] = counts.get("events", 0)
            result["rate"] = result["delivered"] / result["seconds"]
            result["reported"] = {k[8:]: v for k, v in counts.items() if k.startswith("dropped:")}
            runs.append(result)
        last = runs[-1]
        dropped = last["dropped"] or last["reported"]
        dropped_text = ", ".join(f"{k} {v}" for k, v in sorted(dropped.items())) or "none reported"
        name = sdk + (
            f" (queue_size={extra['queue_size']}, no byte bound)" if extra else " (defaults)"
        )
        rows.append(
            [
                f"burst of {s.burst_n}, then flush",
                name,
                f"{median_of(runs, 'rate'):.0f} events/s",
                f"delivered {int(median_of(runs, 'delivered'))}",
                f"dropped: {dropped_text}",
            ]
        )
    return rows


LAG_LABELS = {
    "none": "no SDK",
    "raw-post": "no SDK, one raw aiohttp POST per capture",
}


def bench_loop_lag(sink: Sink, s: Settings) -> list[list[str]]:
    rows = []
    configs = [
        (sdk, "epoll")
        for sdk in [
            "none",
            "raw-post",
            *available(("errlink-async", "errlink", "sentry-sdk", "raven")),
        ]
    ]
    # The same loop with select(): what the lag is without epoll's millisecond rounding.
    configs += [("none", "select"), ("raw-post", "select"), ("errlink-async", "select")]
    for sdk, selector in configs:
        params = {
            "sdk": sdk,
            "dsn": sink.dsn(),
            "burst": s.lag_burst,
            "paced": s.lag_paced,
            "selector": selector,
        }
        runs = [run_child("loop_lag", params) for _ in range(1 if s.quick else 2)]
        label = LAG_LABELS.get(sdk, sdk)
        rows.append(
            [
                "event-loop lag" + (" (select() loop)" if selector == "select" else ""),
                label,
                f"burst of {s.lag_burst}: max {median_of(runs, 'burst_max_ms'):.1f} ms",
                f"paced: p50 {median_of(runs, 'paced_p50_ms'):.2f} ms, "
                f"p99 {median_of(runs, 'paced_p99_ms'):.2f} ms, "
                f"max {median_of(runs, 'paced_max_ms'):.1f} ms",
            ]
        )
    return rows


def bench_server_down(sink: Sink, s: Settings) -> list[list[str]]:
    rows = []
    dead = f"http://pub:sec@127.0.0.1:{free_port()}/1"
    for sdk in available(("errlink", "errlink-async", "sentry-sdk", "raven")):
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        params = json.dumps({"sdk": sdk, "dsn": dead, "n": s.down_n})
        # stderr goes to a file: a peer that prints per event would otherwise fill the pipe.
        with tempfile.TemporaryFile("w+") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "benchmarks._child", "server_down", params],
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                cwd=ROOT,
                env=env,
            )
            assert proc.stdout is not None
            line = proc.stdout.readline()
            measured_at = time.monotonic()
            proc.wait(600)
            exit_seconds = time.monotonic() - measured_at
            err.seek(0)
            stderr = err.read()
        if not line.startswith("RESULT "):
            raise RuntimeError(f"server_down {sdk} failed:\n{stderr[-2000:]}")
        result = json.loads(line[len("RESULT ") :])
        rows.append(
            [
                f"server down, {s.down_n} captures",
                sdk,
                f"{result['us']:.0f} µs/capture",
                f"RSS +{result['rss_growth_kib'] / 1024:.1f} MiB",
                f"exit {exit_seconds:.1f} s, {len(stderr.splitlines())} stderr lines",
            ]
        )
    return rows


def bench_startup(sink: Sink, s: Settings) -> list[list[str]]:
    # As after `pip install`, which compiles every module: with PYTHONDONTWRITEBYTECODE set
    # (or a read-only checkout), an editable errlink would otherwise be compiled from source in
    # every process while its peers load bytecode, which more than doubled its figure here.
    import compileall

    import errlink

    compileall.compile_dir(str(Path(errlink.__file__).parent), quiet=1)
    rows = []
    for sdk in ["none", *available(("errlink", "sentry-sdk", "raven"))]:
        runs = [run_child("startup", {"sdk": sdk, "dsn": sink.dsn()}) for _ in range(s.repeats)]
        rows.append(
            [
                "import + init, idle",
                "bare python" if sdk == "none" else sdk,
                f"{median_of(runs, 'ms'):.0f} ms",
                f"RSS {median_of(runs, 'rss_kib') / 1024:.1f} MiB "
                f"(+{median_of(runs, 'rss_growth_kib') / 1024:.1f})",
                f"send path imported in the background by {median_of(runs, 'ready_ms'):.0f} ms"
                if sdk.startswith("errlink")
                else "",
            ]
        )
    return rows


def bench_floor(sink: Sink, s: Settings) -> list[list[str]]:
    r = run_child("floor", {"dsn": sink.dsn(), "n": s.floor_n, "posts": s.floor_posts})
    return [
        [
            "the floor",
            f"encode the {r['event_bytes']} B event",
            f"json {r['json_us']:.0f} µs",
            f"orjson {r['orjson_us']:.1f} µs",
        ],
        [
            "the floor",
            "gzip it",
            f"level 1 {r['gzip1_us']:.0f} µs",
            f"level 9 {r['gzip9_us']:.0f} µs",
        ],
        [
            "the floor",
            "raw aiohttp POST loop (its envelope, gzipped)",
            f"1 in flight {r['post_rps_1']:.0f} req/s",
            f"4 in flight {r['post_rps_4']:.0f} req/s, 8 in flight {r['post_rps_8']:.0f} req/s",
        ],
    ]


def bench_delivery(sink: Sink, s: Settings) -> list[list[str]]:
    """A burst that no SDK drops (every queue holds it all): events delivered per second from the
    first capture to the end of flush, and the process's CPU per event (capture and sending)."""
    rows = []
    rates: dict[str, float] = {}
    sdks = [sdk for sdk in available(SDK_NAMES) if sdk != "raven"]  # raven has no queue bound
    for sdk in sdks:
        extra: dict[str, Any] = {"queue_size": s.nodrop_n}
        if sdk.startswith("errlink"):
            extra["queue_max_bytes"] = 1 << 40
        runs = []
        for _ in range(1 if s.quick else 3):
            sink.reset()
            result = run_child(
                "throughput",
                {"sdk": sdk, "dsn": sink.dsn(), "n": s.nodrop_n, "timeout": 300, **extra},
            )
            result["delivered"] = sink.counts().get("events", 0)
            result["rate"] = result["delivered"] / result["seconds"]
            runs.append(result)
        rates[sdk] = median_of(runs, "rate")
        rows.append(
            [
                f"burst of {s.nodrop_n}, nothing dropped",
                sdk,
                f"{rates[sdk]:.0f} events/s",
                f"delivered {int(median_of(runs, 'delivered'))}, "
                f"CPU {median_of(runs, 'cpu_us_per_event'):.0f} µs/event",
            ]
        )
    alone = []
    for _ in range(1 if s.quick else 3):
        sink.reset()
        result = run_child("delivery_alone", {"dsn": sink.dsn(), "n": s.nodrop_n, "timeout": 300})
        result["delivered"] = sink.counts().get("events", 0)
        result["rate"] = result["delivered"] / result["seconds"]
        alone.append(result)
    floor = run_child("floor", {"dsn": sink.dsn(), "n": 10, "posts": s.floor_posts})
    for row in rows:
        sdk = row[1]
        ratios = [f"{rates[sdk] / rates[peer]:.2f}x {peer}" for peer in rates if peer != sdk]
        if sdk.startswith("errlink"):
            ratios.append(f"{rates[sdk] / floor['post_rps_4']:.2f}x raw POST floor (4 in flight)")
        row.append(", ".join(ratios))
    rate_alone = median_of(alone, "rate")
    rows.append(
        [
            f"burst of {s.nodrop_n}, nothing dropped",
            "errlink's pipeline alone (events built beforehand)",
            f"{rate_alone:.0f} events/s",
            f"delivered {int(median_of(alone, 'delivered'))}, "
            f"CPU {median_of(alone, 'cpu_us_per_event'):.0f} µs/event",
            f"{rate_alone / floor['post_rps_4']:.2f}x raw POST floor (4 in flight, "
            f"{floor['post_rps_4']:.0f} req/s in this run)",
        ]
    )
    return rows


def bench_per_request(sink: Sink, s: Settings) -> list[list[str]]:
    """Hello-world route, no error: bare app vs errlink vs sentry-sdk per framework, each variant
    a real server in its own process (bench_async_web and bench_sync_web, which bring their own
    collector: their live check counts what it stored)."""
    rows = []
    for module, args in (
        ("benchmarks.bench_async_web", s.async_web_args),
        ("benchmarks.bench_sync_web", s.sync_web_args),
    ):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "rows.json"
            proc = subprocess.run(
                [sys.executable, "-m", module, *args, "--json", str(out)],
                capture_output=True,
                text=True,
                timeout=900,
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
            if proc.returncode != 0 or not out.exists():
                raise RuntimeError(f"{module} failed:\n{proc.stderr[-2000:]}")
            measured: list[dict[str, Any]] = json.loads(out.read_text())
        rows += [_per_request_row(row) for row in measured]
    return rows


def _per_request_row(row: dict[str, Any]) -> list[str]:
    scenario = f"per-request overhead, {row['framework']} hello-world"
    variant = row["variant"]
    info = row.get("sdk_info")
    if info:
        tracing = "tracing ON" if info.get("tracing") else "tracing off"
        sessions = "sessions on" if info.get("sessions") else "sessions off"
        variant += f" ({row['framework']} integration + defaults, {tracing}, {sessions})"
    if "error" in row:
        return [scenario, variant, "FAILED", str(row["error"]).replace("|", "/")[:200]]
    processes = row.get("processes", 1)
    rate = f"{row['rps_best']:,.0f} req/s (best round" + (
        f", median of {processes} processes)" if processes > 1 else ")"
    )
    if row["variant"] == "bare":
        cpu = row.get("cpu_best")
        return [
            scenario,
            variant,
            rate,
            "baseline",
            "" if cpu is None else f"server CPU {cpu:.1f} µs/req",
        ]
    if "ratio_best" in row:
        ratio = f"{row['ratio_best']:.3f}x bare (medians {row['ratio_median']:.3f}x)"
    else:
        ratio = "n/a (the bare app failed)"
    added = []
    if "cpu_added" in row:
        added.append(f"{row['cpu_added']:+.1f} µs/req server CPU")
    direct = row.get("direct")
    if direct and "error" not in direct:
        hello = direct["/hello"]
        added.append(f"{hello[row['variant']] - hello['bare']:+.1f} µs/req direct WSGI")
    events = row.get("live_events")
    added.append("live check " + ("ok" if events == 1 else f"FAILED ({events} events)"))
    return [scenario, variant, rate, ratio, "; ".join(added)]


def bench_hostile(sink: Sink, s: Settings) -> list[list[str]]:
    """Memory with a hostile server (huge and endless answers, a server that never answers)."""
    rows = []
    for server, sdk, peak, growth, held, notes in _table_rows("benchmarks.bench_hostile", s):
        figure = f"peak RSS +{peak}" if not growth else f"RSS +{growth}"
        rows.append([f"hostile server ({server})", sdk, figure, held, notes])
    return rows


def bench_scan(sink: Sink, s: Settings) -> list[list[str]]:
    """Capture cost with 100 KB of digit-heavy text in locals, against the same with letters."""
    return [
        [f"100 KB of text in locals ({text})", sdk, f"{us} µs/capture", f"{ratio} vs letters", ""]
        for text, sdk, us, ratio in _table_rows("benchmarks.bench_scan", s)
    ]


def bench_attachments(sink: Sink, s: Settings) -> list[list[str]]:
    """RSS with the server down and a burst of captures, each with a 1 MiB attachment."""
    return [
        [scenario, sdk, f"RSS +{growth}", f"peak +{peak}", notes]
        for scenario, sdk, growth, peak, notes in _table_rows("benchmarks.bench_attachments", s)
    ]


def bench_logs(sink: Sink, s: Settings) -> list[list[str]]:
    """Caller-side µs of one structured log line, against the stdlib logging call."""
    return [
        [f"log line, {line}", sdk, us, f"{ratio} stdlib QueueHandler", notes]
        for line, sdk, us, ratio, notes in _table_rows("benchmarks.bench_logs", s)
    ]


def _table_rows(module: str, s: Settings) -> list[list[str]]:
    """The rows of the Markdown table a benchmark module prints (header and rule left out)."""
    proc = subprocess.run(
        [sys.executable, "-m", module, *(["--quick"] if s.quick else [])],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{module} failed:\n{proc.stderr[-2000:]}")
    table = [line for line in proc.stdout.splitlines() if line.startswith("| ")][1:]  # no header
    return [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in table]


def _ratios(figures: dict[str, float], sdk: str) -> list[str]:
    if not sdk.startswith("errlink"):
        return [""]
    parts = [f"{figures[sdk] / figures[peer]:.3f}x {peer}" for peer in PEERS if figures.get(peer)]
    return [", ".join(parts)]


SCENARIOS: dict[str, Callable[[Sink, Settings], list[list[str]]]] = {
    "capture": bench_capture,
    "throughput": bench_throughput,
    "loop_lag": bench_loop_lag,
    "server_down": bench_server_down,
    "startup": bench_startup,
    "floor": bench_floor,
    "delivery": bench_delivery,
    "per_request": bench_per_request,
    "hostile": bench_hostile,
    "scan": bench_scan,
    "attachments": bench_attachments,
    "logs": bench_logs,
}


def machine() -> str:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(
                line.split(":", 1)[1].strip() for line in info if line.startswith("model name")
            )
    except (OSError, StopIteration):
        pass
    versions = ", ".join(f"{sdk} {version_of(sdk)}" for sdk in ("errlink", "sentry-sdk", "raven"))
    return (
        f"{platform.system()} {platform.release()}, {os.cpu_count()} cores ({cpu}), "
        f"Python {platform.python_version()}; {versions}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="errlink vs sentry-sdk vs raven")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one process each (smoke)")
    parser.add_argument(
        "--only", default="", help="comma-separated scenarios: " + ", ".join(SCENARIOS)
    )
    parser.add_argument(
        "--output",
        default=None,
        help="where the table goes (default: benchmarks/RESULTS.md for a full run; a run with "
        "--only writes nowhere unless given this)",
    )
    args = parser.parse_args(argv)
    output = args.output or (None if args.only else str(ROOT / "benchmarks" / "RESULTS.md"))
    settings = Settings(args.quick)
    chosen = [name for name in SCENARIOS if not args.only or name in args.only.split(",")]
    started = time.monotonic()
    lines = [
        "# errlink benchmark results",
        "",
        f"Machine: {machine()}.",
        f"Mode: {'quick (smoke sizes, not for comparison)' if args.quick else 'full'}; "
        "exception raised 10 frames deep with 5 locals per frame; medians over fresh processes.",
        "",
        "| scenario | SDK | figure | | |",
        "|---|---|---|---|---|",
    ]
    with Sink() as sink:
        for name in chosen:
            for row in SCENARIOS[name](sink, settings):
                cells = [*row, "", "", ""][:5]
                lines.append("| " + " | ".join(cells) + " |")
                print(lines[-1], flush=True)
    lines += ["", f"Run took {time.monotonic() - started:.0f} s."]
    print("\n".join(lines[:6]))
    if output is None:
        print("a run with --only: nothing written (pass --output to keep the table)")
        return 0
    previous = Path(output).read_text() if Path(output).exists() else ""
    Path(output).write_text("\n".join(lines) + "\n" + _notes_after_table(previous))
    print(f"written to {output}")
    return 0


def _notes_after_table(previous: str) -> str:
    """What follows the table in an earlier results file (the notes on each run), kept."""
    marker = previous.find("\nRun took ")
    if marker < 0:
        return ""
    end = previous.find("\n", marker + 1)
    return "" if end < 0 else previous[end + 1 :]


if __name__ == "__main__":
    sys.exit(main())
