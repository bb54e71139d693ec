"""The loopback sink every SDK sends to in the benchmarks: answers 200 at once and counts.

It accepts Sentry envelopes (`/api/<id>/envelope/`, gzip or plain) and raven's legacy store
payloads (`/api/<id>/store/`), counts events and client-reported drops, and serves the counts at
`GET /counts`. Its cost is tiny so the measured SDK, not the sink, is the limit. Run it as its own
process (`python -m benchmarks._fastsink PORT`) so it never shares the measured process's GIL.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from types import TracebackType

from aiohttp import web

from tests._support import free_port

COUNTS: Counter[str] = Counter()


async def envelope(request: web.Request) -> web.Response:
    data = await request.read()  # aiohttp has already undone Content-Encoding (gzip, deflate)
    lines = data.split(b"\n")
    # Header line, then (item header, payload) pairs; payloads here never contain newlines.
    for index in range(1, len(lines) - 1, 2):
        try:
            item = json.loads(lines[index])
        except ValueError:
            continue
        kind = item.get("type")
        if kind == "event":
            COUNTS["events"] += 1
        elif kind == "client_report":
            report = json.loads(lines[index + 1])
            for entry in report.get("discarded_events", []):
                COUNTS[f"dropped:{entry['reason']}"] += int(entry["quantity"])
    COUNTS["requests"] += 1
    return web.json_response({"id": "0" * 32})


async def store(request: web.Request) -> web.Response:
    await request.read()
    COUNTS["events"] += 1
    COUNTS["requests"] += 1
    return web.json_response({"id": "0" * 32})


async def counts(request: web.Request) -> web.Response:
    return web.json_response(dict(COUNTS))


async def reset(request: web.Request) -> web.Response:
    COUNTS.clear()
    return web.json_response({})


def serve(port: int) -> None:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/api/{project}/envelope/", envelope)
    app.router.add_post("/api/{project}/store/", store)
    app.router.add_get("/counts", counts)
    app.router.add_post("/reset", reset)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


class Sink:
    """Runs the sink in a child process for the duration of a `with` block."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def dsn(self, with_secret: bool = False) -> str:
        key = "pub:sec" if with_secret else "pub"
        return f"http://{key}@127.0.0.1:{self.port}/1"

    def counts(self) -> dict[str, int]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/counts", timeout=30) as r:
            data: dict[str, int] = json.load(r)
            return data

    def reset(self) -> None:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/reset", method="POST")
        with urllib.request.urlopen(request, timeout=30):
            pass

    def __enter__(self) -> Sink:
        self.proc = subprocess.Popen([sys.executable, "-m", "benchmarks._fastsink", str(self.port)])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                self.counts()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the benchmark sink did not start")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)

    def wait_for(self, events: int, timeout: float) -> dict[str, int]:
        deadline = time.monotonic() + timeout
        counts = self.counts()
        while counts.get("events", 0) < events and time.monotonic() < deadline:
            time.sleep(0.05)
            counts = self.counts()
        return counts


def main() -> None:
    serve(int(sys.argv[1]))


if __name__ == "__main__":
    main()
