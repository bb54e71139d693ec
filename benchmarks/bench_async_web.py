"""Per-request overhead of the Sanic, Tornado and aiohttp.web integrations, as a throughput ratio.

Run: python -m benchmarks.bench_async_web [--quick] [--frameworks sanic,tornado,aiohttp]

For each framework, two servers run side by side on 127.0.0.1, each a single worker in its own
process, serving the same hello-world route: one without errlink, one with the errlink
integration set up (enabled, pointed at a loopback collector in a third process; no error
happens, so nothing is sent: what is measured is the cost every request pays). One client
process drives them in turn with a bounded loop: `--connections` keep-alive connections send
`--requests` GETs per round in total, alternating off/on for `--rounds` rounds after a warm-up,
so drift on a shared machine hits both alike. Two measures per round:

- requests/s as the client sees them (wall clock: the most direct figure, and the noisiest when
  other processes compete for the CPUs);
- the server process's CPU time per request (Linux: /proc/<pid>/task/*/schedstat, all threads,
  nanoseconds): what the integration costs, unaffected by time spent waiting for a CPU (though
  not by caches and cores shared with other work).

Reported per framework: the best round of each variant by both measures (other processes only
ever add time, so the best round is the least disturbed one), the throughput ratio
(with/without) by each measure, and the CPU overhead in µs per request. `--calibrate` runs the
app without errlink against itself instead: the noise floor of the method on this machine. Each
framework runs on its default loop (Sanic: uvloop when installed; Tornado and aiohttp: asyncio).

Afterwards, one request to /boom on each errlink server must yield exactly one stored event:
proof that the integration measured was live.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import ExitStack
from typing import Any

from benchmarks._sink import CollectorProcess

FRAMEWORKS = ("sanic", "tornado", "aiohttp")
HELLO = b"Hello, world"
_READY = "READY "


# -- the servers (child processes) ------------------------------------------------------------


def _listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def _ready(sock: socket.socket) -> None:
    print(f"{_READY}{sock.getsockname()[1]}", flush=True)


def _serve_sanic(dsn: str | None) -> None:
    from sanic import Request, Sanic, response

    app: Sanic[Any, Any] = Sanic("bench_async_web", configure_logging=False)
    app.config.ACCESS_LOG = False

    @app.get("/hello")
    async def hello(request: Request) -> response.HTTPResponse:
        return response.raw(HELLO, content_type="text/plain")

    @app.get("/boom")
    async def boom(request: Request) -> response.HTTPResponse:
        raise RuntimeError("the benchmark's one error")

    if dsn:
        from errlink.integrations.sanic import Errlink

        Errlink(app, dsn=dsn)
    sock = _listening_socket()

    @app.after_server_start
    async def announce(app: Sanic[Any, Any]) -> None:
        _ready(sock)

    app.run(sock=sock, single_process=True, access_log=False, motd=False)


def _serve_tornado(dsn: str | None) -> None:
    import tornado.web
    from tornado.httpserver import HTTPServer

    class Hello(tornado.web.RequestHandler):
        def get(self) -> None:
            self.set_header("Content-Type", "text/plain")
            self.write(HELLO)

    class Boom(tornado.web.RequestHandler):
        def get(self) -> None:
            raise RuntimeError("the benchmark's one error")

    async def main() -> None:
        app = tornado.web.Application([(r"/hello", Hello), (r"/boom", Boom)])
        if dsn:
            from errlink.integrations.tornado import Errlink

            Errlink(app, dsn=dsn)
        sock = _listening_socket()
        HTTPServer(app).add_sockets([sock])
        _ready(sock)
        await asyncio.Event().wait()

    asyncio.run(main())


def _serve_aiohttp(dsn: str | None) -> None:
    from aiohttp import web

    async def hello(request: web.Request) -> web.Response:
        return web.Response(body=HELLO, content_type="text/plain")

    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("the benchmark's one error")

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/hello", hello)
        app.router.add_get("/boom", boom)
        if dsn:
            from errlink.integrations.aiohttp import Errlink

            Errlink(app, dsn=dsn)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        sock = _listening_socket()
        await web.SockSite(runner, sock).start()
        _ready(sock)
        await asyncio.Event().wait()

    asyncio.run(main())


_SERVERS = {"sanic": _serve_sanic, "tornado": _serve_tornado, "aiohttp": _serve_aiohttp}


class Server:
    """A framework's server in a child process; `port` once it is ready."""

    def cpu_seconds(self) -> float | None:
        """CPU time used so far by all the server's threads (None where Linux's files lack)."""
        total = 0
        try:
            for task in os.listdir(f"/proc/{self.proc.pid}/task"):
                with open(f"/proc/{self.proc.pid}/task/{task}/schedstat") as stat:
                    total += int(stat.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return total / 1e9

    def __init__(self, framework: str, dsn: str | None) -> None:
        command = [sys.executable, "-m", "benchmarks.bench_async_web", "--serve", framework]
        if dsn:
            command += ["--dsn", dsn]
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(_READY):
                self.port = int(line[len(_READY) :])
                return
        raise RuntimeError(f"the {framework} server did not start")

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# -- the client ---------------------------------------------------------------------------------


async def _connection(port: int, count: int) -> None:
    request = b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for _ in range(count):
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = _content_length(head)
            if await reader.readexactly(length) != HELLO or not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"unexpected response: {head!r}")
    finally:
        writer.close()


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    raise RuntimeError(f"no Content-Length in {head!r}")


async def _round(server: Server, requests: int, connections: int) -> tuple[float, float | None]:
    """Requests/s and server CPU µs/request for `requests` GETs over `connections` connections."""
    per_connection = requests // connections
    done = per_connection * connections
    cpu_before = server.cpu_seconds()
    start = time.perf_counter()
    await asyncio.gather(*(_connection(server.port, per_connection) for _ in range(connections)))
    elapsed = time.perf_counter() - start
    cpu_after = server.cpu_seconds()
    cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return done / elapsed, None if cpu is None else cpu / done * 1e6


async def _measure(
    servers: dict[str, Server], requests: int, connections: int, rounds: int
) -> dict[str, list[tuple[float, float | None]]]:
    for server in servers.values():  # warm-up: lazy imports, caches, connection set-up
        await _round(server, max(requests // 4, connections), connections)
    samples: dict[str, list[tuple[float, float | None]]] = {variant: [] for variant in servers}
    for index in range(rounds):
        order = list(servers) if index % 2 == 0 else list(reversed(servers))
        for variant in order:
            samples[variant].append(await _round(servers[variant], requests, connections))
    return samples


def _check_live(port: int, collector: CollectorProcess, before: int) -> int:
    """Make the errlink server report one error; return how many new events the collector has."""
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/boom", timeout=30)
    except urllib.error.HTTPError as error:
        if error.code != 500:
            raise
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        stored = int(collector.stats().get("events", 0)) - before
        if stored:
            return stored
        time.sleep(0.05)
    return 0


def bench(framework: str, collector: CollectorProcess, args: argparse.Namespace) -> dict[str, Any]:
    with ExitStack() as stack:
        dsn = None if args.calibrate else collector.dsn
        servers = {"off": Server(framework, None), "on": Server(framework, dsn)}
        for server in servers.values():
            stack.callback(server.close)
        samples = _run_client(_measure(servers, args.requests, args.connections, args.rounds))
        live_events = None
        if not args.calibrate:
            before = int(collector.stats().get("events", 0))
            live_events = _check_live(servers["on"].port, collector, before)
    rps = {variant: max(r for r, _ in rows) for variant, rows in samples.items()}
    cpu: dict[str, float | None] = {}
    for variant, rows in samples.items():
        values = [c for _, c in rows if c is not None]
        cpu[variant] = min(values) if values else None
    cpu_off, cpu_on = cpu["off"], cpu["on"]
    return {
        "framework": framework,
        "rps_off": rps["off"],
        "rps_on": rps["on"],
        "cpu_off": cpu_off,
        "cpu_on": cpu_on,
        "live_events": live_events,
    }


def _run_client(coroutine: Any) -> Any:
    try:
        import uvloop  # the faster the client, the more the servers are what is measured
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    parser.add_argument("--requests", type=int, default=None, help="GETs per round")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument(
        "--calibrate", action="store_true", help="measure the app without errlink against itself"
    )
    parser.add_argument("--serve", choices=FRAMEWORKS, help=argparse.SUPPRESS)
    parser.add_argument("--dsn", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        _SERVERS[args.serve](args.dsn)
        return
    args.requests = args.requests or (2_000 if args.quick else 20_000)
    args.rounds = args.rounds or (2 if args.quick else 9)
    frameworks = [name.strip() for name in args.frameworks.split(",") if name.strip()]
    unknown = set(frameworks) - set(FRAMEWORKS)
    if unknown:
        parser.error(f"unknown framework(s): {', '.join(sorted(unknown))}")

    results = []
    with CollectorProcess() as collector:
        for framework in frameworks:
            results.append(bench(framework, collector, args))
    print(
        f"\nHello-world GET, {args.connections} keep-alive connections, {args.requests} requests "
        f"per round, best of {args.rounds} rounds per variant (Python "
        f"{sys.version.split()[0]}, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f})"
    )
    if args.calibrate:
        print("CALIBRATION: 'with' is the same app without errlink (the method's noise floor)")
    print()
    print(
        "| framework | req/s without | req/s with | ratio (req/s) | server CPU/request without "
        "| with | ratio (req per CPU-s) | overhead/request | live check |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for row in results:
        events = row["live_events"]
        live = "-" if events is None else "1 event" if events == 1 else f"FAILED ({events} events)"
        cpu_off, cpu_on = row["cpu_off"], row["cpu_on"]
        if cpu_off is None or cpu_on is None:
            cpu_cells = "n/a | n/a | n/a | n/a"
        else:
            cpu_cells = (
                f"{cpu_off:.1f} µs | {cpu_on:.1f} µs | {cpu_off / cpu_on:.3f} "
                f"| {cpu_on - cpu_off:+.1f} µs"
            )
        print(
            f"| {row['framework']} | {row['rps_off']:,.0f} | {row['rps_on']:,.0f} "
            f"| {row['rps_on'] / row['rps_off']:.3f} | {cpu_cells} | {live} |"
        )


if __name__ == "__main__":
    main()
