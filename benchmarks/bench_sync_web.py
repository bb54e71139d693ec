"""Per-request overhead on Flask and Django: the bare app vs errlink vs sentry-sdk.

Run: python -m benchmarks.bench_sync_web [--quick] [--frameworks flask,django]
     [--variants bare,errlink,errlink-sessions,sentry-sdk] [--json PATH]

For each framework, one server per variant runs the same hello-world app on a werkzeug server
on 127.0.0.1 (single-threaded, HTTP/1.1 keep-alive, request log off), each in its own fresh
process, so sentry-sdk's class-level patching never reaches another variant:

- bare: the app alone;
- errlink: errlink's integration (Flask extension; Django app and middleware) with its defaults
  (no release: no sessions, the same request path as ``auto_session_tracking=False``);
- errlink-sessions (only when asked for in `--variants`): the same with a release set, every
  request counted as a release-health session; in the direct calls it alternates with bare and
  errlink in their process (Flask; Django gets a process pair of its own, like sentry-sdk);
- sentry-sdk: `sentry_sdk.init` with FlaskIntegration / DjangoIntegration on top of its default
  integrations, `traces_sample_rate=None` (tracing off: error reporting only); what it enabled
  is printed under the table.

Both SDKs send to one loopback collector in a process of its own (queues sized so the error
route drops nothing); the hello route sends nothing. The client takes the variants in turn (in
rotating order), a bounded loop of requests over one connection each round, and reports each
variant's best round (the least disturbed by the rest of the machine) in requests/s and in the
server process's CPU time per request, with the ratio of medians beside the ratio of best
rounds. Afterwards one request to /boom on each SDK's server must store exactly one event.

Network and server noise hide a few µs, so the WSGI apps are also called directly, in-process,
for the hello route and for a route that raises (which builds and queues an event), and the
fastest round of each is reported. bare and errlink share one process, alternating rounds (for
Django, "bare" there is the same project without errlink's middleware and with no client).
sentry-sdk patches framework classes for the whole process, so it gets a process of its own
and the bare app another, the parent alternating rounds between the two.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from typing import Any

from benchmarks.bench_async_web import (
    DEFAULT_VARIANTS,
    READY,
    Sample,
    Server,
    ServerFailed,
    announce_ready,
    check_live,
    errlink_options,
    init_sentry_sdk,
    print_table,
    start_servers,
    variant_rows,
    with_ratios,
)
from tests._support.collector import CollectorProcess

FRAMEWORKS = ("flask", "django")
VARIANTS = ("bare", "errlink", "errlink-sessions", "sentry-sdk")
ROUTES = ("/hello", "/boom")
QUEUE_SIZE = 100_000  # both SDKs: the direct error route must not drop

WSGIApp = Callable[..., Iterable[bytes]]


# -- the apps (built in the server process) -------------------------------------------------


def _init_sentry(framework: str, dsn: str) -> None:
    if framework == "flask":
        from sentry_sdk.integrations.flask import FlaskIntegration

        init_sentry_sdk(FlaskIntegration(), dsn, transport_queue_size=QUEUE_SIZE)
    else:
        from sentry_sdk.integrations.django import DjangoIntegration

        init_sentry_sdk(DjangoIntegration(), dsn, transport_queue_size=QUEUE_SIZE)


def flask_app(setup: str, dsn: str) -> WSGIApp:
    from flask import Flask

    app = Flask("bench")

    @app.route("/hello")
    def hello() -> str:
        return "hello"

    @app.route("/boom")
    def boom() -> str:
        raise ValueError("boom")

    if setup.startswith("errlink"):
        from errlink.integrations.flask import Errlink

        Errlink(app, dsn=dsn, queue_size=QUEUE_SIZE, **errlink_options(setup))
    return app


def _django_hello(request: Any) -> Any:
    from django.http import HttpResponse

    return HttpResponse("hello")


def _django_boom(request: Any) -> Any:
    raise ValueError("boom")


def django_app(setup: str, dsn: str) -> WSGIApp:
    import django
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler

    errlink = setup.startswith("errlink")
    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench",
        ALLOWED_HOSTS=["127.0.0.1", "localhost"],
        INSTALLED_APPS=["errlink.integrations.django"] if errlink else [],
        MIDDLEWARE=[
            "django.middleware.security.SecurityMiddleware",
            "django.middleware.common.CommonMiddleware",
        ],
        ROOT_URLCONF=__name__,
        DATABASES={},
        ERRLINK={"dsn": dsn, "queue_size": QUEUE_SIZE, **errlink_options(setup)} if errlink else {},
        LOGGING_CONFIG=None,
    )
    django.setup()
    handler: WSGIApp = WSGIHandler()
    return handler


def _urlpatterns() -> list[Any]:
    from django.urls import path

    return [path("hello", _django_hello), path("boom", _django_boom)]


def __getattr__(name: str) -> Any:
    # Django's ROOT_URLCONF is this module; its urlpatterns exist only once Django is set up.
    if name == "urlpatterns":
        return _urlpatterns()
    raise AttributeError(name)


def build_app(framework: str, setup: str, dsn: str) -> WSGIApp:
    if setup == "sentry-sdk":  # before the app exists, as sentry-sdk's docs show
        _init_sentry(framework, dsn)
    return flask_app(setup, dsn) if framework == "flask" else django_app(setup, dsn)


# -- server process ---------------------------------------------------------------------------


def serve(framework: str, setup: str, dsn: str) -> None:
    from werkzeug.serving import WSGIRequestHandler, make_server

    app = build_app(framework, setup, dsn)

    class QuietHandler(WSGIRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_request(self, *args: Any, **kwargs: Any) -> None:
            pass

    server = make_server("127.0.0.1", 0, app, threaded=False, request_handler=QuietHandler)
    announce_ready(server.port)
    server.serve_forever()


# -- direct WSGI calls ------------------------------------------------------------------------


def _environ(path: str) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_USER_AGENT": "bench",
        "HTTP_ACCEPT": "*/*",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }


def _call_us(app: WSGIApp, path: str, n: int) -> float:
    """µs per request calling the WSGI app in-process, response consumed."""

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        return None

    base = _environ(path)
    start = time.perf_counter()
    for _ in range(n):
        environ = dict(base)
        environ["wsgi.input"] = io.BytesIO(b"")
        result = app(environ, start_response)
        for _chunk in result:
            pass
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return (time.perf_counter() - start) / n * 1e6


Caller = Callable[[str, int], float]  # (route, calls) -> µs per call


def _fastest(variants: dict[str, Caller], route: str, rounds: int, n: int) -> dict[str, float]:
    """Fastest round of each variant, the variants alternating round by round after a warm-up."""
    for call in variants.values():
        call(route, n)
    best = {name: float("inf") for name in variants}
    for _ in range(rounds):
        for name, call in variants.items():
            best[name] = min(best[name], call(route, n))
    return best


def _calls(route: str, n: int) -> int:
    return n if route == "/hello" else max(n // 10, 20)  # the error route is ~10x slower


def _nothing() -> None:
    pass


def _in_process(app: WSGIApp, switch: Callable[[], None] = _nothing) -> Caller:
    def call(route: str, n: int) -> float:
        switch()
        return _call_us(app, route, n)

    return call


def direct(framework: str, dsn: str, rounds: int, n: int, sessions: bool = False) -> None:
    """bare and errlink (and errlink-sessions, for Flask, with `sessions`) alternating in this
    process; prints {route: {variant: µs}}."""
    import logging

    import errlink

    logging.disable(logging.CRITICAL)  # both variants log the error route; keep that out
    variants = _errlink_and_bare(framework, dsn)
    if sessions and framework == "flask":
        variants["errlink-sessions"] = _in_process(flask_app("errlink-sessions", dsn))
    result = {route: _fastest(variants, route, rounds, _calls(route, n)) for route in ROUTES}
    print(json.dumps(result), flush=True)
    errlink.close(timeout=0)  # events of the error route: not worth waiting for


def _django_handler() -> WSGIApp:
    from django.core.handlers.wsgi import WSGIHandler

    handler: WSGIApp = WSGIHandler()
    return handler


def _errlink_and_bare(framework: str, dsn: str) -> dict[str, Caller]:
    if framework == "flask":
        return {
            "bare": _in_process(flask_app("bare", dsn)),
            "errlink": _in_process(flask_app("errlink", dsn)),
        }
    from django.conf import settings
    from django.test.utils import override_settings

    from errlink._capture.binding import current_client, set_default_client

    # One Django per process: "bare" is the same project without errlink's middleware and with
    # no client (so its signal receiver does nothing), switched per round.
    on = django_app("errlink", dsn)
    core = current_client()
    without = [m for m in settings.MIDDLEWARE if not m.startswith("errlink.")]
    with override_settings(MIDDLEWARE=without):
        off = _django_handler()
    return {
        "bare": _in_process(off, lambda: set_default_client(None)),
        "errlink": _in_process(on, lambda: set_default_client(core)),
    }


def _direct_errlink(
    framework: str, dsn: str, rounds: int, n: int, sessions: bool = False
) -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.bench_sync_web", "--direct", framework]
    command += ["--dsn", dsn, "--direct-rounds", str(rounds), "--n", str(n)]
    command += ["--direct-sessions"] if sessions else []
    try:
        output = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    except subprocess.TimeoutExpired:
        return {"error": "timed out"}
    lines = output.stdout.strip().splitlines()
    if output.returncode != 0 or not lines:
        tail = output.stderr.strip().splitlines()[-1:] or [f"exit status {output.returncode}"]
        return {"error": tail[0]}
    measured: dict[str, Any] = json.loads(lines[-1])
    return measured


def direct_worker(framework: str, setup: str, dsn: str) -> None:
    """One variant's app in this process, timed on demand: for each `ROUTE CALLS` line read
    from stdin, prints the µs per call of that many calls."""
    import logging

    logging.disable(logging.CRITICAL)
    app = build_app(framework, setup, dsn)
    announce_ready(0)
    for line in sys.stdin:
        route, calls = line.split()
        print(repr(_call_us(app, route, int(calls))), flush=True)
    if setup == "sentry-sdk":
        import sentry_sdk

        sentry_sdk.get_client().close(timeout=0)  # queued error-route events: not worth waiting


class _Worker:
    """A direct_worker process, called like an in-process Caller."""

    def __init__(self, framework: str, setup: str, dsn: str) -> None:
        command = [sys.executable, "-m", "benchmarks.bench_sync_web", "--direct-worker", framework]
        command += ["--setup", setup, "--dsn", dsn]
        self._stderr = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed by close())
        self.proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, text=True
        )

    def wait_ready(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(READY):
                return
        raise ServerFailed(f"the direct-call worker did not start: {self._last_words()}")

    def __call__(self, route: str, n: int) -> float:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(f"{route} {n}\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        if not answer:
            raise ServerFailed(f"the direct-call worker died: {self._last_words()}")
        return float(answer)

    def _last_words(self) -> str:
        self._stderr.seek(0)
        lines = [line.strip() for line in self._stderr.read().splitlines() if line.strip()]
        return lines[-1] if lines else f"exit status {self.proc.poll()}"

    def close(self) -> None:
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._stderr.close()


def _direct_in_workers(framework: str, setup: str, dsn: str, rounds: int, n: int) -> dict[str, Any]:
    """bare and `setup` each in a process of its own, their rounds alternating."""
    with ExitStack() as stack:
        workers = {}
        for variant in ("bare", setup):
            workers[variant] = _Worker(framework, variant, dsn)
            stack.callback(workers[variant].close)
        try:
            for worker in workers.values():
                worker.wait_ready()
            callers: dict[str, Caller] = dict(workers)
            return {route: _fastest(callers, route, rounds, _calls(route, n)) for route in ROUTES}
        except (OSError, ServerFailed) as error:
            return {"error": str(error)}


# -- the client -------------------------------------------------------------------------------


def _round(server: Server, n: int) -> Sample:
    """requests/s and server CPU µs/request, n sequential GET /hello on one connection."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        cpu_before = server.cpu_seconds()
        start = time.perf_counter()
        for _ in range(n):
            connection.request("GET", "/hello")
            response = connection.getresponse()
            if response.status != 200 or response.read() != b"hello":
                raise ServerFailed(f"unexpected response: {response.status}")
        elapsed = time.perf_counter() - start
        cpu_after = server.cpu_seconds()
    finally:
        connection.close()
    cpu = None if cpu_before is None or cpu_after is None else (cpu_after - cpu_before) / n * 1e6
    return n / elapsed, cpu


def _measure(
    servers: dict[str, Server], rounds: int, n: int, failures: dict[str, str]
) -> dict[str, list[Sample]]:
    def attempt(label: str, count: int) -> Sample | None:
        try:
            return _round(servers[label], count)
        except (OSError, http.client.HTTPException, ServerFailed) as error:
            failures[label] = f"{error!r}; server: {servers[label].last_words()}"
            return None

    for label in servers:
        attempt(label, max(n // 4, 1))  # warm up
    samples: dict[str, list[Sample]] = {label: [] for label in servers}
    labels = list(servers)
    for index in range(rounds):  # in turn, so drift on the machine hits every variant alike
        shift = index % len(labels)
        for label in labels[shift:] + labels[:shift]:
            if label not in failures:
                sample = attempt(label, n)
                if sample is not None:
                    samples[label].append(sample)
    return samples


def bench(framework: str, sink: CollectorProcess, args: argparse.Namespace) -> list[dict[str, Any]]:
    failures: dict[str, str] = {}
    live: dict[str, int] = {}
    with ExitStack() as stack:
        setups = {variant: variant for variant in args.variants}
        servers = start_servers(
            setups, framework, sink.dsn, stack, failures, "benchmarks.bench_sync_web"
        )
        samples = _measure(servers, args.rounds, args.requests, failures)
        for variant, server in servers.items():
            if variant != "bare" and variant not in failures:
                live[variant] = check_live(server.port, sink)
    direct_runs = {}
    sessions = "errlink-sessions" in args.variants
    if "errlink" in args.variants:
        direct_runs["errlink"] = _direct_errlink(
            framework, sink.dsn, args.direct_rounds, args.n, sessions=sessions
        )
        if sessions and framework == "flask":
            direct_runs["errlink-sessions"] = direct_runs["errlink"]
    if sessions and "errlink-sessions" not in direct_runs:
        direct_runs["errlink-sessions"] = _direct_in_workers(
            framework, "errlink-sessions", sink.dsn, args.direct_rounds, args.n
        )
    if "sentry-sdk" in args.variants:
        direct_runs["sentry-sdk"] = _direct_in_workers(
            framework, "sentry-sdk", sink.dsn, args.direct_rounds, args.n
        )
    rows = variant_rows(framework, args.variants, servers, samples, failures, live)
    for row in rows:
        if row["variant"] in direct_runs:
            row["direct"] = direct_runs[row["variant"]]
    return rows


def _print_direct(rows: list[dict[str, Any]]) -> None:
    print(
        "| framework | variant | hello µs/call bare | with | added "
        "| error route µs/call bare | with | added |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        measured = row.get("direct")
        if measured is None:
            continue
        if "error" in measured:
            print(f"| {row['framework']} | {row['variant']} | FAILED: {measured['error']} ||||||")
            continue
        cells = [row["framework"], row["variant"]]
        for route in ROUTES:
            bare, with_sdk = measured[route]["bare"], measured[route][row["variant"]]
            digits = 1 if route == "/hello" else 0
            cells += [
                f"{bare:.{digits}f}",
                f"{with_sdk:.{digits}f}",
                f"{with_sdk - bare:+.{digits}f}",
            ]
        print("| " + " | ".join(cells) + " |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few requests (smoke test)")
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    parser.add_argument(
        "--variants", default=",".join(DEFAULT_VARIANTS), help="bare is always included"
    )
    parser.add_argument("--rounds", type=int, default=None, help="server rounds per variant")
    parser.add_argument("--requests", type=int, default=None, help="GETs per server round")
    parser.add_argument("--direct-rounds", type=int, default=None, help="direct-call rounds")
    parser.add_argument("--n", type=int, default=None, help="direct calls per round")
    parser.add_argument("--json", help="also write the rows to this file, as JSON")
    parser.add_argument("--serve", choices=FRAMEWORKS, help=argparse.SUPPRESS)
    parser.add_argument("--direct", choices=FRAMEWORKS, help=argparse.SUPPRESS)
    parser.add_argument("--direct-worker", choices=FRAMEWORKS, help=argparse.SUPPRESS)
    parser.add_argument("--direct-sessions", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--setup", choices=VARIANTS, default="bare", help=argparse.SUPPRESS)
    parser.add_argument("--dsn", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.direct_rounds = args.direct_rounds or (5 if args.quick else 60)
    args.n = args.n or (100 if args.quick else 500)
    if args.serve:
        serve(args.serve, args.setup, args.dsn)
        return
    if args.direct:
        direct(args.direct, args.dsn, args.direct_rounds, args.n, args.direct_sessions)
        return
    if args.direct_worker:
        direct_worker(args.direct_worker, args.setup, args.dsn)
        return
    args.rounds = args.rounds or (3 if args.quick else 15)
    args.requests = args.requests or (200 if args.quick else 2000)
    frameworks = [name.strip() for name in args.frameworks.split(",") if name.strip()]
    if set(frameworks) - set(FRAMEWORKS):
        parser.error(
            f"unknown framework(s): {', '.join(sorted(set(frameworks) - set(FRAMEWORKS)))}"
        )
    chosen = {name.strip() for name in args.variants.split(",") if name.strip()}
    if chosen - set(VARIANTS):
        parser.error(f"unknown variant(s): {', '.join(sorted(chosen - set(VARIANTS)))}")
    args.variants = ["bare", *(v for v in VARIANTS if v in chosen and v != "bare")]

    rows: list[dict[str, Any]] = []
    with CollectorProcess() as sink:
        for framework in frameworks:
            rows += bench(framework, sink, args)
    with_ratios(rows)
    print(
        f"\nPython {sys.version.split()[0]}; werkzeug server on 127.0.0.1, 1 keep-alive client; "
        f"{args.rounds} rounds x {args.requests} requests per variant, taken in turn (best "
        "round; ratio also from medians)\n"
    )
    print_table(rows)
    print(
        f"\nDirect WSGI calls, fastest of {args.direct_rounds} rounds x {args.n} (error route: "
        f"x {_calls('/boom', args.n)}); errlink alternates with bare in one process, sentry-sdk "
        "with bare in another process\n"
    )
    _print_direct(rows)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(rows, out)


if __name__ == "__main__":
    main()
