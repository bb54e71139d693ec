"""Per-request overhead of the Flask and Django integrations: the same app with and without errlink.

Run: python -m benchmarks.bench_sync_web [--quick]

For each framework, two server processes run the same hello-world app (one with errlink, one
without) on a werkzeug server on 127.0.0.1 (single-threaded, HTTP/1.1 keep-alive, request log
off). The client alternates rounds between the two servers, a bounded loop of requests over one
connection each round, and reports the requests/s of each one's best round (the least
disturbed by the rest of the machine) and the on/off ratio, with the ratio of medians beside it.

Network and server noise hide a few µs, so a second process calls both variants' WSGI apps
directly, alternating rounds, and reports the fastest round of each: errlink's own cost per
request, for the hello route and for a route that raises (which builds and queues an event).
For Django, "without" there is the same project with errlink's middleware left out. errlink
sends to a collector in its own process; the hello route sends nothing.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

from benchmarks._sink import CollectorProcess

FRAMEWORKS = ("flask", "django")
MODES = ("off", "on")


# -- the apps (built in the server process) -------------------------------------------------


def flask_app(dsn: str | None) -> Callable[..., Iterable[bytes]]:
    from flask import Flask

    app = Flask("bench")

    @app.route("/hello")
    def hello() -> str:
        return "hello"

    @app.route("/boom")
    def boom() -> str:
        raise ValueError("boom")

    if dsn is not None:
        from errlink.integrations.flask import Errlink

        Errlink(app, dsn=dsn, queue_size=100_000)
    return app


def _django_hello(request: Any) -> Any:
    from django.http import HttpResponse

    return HttpResponse("hello")


def _django_boom(request: Any) -> Any:
    raise ValueError("boom")


def django_app(dsn: str | None) -> Callable[..., Iterable[bytes]]:
    import django
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler

    apps = ["errlink.integrations.django"] if dsn is not None else []
    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench",
        ALLOWED_HOSTS=["127.0.0.1", "localhost"],
        INSTALLED_APPS=apps,
        MIDDLEWARE=[
            "django.middleware.security.SecurityMiddleware",
            "django.middleware.common.CommonMiddleware",
        ],
        ROOT_URLCONF=__name__,
        DATABASES={},
        ERRLINK={"dsn": dsn, "queue_size": 100_000},
        LOGGING_CONFIG=None,
    )
    django.setup()
    return WSGIHandler()


def _urlpatterns() -> list[Any]:
    from django.urls import path

    return [path("hello", _django_hello), path("boom", _django_boom)]


def __getattr__(name: str) -> Any:
    # Django's ROOT_URLCONF is this module; its urlpatterns exist only once Django is set up.
    if name == "urlpatterns":
        return _urlpatterns()
    raise AttributeError(name)


# -- server process ---------------------------------------------------------------------------


def serve(framework: str, dsn: str | None) -> None:
    from werkzeug.serving import WSGIRequestHandler, make_server

    app = flask_app(dsn) if framework == "flask" else django_app(dsn)

    class QuietHandler(WSGIRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_request(self, *args: Any, **kwargs: Any) -> None:
            pass

    server = make_server("127.0.0.1", 0, app, threaded=False, request_handler=QuietHandler)
    print(server.port, flush=True)
    server.serve_forever()


# -- direct WSGI calls (one process, both variants interleaved) -------------------------------


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


def _call_us(app: Callable[..., Iterable[bytes]], path: str, n: int) -> float:
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


def direct(framework: str, dsn: str, rounds: int, n: int) -> None:
    """Prints {route: {mode: µs}}: the fastest of `rounds` alternating rounds of n calls each."""
    import logging

    logging.disable(logging.CRITICAL)  # both variants log the error route; keep that out
    switch: dict[str, Callable[[], None]] = {mode: lambda: None for mode in MODES}
    if framework == "flask":
        variants = {"off": flask_app(None), "on": flask_app(dsn)}
    else:
        from django.conf import settings
        from django.core.handlers.wsgi import WSGIHandler
        from django.test.utils import override_settings

        from errlink._scope import current_client, set_default_client

        # One Django per process: "off" is the same project without errlink's middleware and
        # with no client (so its signal receiver does nothing), switched per round.
        on = django_app(dsn)
        core = current_client()
        without = [m for m in settings.MIDDLEWARE if not m.startswith("errlink.")]
        with override_settings(MIDDLEWARE=without):
            off = WSGIHandler()
        variants = {"off": off, "on": on}
        switch = {"off": lambda: set_default_client(None), "on": lambda: set_default_client(core)}
    result: dict[str, dict[str, float]] = {}
    for route, calls in (("/hello", n), ("/boom", max(n // 10, 20))):
        best = {mode: float("inf") for mode in MODES}
        for mode in MODES:
            switch[mode]()
            _call_us(variants[mode], route, calls)  # warm up
        for _ in range(rounds):
            for mode in MODES:
                switch[mode]()
                best[mode] = min(best[mode], _call_us(variants[mode], route, calls))
        result[route] = best
    print(json.dumps(result), flush=True)
    if framework == "django":
        import errlink

        errlink.close(timeout=0)  # events of the error route: not worth waiting for


# -- client -----------------------------------------------------------------------------------


def _round(port: int, n: int) -> float:
    """requests/s over one keep-alive connection, n sequential GET /hello."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        start = time.perf_counter()
        for _ in range(n):
            connection.request("GET", "/hello")
            response = connection.getresponse()
            if response.read() != b"hello":
                raise RuntimeError("unexpected response")
        return n / (time.perf_counter() - start)
    finally:
        connection.close()


def _start_server(framework: str, dsn: str | None) -> tuple[subprocess.Popen[str], int]:
    command = [sys.executable, "-m", "benchmarks.bench_sync_web", "--serve", framework]
    if dsn is not None:
        command += ["--dsn", dsn]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.wait(10)
        raise RuntimeError(f"the {framework} server did not start")
    return process, int(line)


def _direct(framework: str, dsn: str, rounds: int, n: int) -> dict[str, dict[str, float]]:
    command = [sys.executable, "-m", "benchmarks.bench_sync_web", "--direct", framework]
    command += ["--dsn", dsn, "--rounds", str(rounds), "--n", str(n)]
    output = subprocess.run(command, capture_output=True, text=True, check=True, timeout=1800)
    measured: dict[str, dict[str, float]] = json.loads(output.stdout.strip().splitlines()[-1])
    return measured


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few requests (smoke test)")
    parser.add_argument("--serve", choices=FRAMEWORKS, help=argparse.SUPPRESS)
    parser.add_argument("--direct", choices=FRAMEWORKS, help=argparse.SUPPRESS)
    parser.add_argument("--dsn", help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=9, help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, default=2000, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.dsn)
        return
    if args.direct:
        direct(args.direct, args.dsn, args.rounds, args.n)
        return
    rounds, per_round = (3, 200) if args.quick else (15, 2000)
    direct_rounds, direct_n = (5, 100) if args.quick else (60, 500)
    rows = []
    with CollectorProcess() as sink:
        for framework in FRAMEWORKS:
            servers = {
                mode: _start_server(framework, sink.dsn if mode == "on" else None) for mode in MODES
            }
            try:
                rates: dict[str, list[float]] = {mode: [] for mode in MODES}
                for mode in MODES:
                    _round(servers[mode][1], per_round // 4)  # warm up
                for _ in range(rounds):  # alternate, so drift on the machine hits both alike
                    for mode in MODES:
                        rates[mode].append(_round(servers[mode][1], per_round))
            finally:
                for process, _ in servers.values():
                    process.terminate()
                    process.wait(10)
            direct_us = _direct(framework, sink.dsn, direct_rounds, direct_n)
            rows.append((framework, rates, direct_us))

    print(f"Python {sys.version.split()[0]}; werkzeug server on 127.0.0.1, 1 keep-alive client")
    print(
        f"server: {rounds} alternating rounds x {per_round} requests (req/s of the best round, "
        f"ratio also from medians); direct WSGI calls: fastest of {direct_rounds} alternating "
        f"rounds x {direct_n}\n"
    )
    print(
        "| framework | req/s without | req/s with errlink | ratio | ratio of medians "
        "| µs/req without | µs/req with | errlink µs/req "
        "| error route µs without | error route µs with |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for framework, rates, d in rows:
        # The best round is the one least disturbed by the rest of the machine.
        best_off, best_on = (max(rates[mode]) for mode in MODES)
        median_off, median_on = (statistics.median(rates[mode]) for mode in MODES)
        hello, boom = d["/hello"], d["/boom"]
        print(
            f"| {framework} | {best_off:.0f} | {best_on:.0f} | {best_on / best_off:.3f} "
            f"| {median_on / median_off:.3f} "
            f"| {hello['off']:.1f} | {hello['on']:.1f} | {hello['on'] - hello['off']:.1f} "
            f"| {boom['off']:.0f} | {boom['on']:.0f} |"
        )


if __name__ == "__main__":
    main()
