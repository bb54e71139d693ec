"""Per-request overhead on Sanic, Tornado, aiohttp.web and FastAPI: bare app vs errlink vs
sentry-sdk.

Run: python -m benchmarks.bench_async_web [--quick] [--frameworks sanic,tornado,aiohttp,fastapi]
     [--variants bare,errlink,errlink-sessions,sentry-sdk] [--processes N] [--json PATH]

For each framework, `--processes` servers per variant (3 by default) run on 127.0.0.1, each a
single worker in its own fresh process (so sentry-sdk's class-level patching never reaches another
variant), serving the same hello-world route:

- bare: the app alone;
- errlink: the errlink integration set up with its defaults (no release: no sessions, the same
  request path as ``auto_session_tracking=False``);
- errlink-sessions (only when asked for in `--variants`): the same with a release set, so every
  request is counted as a release-health session (request mode);
- sentry-sdk: `sentry_sdk.init` with the framework's integration (Sanic, Tornado, AioHttp;
  Starlette and FastApi for FastAPI) on top of its default integrations,
  `traces_sample_rate=None` (tracing off, so what is compared is error reporting only); the
  integrations it enabled are printed under the table.

Both SDKs send to one loopback collector in a process of its own; no error happens on the
measured route, so nothing is sent: what is measured is the cost every request pays. One client
process drives the servers in turn with a bounded loop: `--connections` keep-alive connections
send `--requests` GETs per round in total, the variants taking turns (in rotating order) for
`--rounds` rounds after a warm-up, so drift on a shared machine hits all alike. Two measures per
round:

- requests/s as the client sees them (wall clock: the most direct figure, and the noisiest when
  other processes compete for the CPUs);
- the server process's CPU time per request (Linux: /proc/<pid>/task/*/schedstat, all threads,
  nanoseconds): what the integration costs, unaffected by time spent waiting for a CPU (though
  not by caches and cores shared with other work).

Reported per framework and variant: for each of its server processes the best round by both
measures (other processes only ever add time, so the best round is the least disturbed one), and
the median of those over its processes; the throughput ratio against the bare app (of those
figures, and of medians of all rounds), and the CPU added per request. Several processes per
variant, because one process is not the code's speed alone: the hash seed and the addresses a
process is given change its speed by a few percent, which is more than the differences measured
here (one bare process against another: up to 4% apart on the benchmark's machine).
`--calibrate` runs the bare app against itself instead: the noise floor of the method on this
machine. Each framework runs
on its default loop (Sanic, and FastAPI under uvicorn: uvloop when installed; Tornado and
aiohttp: asyncio). FastAPI is served by uvicorn with its defaults (httptools when installed),
lifespan on, access log off.

Afterwards, one request to /boom on each SDK's server must yield exactly one stored event:
proof that the integration measured was live. A variant whose server fails to start or to answer
is reported as failed, with the server's last words, instead of stopping the run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import ExitStack
from typing import Any

from tests._support.collector import CollectorProcess

FRAMEWORKS = ("sanic", "tornado", "aiohttp", "fastapi")
VARIANTS = ("bare", "errlink", "errlink-sessions", "sentry-sdk")
DEFAULT_VARIANTS = ("bare", "errlink", "sentry-sdk")
BENCH_RELEASE = "bench@1.0.0"
HELLO = b"Hello, world"
READY = "READY "
_INFO = "INFO "


# -- shared with bench_sync_web -----------------------------------------------------------------


def init_sentry_sdk(integration: Any | list[Any], dsn: str, **options: Any) -> None:
    """sentry-sdk set up for error reporting only: its framework integration (or list of them)
    on top of its defaults, tracing off, and release-health sessions off (they are on by default
    wherever sentry-sdk finds a release, a git checkout for one: a cost that would depend on where
    the benchmark runs, and that errlink has no counterpart for).

    Prints what it enabled on an INFO line for the parent process to show."""
    import sentry_sdk
    from sentry_sdk.tracing_utils import has_tracing_enabled

    sentry_sdk.init(
        dsn=dsn,
        integrations=integration if isinstance(integration, list) else [integration],
        traces_sample_rate=None,
        profiles_sample_rate=None,
        auto_session_tracking=False,
        **options,
    )
    client = sentry_sdk.get_client()
    info = {
        "version": sentry_sdk.VERSION,
        "integrations": sorted(client.integrations),
        "tracing": has_tracing_enabled(client.options),
        "sessions": bool(client.options.get("auto_session_tracking")),
    }
    print(_INFO + json.dumps(info), flush=True)


def errlink_options(setup: str) -> dict[str, Any]:
    """The client options of an errlink variant: a release turns request-mode sessions on."""
    return {"release": BENCH_RELEASE} if setup == "errlink-sessions" else {}


def sentry_note(info: dict[str, Any]) -> str:
    """One line saying what a sentry-sdk server had enabled."""
    tracing = "ON (not what was meant)" if info.get("tracing") else "off"
    sessions = "on" if info.get("sessions") else "off"
    names = ", ".join(info.get("integrations", [])) or "none"
    return (
        f"sentry-sdk {info.get('version', '?')}: tracing {tracing}, release-health sessions "
        f"{sessions}, integrations enabled: {names}"
    )


def process_cpu_seconds(pid: int) -> float | None:
    """CPU time used so far by all a process's threads (None where Linux's files lack)."""
    total = 0
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/schedstat") as stat:
                total += int(stat.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return total / 1e9


# -- the servers (child processes) ------------------------------------------------------------


def _listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def announce_ready(port: int) -> None:
    print(f"{READY}{port}", flush=True)


def _ready(sock: socket.socket) -> None:
    announce_ready(sock.getsockname()[1])


def _serve_sanic(setup: str, dsn: str) -> None:
    if setup == "sentry-sdk":  # before the app exists, as sentry-sdk's docs show
        from sentry_sdk.integrations.sanic import SanicIntegration

        init_sentry_sdk(SanicIntegration(), dsn)
    from sanic import Request, Sanic, response

    app: Sanic[Any, Any] = Sanic("bench_async_web", configure_logging=False)
    app.config.ACCESS_LOG = False

    @app.get("/hello")
    async def hello(request: Request) -> response.HTTPResponse:
        return response.raw(HELLO, content_type="text/plain")

    @app.get("/boom")
    async def boom(request: Request) -> response.HTTPResponse:
        raise RuntimeError("the benchmark's one error")

    if setup.startswith("errlink"):
        from errlink.integrations.sanic import Errlink

        Errlink(app, dsn=dsn, **errlink_options(setup))
    sock = _listening_socket()

    @app.after_server_start
    async def announce(app: Sanic[Any, Any]) -> None:
        _ready(sock)

    app.run(sock=sock, single_process=True, access_log=False, motd=False)


def _serve_tornado(setup: str, dsn: str) -> None:
    if setup == "sentry-sdk":
        from sentry_sdk.integrations.tornado import TornadoIntegration

        init_sentry_sdk(TornadoIntegration(), dsn)
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
        if setup.startswith("errlink"):
            from errlink.integrations.tornado import Errlink

            Errlink(app, dsn=dsn, **errlink_options(setup))
        sock = _listening_socket()
        HTTPServer(app).add_sockets([sock])
        _ready(sock)
        await asyncio.Event().wait()

    asyncio.run(main())


def _serve_aiohttp(setup: str, dsn: str) -> None:
    if setup == "sentry-sdk":
        from sentry_sdk.integrations.aiohttp import AioHttpIntegration

        init_sentry_sdk(AioHttpIntegration(), dsn)
    from aiohttp import web

    async def hello(request: web.Request) -> web.Response:
        return web.Response(body=HELLO, content_type="text/plain")

    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("the benchmark's one error")

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/hello", hello)
        app.router.add_get("/boom", boom)
        if setup.startswith("errlink"):
            from errlink.integrations.aiohttp import Errlink

            Errlink(app, dsn=dsn, **errlink_options(setup))
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        sock = _listening_socket()
        await web.SockSite(runner, sock).start()
        _ready(sock)
        await asyncio.Event().wait()

    asyncio.run(main())


def _serve_fastapi(setup: str, dsn: str) -> None:
    if setup == "sentry-sdk":
        from sentry_sdk.integrations.fastapi import FastApiIntegration
        from sentry_sdk.integrations.starlette import StarletteIntegration

        init_sentry_sdk([StarletteIntegration(), FastApiIntegration()], dsn)
    import uvicorn
    from fastapi import FastAPI, Response

    app = FastAPI()

    @app.get("/hello")
    async def hello() -> Response:
        return Response(HELLO, media_type="text/plain")

    @app.get("/boom")
    async def boom() -> Response:
        raise RuntimeError("the benchmark's one error")

    if setup.startswith("errlink"):
        from errlink.integrations.fastapi import Errlink

        Errlink(app, dsn=dsn, **errlink_options(setup))
    sock = _listening_socket()

    class AnnouncingServer(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:  # lifespan startup done, and uvicorn accepts on the socket
                _ready(sock)

    config = uvicorn.Config(app, lifespan="on", log_level="warning", access_log=False)
    AnnouncingServer(config).run(sockets=[sock])  # uvicorn's default loop


_SERVERS = {
    "sanic": _serve_sanic,
    "tornado": _serve_tornado,
    "aiohttp": _serve_aiohttp,
    "fastapi": _serve_fastapi,
}


class ServerFailed(RuntimeError):
    pass


class Server:
    """A framework's server with one variant's set-up, in a fresh child process: `module` run
    with `--serve FRAMEWORK --setup VARIANT --dsn DSN` prints its port on a READY line.

    Started at creation, usable after `wait_ready`, so several servers can start at once."""

    def __init__(
        self, framework: str, setup: str, dsn: str, module: str = "benchmarks.bench_async_web"
    ) -> None:
        self.setup = setup
        self.info: dict[str, Any] = {}
        command = [sys.executable, "-m", module, "--serve", framework]
        command += ["--setup", setup, "--dsn", dsn]
        # stderr to a file: the live check's tracebacks stay out of the way, and are there to
        # quote when a server dies.
        self._stderr = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed by close())
        self.proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=self._stderr, text=True
        )
        self.port = 0

    def wait_ready(self) -> None:
        """Returns once the server listens; closes it and raises ServerFailed if it never does."""
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(_INFO):
                self.info = json.loads(line[len(_INFO) :])
            elif line.startswith(READY):
                self.port = int(line[len(READY) :])
                return
        words = self.last_words()
        self.close()
        raise ServerFailed(f"the server did not start: {words}")

    def cpu_seconds(self) -> float | None:
        return process_cpu_seconds(self.proc.pid)

    def last_words(self) -> str:
        self._stderr.seek(0)
        lines = [line.strip() for line in self._stderr.read().splitlines() if line.strip()]
        return lines[-1] if lines else f"exit status {self.proc.poll()}"

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._stderr.close()


def start_servers(
    setups: dict[str, str],
    framework: str,
    dsn: str,
    stack: ExitStack,
    failures: dict[str, str],
    module: str = "benchmarks.bench_async_web",
) -> dict[str, Server]:
    """Servers for {label: setup}, started together, closed with `stack`; the ones that did not
    start are left out, their reason in `failures`."""
    started = {}
    for label, setup in setups.items():
        started[label] = Server(framework, setup, dsn, module)
        stack.callback(started[label].close)
    servers = {}
    for label, server in started.items():
        try:
            server.wait_ready()
        except ServerFailed as error:
            failures[label] = str(error)
            continue
        servers[label] = server
    return servers


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
                raise ServerFailed(f"unexpected response: {head!r}")
    finally:
        writer.close()


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    raise ServerFailed(f"no Content-Length in {head!r}")


Sample = tuple[float, float | None]  # requests/s, server CPU µs per request


async def _round(server: Server, requests: int, connections: int) -> Sample:
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
    servers: dict[str, Server],
    requests: int,
    connections: int,
    rounds: int,
    failures: dict[str, str],
) -> dict[str, list[Sample]]:
    """Rounds taken in turn by every server; a server that stops answering is dropped from the
    rest of the run with its failure recorded in `failures`."""

    async def attempt(label: str, count: int) -> Sample | None:
        try:
            return await _round(servers[label], count, connections)
        except (OSError, asyncio.IncompleteReadError, ServerFailed) as error:
            failures[label] = f"{error!r}; server: {servers[label].last_words()}"
            return None

    for label in servers:  # warm-up: lazy imports, caches, connection set-up
        await attempt(label, max(requests // 4, connections))
    samples: dict[str, list[Sample]] = {label: [] for label in servers}
    labels = list(servers)
    for index in range(rounds):
        shift = index % len(labels)
        for label in labels[shift:] + labels[:shift]:
            if label not in failures:
                sample = await attempt(label, requests)
                if sample is not None:
                    samples[label].append(sample)
    return samples


def check_live(port: int, collector: CollectorProcess) -> int:
    """Make a server report one error; return how many new events the collector stored."""
    before = int(collector.stats().get("events", 0))
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/boom", timeout=30)
    except urllib.error.HTTPError as error:
        if error.code != 500:
            raise
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if int(collector.stats().get("events", 0)) > before:
            time.sleep(0.3)  # a duplicate would follow closely: let it land in this count
            break
        time.sleep(0.05)
    return int(collector.stats().get("events", 0)) - before


def bench(
    framework: str, collector: CollectorProcess, args: argparse.Namespace
) -> list[dict[str, Any]]:
    """One row per variant (bare first); a failed variant has `error` set and no figures."""
    setups = (
        [("bare", "bare"), ("bare #2", "bare")]
        if args.calibrate
        else [(variant, variant) for variant in args.variants]
    )
    failures: dict[str, str] = {}
    live: dict[str, int] = {}
    processes = {
        process_key(label, index): setup
        for label, setup in setups
        for index in range(1, args.processes + 1)
    }
    with ExitStack() as stack:
        servers = start_servers(processes, framework, collector.dsn, stack, failures)
        samples = _run_client(
            _measure(servers, args.requests, args.connections, args.rounds, failures)
        )
        for key, server in servers.items():
            label = variant_of(key)
            if server.setup != "bare" and key not in failures and label not in live:
                live[label] = check_live(server.port, collector)
    return variant_rows(framework, [label for label, _ in setups], servers, samples, failures, live)


def process_key(label: str, index: int) -> str:
    """The name of a variant's `index`-th server process."""
    return f"{label}@{index}"


def variant_of(key: str) -> str:
    """The variant a server process (`process_key`) or a lone server (its label) serves."""
    return key.rpartition("@")[0] or key


def variant_rows(
    framework: str,
    labels: list[str],
    servers: dict[str, Server],
    samples: dict[str, list[Sample]],
    failures: dict[str, str],
    live: dict[str, int],
) -> list[dict[str, Any]]:
    """One row per variant: the median over its server processes of each one's best round (and
    the median of all its rounds), or the `error` that stopped one of them. `servers`, `samples`
    and `failures` are keyed by process (`process_key`) or, one server a variant, by label."""
    rows = []
    for label in labels:
        row: dict[str, Any] = {"framework": framework, "variant": label}
        keys = [key for key in servers if variant_of(key) == label] or [label]
        failed = [failures[key] for key in keys if key in failures]
        taken = [samples.get(key, []) for key in keys]
        if failed or not all(taken):
            row["error"] = failed[0] if failed else "no round completed"
        else:
            best_rates = [max(rate for rate, _ in each) for each in taken]
            best_cpus = [min(cpus) for cpus in _cpus(taken)]
            every = [sample for each in taken for sample in each]
            all_cpus = [cpu for _, cpu in every if cpu is not None]
            row.update(
                processes=len(keys),
                rps_best=statistics.median(best_rates),
                rps_best_each=best_rates,
                rps_median=statistics.median(rate for rate, _ in every),
                cpu_best=statistics.median(best_cpus) if best_cpus else None,
                cpu_best_each=best_cpus,
                cpu_median=statistics.median(all_cpus) if all_cpus else None,
                live_events=live.get(label),
            )
        infos = [servers[key].info for key in keys if key in servers and servers[key].info]
        if infos:
            row["sdk_info"] = infos[0]
        rows.append(row)
    return rows


def _cpus(taken: list[list[Sample]]) -> list[list[float]]:
    """Each process's CPU figures (none where the platform gives none)."""
    cpus = [[cpu for _, cpu in each if cpu is not None] for each in taken]
    return [each for each in cpus if each]


def _run_client(coroutine: Any) -> Any:
    try:
        import uvloop  # the faster the client, the more the servers are what is measured
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


# -- the report ---------------------------------------------------------------------------------


def with_ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Adds each variant's ratios and CPU added against its framework's bare row (shared with
    bench_sync_web and benchmarks.run)."""
    bare = {
        row["framework"]: row for row in rows if row["variant"] == "bare" and "error" not in row
    }
    for row in rows:
        base = bare.get(row["framework"])
        if base is None or "error" in row:
            continue
        row["ratio_best"] = row["rps_best"] / base["rps_best"]
        row["ratio_median"] = row["rps_median"] / base["rps_median"]
        if row.get("cpu_best") is not None and base.get("cpu_best") is not None:
            row["cpu_ratio"] = base["cpu_best"] / row["cpu_best"]
            row["cpu_added"] = row["cpu_best"] - base["cpu_best"]
    return rows


def _live_cell(events: int | None) -> str:
    if events is None:
        return "-"
    return "1 event" if events == 1 else f"FAILED ({events} events)"


def print_table(rows: list[dict[str, Any]]) -> None:
    print(
        "| framework | variant | req/s (best round) | vs bare | vs bare (medians) "
        "| server CPU/request (best) | vs bare (req per CPU-s) | CPU added/request | live check |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    for row in rows:
        if "error" in row:
            print(f"| {row['framework']} | {row['variant']} | FAILED: {row['error']} |||||||")
            continue
        cpu = row.get("cpu_best")
        cells = [
            row["framework"],
            row["variant"],
            f"{row['rps_best']:,.0f}",
            f"{row['ratio_best']:.3f}" if "ratio_best" in row else "n/a",
            f"{row['ratio_median']:.3f}" if "ratio_median" in row else "n/a",
            "n/a" if cpu is None else f"{cpu:.1f} µs",
            f"{row['cpu_ratio']:.3f}" if "cpu_ratio" in row else "n/a",
            f"{row['cpu_added']:+.1f} µs" if "cpu_added" in row else "n/a",
            _live_cell(row.get("live_events")),
        ]
        print("| " + " | ".join(cells) + " |")
    spreads = [row for row in rows if len(row.get("rps_best_each", ())) > 1]
    if spreads:
        print("\nEach server process's best round (req/s), of which the table gives the median:")
        for row in spreads:
            each = ", ".join(f"{rate:,.0f}" for rate in row["rps_best_each"])
            print(f"- {row['framework']} {row['variant']}: {each}")
    notes = {sentry_note(row["sdk_info"]) for row in rows if row.get("sdk_info")}
    for note in sorted(notes):
        print(f"\n{note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    parser.add_argument(
        "--variants", default=",".join(DEFAULT_VARIANTS), help="bare is always included"
    )
    parser.add_argument("--requests", type=int, default=None, help="GETs per round")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--processes", type=int, default=None, help="server processes per variant (default 3)"
    )
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument(
        "--calibrate", action="store_true", help="measure the bare app against itself"
    )
    parser.add_argument("--json", help="also write the rows to this file, as JSON")
    parser.add_argument("--serve", choices=FRAMEWORKS, help=argparse.SUPPRESS)
    parser.add_argument("--setup", choices=VARIANTS, default="bare", help=argparse.SUPPRESS)
    parser.add_argument("--dsn", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        _SERVERS[args.serve](args.setup, args.dsn)
        return
    args.requests = args.requests or (2_000 if args.quick else 20_000)
    args.rounds = args.rounds or (2 if args.quick else 5)
    args.processes = args.processes or (1 if args.quick else 3)
    if args.processes < 1:
        parser.error("--processes must be at least 1")
    frameworks = [name.strip() for name in args.frameworks.split(",") if name.strip()]
    unknown = set(frameworks) - set(FRAMEWORKS)
    if unknown:
        parser.error(f"unknown framework(s): {', '.join(sorted(unknown))}")
    chosen = {name.strip() for name in args.variants.split(",") if name.strip()}
    if chosen - set(VARIANTS):
        parser.error(f"unknown variant(s): {', '.join(sorted(chosen - set(VARIANTS)))}")
    args.variants = ["bare", *(v for v in VARIANTS if v in chosen and v != "bare")]

    rows: list[dict[str, Any]] = []
    with CollectorProcess() as collector:
        for framework in frameworks:
            rows += bench(framework, collector, args)
    with_ratios(rows)
    print(
        f"\nHello-world GET, {args.connections} keep-alive connections, {args.requests} requests "
        f"per round, best of {args.rounds} rounds for each of {args.processes} server processes "
        "per variant, median over the processes (Python "
        f"{sys.version.split()[0]}, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f})"
    )
    if args.calibrate:
        print("CALIBRATION: 'bare #2' is the same bare app (the method's noise floor)")
    print()
    print_table(rows)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(rows, out)


if __name__ == "__main__":
    main()
