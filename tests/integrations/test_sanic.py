"""The Sanic integration, through Sanic's real server on 127.0.0.1 and errlink's collector.

Most tests run the server on the test's own loop (`app.create_server`, the low-level API Sanic
documents for that), so the `collector` fixture shares the loop. Others run the app through
sanic-testing's clients (`app.test_client`: `app.run` on its own loop, against
`collector_thread`; `app.asgi_client`: Sanic as an ASGI app), and one runs it as a real
two-worker server in a separate process.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from _async_web_helpers import (
    CONCURRENT_REQUESTS,
    EVENT_TIMEOUT,
    SENSITIVE_HEADERS,
    assert_boom_request,
    assert_headers_scrubbed,
    assert_no_leakage,
    assert_personal_data_sent,
    fetch,
    fetch_concurrently,
    free_socket,
    header,
    in_app_functions,
    mechanism,
    meet,
    newest_exception,
)
from sanic import Blueprint, Request, Sanic, Websocket, response
from sanic.exceptions import BadRequest, SanicException

import errlink
from errlink.collector import Collector, CollectorThread
from errlink.integrations.logging import EventHandler
from errlink.integrations.sanic import Errlink

# sanic-testing (which Sanic imports when it is installed) uses websockets' legacy client.
pytestmark = pytest.mark.filterwarnings("ignore:websockets.legacy is deprecated:DeprecationWarning")


def new_app(*, own_loop: bool = False) -> Sanic[Any, Any]:
    # Sanic registers apps by name, process-wide: every test gets its own.
    app: Sanic[Any, Any] = Sanic(f"t{uuid.uuid4().hex[:12]}", configure_logging=False)
    app.config.ACCESS_LOG = False
    # Sanic installs its own filter for its deprecation warnings ("once"): make them fail the
    # test like every other warning, except the one sanic-testing's own client triggers (it
    # registers a listener in the (app, loop) form). pytest restores the filters after the test.
    app.config.DEPRECATION_FILTER = "error"
    warnings.filterwarnings(
        "ignore",
        message=r"\[DEPRECATION v26.6\] Passing the loop argument to listeners",
        category=DeprecationWarning,
    )
    if own_loop:
        # `app.run` (sanic-testing's client) would otherwise install uvloop's event loop policy
        # for the whole test process.
        app.config.USE_UVLOOP = False
    return app


def add_routes(app: Sanic[Any, Any]) -> None:
    """The same routes for the app with errlink and its twin without."""

    @app.get("/ok")
    async def ok(request: Request) -> response.HTTPResponse:
        return response.text("fine")

    @app.route("/boom", methods=["GET", "POST"])
    async def boom(request: Request) -> response.HTTPResponse:
        errlink.set_tag("handler", "boom")
        fail_in_app(request.args.get("why", "no reason"))
        return response.text("unreachable")

    @app.get("/bad-request")
    async def bad_request(request: Request) -> response.HTTPResponse:
        raise BadRequest("nope")

    @app.get("/unavailable")
    async def unavailable(request: Request) -> response.HTTPResponse:
        raise SanicException("try later", status_code=503)

    @app.get("/handled")
    async def handled(request: Request) -> response.HTTPResponse:
        errlink.set_tag("handler", "handled")
        try:
            fail_in_app("caught")
        except ValueError:
            event_id = errlink.capture_exception()
        return response.json({"event_id": event_id})


def fail_in_app(why: str) -> None:
    raise ValueError(f"boom: {why}")


@asynccontextmanager
async def serving(app: Sanic[Any, Any]) -> AsyncIterator[str]:
    """Sanic's real HTTP server on 127.0.0.1, run through its listeners like a worker does."""
    sock = free_socket()
    port = sock.getsockname()[1]
    server = await app.create_server(sock=sock, return_asyncio_server=True)
    assert server is not None
    await server.startup()
    await server.before_start()
    await server.after_start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await server.before_stop()
        closing = server.close()
        if closing is not None:
            await closing
        await server.after_stop()


async def test_unhandled_error_is_reported_with_request_route_and_tags(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    app = new_app()
    add_routes(app)
    ext = Errlink(app, dsn=collector.dsn, environment="test")

    async with serving(app) as base:
        status, _ = await fetch(
            session, "GET", f"{base}/boom?why=disk+full&page=2", headers=SENSITIVE_HEADERS
        )
        assert status == 500
        [event] = await collector.wait_for_events(1, EVENT_TIMEOUT)

    exception = newest_exception(event)
    assert exception["type"] == "ValueError"
    assert exception["value"] == "boom: disk full"
    assert mechanism(event) == ("sanic", False)
    assert in_app_functions(event)[-2:] == ["add_routes.<locals>.boom", "fail_in_app"]
    sanic_frames = [f for f in exception["stacktrace"]["frames"] if f["module"].startswith("sanic")]
    assert sanic_frames
    assert not any(frame["in_app"] for frame in sanic_frames)
    assert_boom_request(event, base)
    assert event["transaction"] == f"{app.name}.boom"
    assert event["tags"] == {"handler": "boom"}
    assert event["environment"] == "test"
    assert "sanic" in event["sdk"]["integrations"]
    assert ext.client is not None
    assert not ext.client.enabled


async def test_handled_capture_inside_a_handler_reaches_the_request_scope(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    app = new_app()
    add_routes(app)
    Errlink(app, dsn=collector.dsn)

    async with serving(app) as base:
        status, body = await fetch(session, "GET", f"{base}/handled?x=1")
        assert status == 200
        [event] = await collector.wait_for_events(1, EVENT_TIMEOUT)

    assert body.decode() == f'{{"event_id":"{event["event_id"]}"}}'
    assert mechanism(event) == ("generic", True)
    assert event["request"]["url"] == f"{base}/handled"
    assert event["transaction"] == f"{app.name}.handled"
    assert event["tags"] == {"handler": "handled"}


async def test_responses_are_identical_with_errlink_on_and_off(collector: Collector) -> None:
    plain, instrumented = new_app(), new_app()
    add_routes(plain)
    add_routes(instrumented)
    Errlink(instrumented, dsn=collector.dsn)
    paths = ["/ok", "/boom", "/bad-request", "/unavailable", "/missing", "/handled"]

    async def responses(app: Sanic[Any, Any]) -> list[tuple[int, bytes, str | None]]:
        out = []
        async with serving(app) as base, aiohttp.ClientSession() as client:
            for path in paths:
                async with client.get(base + path) as reply:
                    body = await reply.read()
                    if path == "/handled":
                        body = body[:12]  # the event id differs (and is null without errlink)
                    out.append((reply.status, body, reply.headers.get("Content-Type")))
        return out

    assert await responses(instrumented) == await responses(plain)
    await collector.wait_for_events(3, EVENT_TIMEOUT)  # boom, unavailable, handled


async def test_expected_4xx_are_not_reported_unless_configured(collector: Collector) -> None:
    quiet, loud = new_app(), new_app()
    add_routes(quiet)
    add_routes(loud)
    Errlink(quiet, dsn=collector.dsn)
    Errlink(loud, dsn=collector.dsn, capture_status_codes={400, 404})

    for app in (quiet, loud):
        async with serving(app) as base, aiohttp.ClientSession() as client:
            for path in ("/missing", "/bad-request", "/unavailable"):
                async with client.get(base + path) as reply:
                    await reply.read()

    events = await collector.wait_for_events(3, EVENT_TIMEOUT)
    await asyncio.sleep(0.2)  # nothing else may trickle in
    reported = sorted(
        (event.get("transaction", "-"), newest_exception(event)["type"])
        for event in collector.events()
    )
    assert reported == sorted(
        [
            (f"{quiet.name}.unavailable", "SanicException"),  # 503: reported by default
            (f"{loud.name}.bad_request", "BadRequest"),
            ("-", "NotFound"),  # routing failed: no route to name the transaction after
        ]
    )
    not_found = next(e for e in events if newest_exception(e)["type"] == "NotFound")
    assert not_found["request"]["url"].endswith("/missing")


async def test_request_middleware_blueprint_and_body(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    app = new_app()
    shop = Blueprint("shop", url_prefix="/shop")

    @shop.on_request
    async def check_cart(request: Request) -> None:
        if request.headers.get("x-broken-cart"):
            raise KeyError("cart")

    @shop.get("/cart")
    async def cart(request: Request) -> response.HTTPResponse:
        return response.text("cart")

    @shop.post("/orders")
    async def create_order(request: Request) -> response.HTTPResponse:
        raise RuntimeError(f"cannot order {request.json['item']}")

    app.blueprint(shop)
    Errlink(app, dsn=collector.dsn, max_request_body_size="small")

    async with serving(app) as base:
        assert (await fetch(session, "POST", f"{base}/shop/orders", json={"item": "tea"}))[0] == 500
        assert (
            await fetch(session, "POST", f"{base}/shop/orders", json={"item": "x" * 2000, "n": 1})
        )[0] == 500
        assert (await fetch(session, "GET", f"{base}/shop/cart", headers={"x-broken-cart": "1"}))[
            0
        ] == 500
        small, large, middleware = await collector.wait_for_events(3, EVENT_TIMEOUT)

    assert small["transaction"] == f"{app.name}.shop.create_order"
    assert small["request"]["data"] == {"item": "tea"}
    assert header(small, "Content-Type") == "application/json"
    assert large["request"]["data"].startswith("[request body of ")
    assert newest_exception(middleware)["type"] == "KeyError"
    assert middleware["transaction"] == f"{app.name}.shop.cart"
    assert (
        in_app_functions(middleware)[-1]
        == "test_request_middleware_blueprint_and_body.<locals>.check_cart"
    )


async def test_personal_data_only_with_send_default_pii(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    app = new_app()
    add_routes(app)
    Errlink(app, dsn=collector.dsn, send_default_pii=True)

    async with serving(app) as base:
        await fetch(session, "GET", f"{base}/boom", headers=SENSITIVE_HEADERS)
        [event] = await collector.wait_for_events(1, EVENT_TIMEOUT)

    assert_personal_data_sent(event)


async def test_websocket_handler_error_is_reported(collector: Collector) -> None:
    app = new_app()

    @app.websocket("/feed")
    async def feed(request: Request, ws: Websocket) -> None:
        message = await ws.recv()
        raise LookupError(f"no feed named {message}")

    Errlink(app, dsn=collector.dsn)
    async with serving(app) as base, aiohttp.ClientSession() as client:
        async with client.ws_connect(f"{base}/feed?v=1") as ws:
            await ws.send_str("prices")
            closing = await ws.receive(timeout=EVENT_TIMEOUT)
            assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        [event] = await collector.wait_for_events(1, EVENT_TIMEOUT)

    assert newest_exception(event)["value"] == "no feed named prices"
    assert mechanism(event) == ("sanic", False)
    assert event["transaction"] == f"{app.name}.feed"
    assert event["request"]["url"].endswith("/feed")
    assert event["request"]["query_string"] == "v=1"


def test_background_task_errors_are_reported(collector_thread: CollectorThread) -> None:
    # `app.add_task` at run time needs `app.run` (sanic-testing's client), not create_server.
    app = new_app(own_loop=True)

    async def warm_cache() -> None:
        raise ConnectionError("cache unreachable")

    async def send_receipt(order: str) -> None:
        await asyncio.sleep(0)
        raise TimeoutError(f"mail server slow for {order}")

    @app.get("/orders/<order>")
    async def order(request: Request, order: str) -> response.HTTPResponse:
        errlink.set_tag("order", order)
        task = request.app.add_task(send_receipt(order))
        assert task is not None
        await asyncio.wait([task])
        return response.text("accepted")

    app.add_task(warm_cache())  # before the server runs: Sanic starts it once it does
    Errlink(app, dsn=collector_thread.dsn)

    _, reply = app.test_client.get("/orders/A7")
    assert (reply.status, reply.body) == (200, b"accepted")

    events = collector_thread.wait_for_events(2, EVENT_TIMEOUT)
    by_type = {newest_exception(event)["type"]: event for event in events}
    startup, receipt = by_type["ConnectionError"], by_type["TimeoutError"]
    assert mechanism(startup) == ("sanic", False)
    assert mechanism(receipt) == ("sanic", False)
    assert "request" not in startup
    assert in_app_functions(startup)[-1].endswith("warm_cache")
    # A task started by a request carries that request's scope (context variables are copied).
    assert receipt["tags"] == {"order": "A7"}
    assert receipt["request"]["url"].endswith("/orders/A7")
    assert receipt["transaction"] == f"{app.name}.order"


async def test_concurrent_requests_never_share_scope_data(collector: Collector) -> None:
    app = new_app()
    barrier = asyncio.Barrier(CONCURRENT_REQUESTS)

    @app.get("/work")
    async def work(request: Request) -> response.HTTPResponse:
        n = int(request.args["n"][0])
        errlink.set_tag("n", n)
        errlink.set_extra("n", n)
        await meet(barrier)  # all requests are in flight, each with its own tags set
        raise RuntimeError(f"request {n} failed")

    Errlink(app, dsn=collector.dsn)
    async with serving(app) as base:
        results = await fetch_concurrently(base, "/work", CONCURRENT_REQUESTS)
        assert {status for status, _ in results} == {500}
        events = await collector.wait_for_events(CONCURRENT_REQUESTS, EVENT_TIMEOUT)

    assert_no_leakage(events, CONCURRENT_REQUESTS)


async def test_keep_alive_requests_on_one_connection_start_clean(collector: Collector) -> None:
    # Sanic serves a connection's requests one after another in one task: each must start clean.
    app = new_app()
    connections = []

    @app.get("/tag")
    async def tag(request: Request) -> response.HTTPResponse:
        connections.append(request.conn_info)
        errlink.set_tag("leftover", "yes")
        errlink.set_user({"id": "1"})
        return response.text("tagged")

    @app.get("/report")
    async def report(request: Request) -> response.HTTPResponse:
        connections.append(request.conn_info)
        errlink.capture_message("second request")
        errlink.set_tag("leftover", "again")
        return response.text("reported")

    Errlink(app, dsn=collector.dsn, capture_status_codes={404})
    async with serving(app) as base:
        connector = aiohttp.TCPConnector(limit=1)
        async with aiohttp.ClientSession(connector=connector) as client:
            assert (await fetch(client, "GET", f"{base}/tag"))[0] == 200
            assert (await fetch(client, "GET", f"{base}/report"))[0] == 200
            # Fails in routing, before errlink's middleware gives it a scope of its own.
            assert (await fetch(client, "GET", f"{base}/missing"))[0] == 404
        message, not_found = await collector.wait_for_events(2, EVENT_TIMEOUT)

    assert connections[0] is connections[1]  # really one keep-alive connection
    assert "tags" not in message
    assert "user" not in message
    assert message["transaction"] == f"{app.name}.report"
    assert message["request"]["url"].endswith("/report")
    assert newest_exception(not_found)["type"] == "NotFound"
    assert "tags" not in not_found
    assert "transaction" not in not_found
    assert not_found["request"]["url"].endswith("/missing")


async def test_other_middleware_sees_the_request_scope(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    app = new_app()
    add_routes(app)

    @app.on_request(priority=100)
    async def tenant(request: Request) -> None:
        errlink.set_tag("tenant", "acme")

    Errlink(app, dsn=collector.dsn)  # registered last, its middleware still runs first
    async with serving(app) as base:
        assert (await fetch(session, "GET", f"{base}/boom"))[0] == 500
        [event] = await collector.wait_for_events(1, EVENT_TIMEOUT)
    assert event["tags"] == {"tenant": "acme", "handler": "boom"}


async def test_response_middleware_errors_reach_errlink_through_sanic_error_log(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    # Sanic only logs these (on "sanic.error") and sends the response anyway; the docs' recipe.
    app = new_app()
    add_routes(app)

    @app.on_response
    async def stamp(request: Request, reply: response.HTTPResponse) -> None:
        if request.path == "/ok":
            raise AttributeError("no stamp")

    Errlink(app, dsn=collector.dsn)
    handler = EventHandler()
    sanic_error = logging.getLogger("sanic.error")
    sanic_error.addHandler(handler)
    try:
        async with serving(app) as base:
            assert await fetch(session, "GET", f"{base}/ok") == (200, b"fine")
            # Logged by Sanic too, but already reported by the extension: sent once.
            assert (await fetch(session, "GET", f"{base}/boom"))[0] == 500
            logged, reported = await collector.wait_for_events(2, EVENT_TIMEOUT)
            await asyncio.sleep(0.2)
    finally:
        sanic_error.removeHandler(handler)

    assert len(collector.events()) == 2
    assert newest_exception(logged)["type"] == "AttributeError"
    assert mechanism(logged) == ("logging", True)
    assert logged["request"]["url"].endswith("/ok")
    assert logged["transaction"] == f"{app.name}.ok"
    assert mechanism(reported) == ("sanic", False)


def test_app_run_creates_the_client_in_the_worker_and_flushes_it_at_stop(
    collector_thread: CollectorThread,
) -> None:
    app = new_app(own_loop=True)
    add_routes(app)
    ext = Errlink(app, dsn=collector_thread.dsn)
    assert ext.client is None  # nothing is created before a worker starts

    _, reply = app.test_client.get("/boom")
    assert reply.status == 500

    # The server (and its loop) is gone: the event made it because stopping flushed the client.
    assert collector_thread.event_count() == 1
    assert ext.client is not None
    assert ext.client.stats.sent == 1


async def test_asgi_mode_through_sanic_testings_asgi_client(collector: Collector) -> None:
    # As an ASGI app, Sanic runs the same listeners, middleware and signals per ASGI lifespan.
    app = new_app()
    add_routes(app)
    Errlink(app, dsn=collector.dsn)

    _, reply = await app.asgi_client.get("/boom?why=asgi", headers=SENSITIVE_HEADERS)
    assert reply.status_code == 500

    [event] = collector.events()  # the lifespan's shutdown flushed it
    assert newest_exception(event)["value"] == "boom: asgi"
    assert mechanism(event) == ("sanic", False)
    assert event["transaction"] == f"{app.name}.boom"
    assert event["tags"] == {"handler": "boom"}
    assert event["request"]["query_string"] == "why=asgi"
    assert_headers_scrubbed(event)


def test_each_worker_process_reports_through_its_own_client(
    collector_thread: CollectorThread, tmp_path: Path
) -> None:
    sock = free_socket()  # a free port for the app; released just before Sanic binds it
    port = sock.getsockname()[1]
    sock.close()
    env = {**os.environ, "ERRLINK_TEST_DSN": collector_thread.dsn, "ERRLINK_TEST_PORT": str(port)}
    log = tmp_path / "sanic.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("_async_web_sanic_workers.py"))],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the workers end with it
        )
    try:
        pids: set[str] = set()
        deadline = time.monotonic() + EVENT_TIMEOUT
        # The kernel hands each new connection to one of the two workers: ask until both answer.
        while len(pids) < 2 and time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/boom", timeout=EVENT_TIMEOUT)
            except urllib.error.HTTPError:
                pass  # the 500 expected
            except OSError:  # not listening yet
                time.sleep(0.1)
                continue
            pids = {event["tags"]["pid"] for event in collector_thread.events()}
        assert len(pids) == 2, log.read_text(errors="replace")
    finally:
        # Sanic's main process can hang when signalled while it still waits for its workers'
        # start-up acknowledgements (which it may, although both serve): end the group.
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    assert str(server.pid) not in pids  # the main process serves nothing, the workers report
    for event in collector_thread.events():
        assert mechanism(event) == ("sanic", False)
        assert event["transaction"] == "errlink_workers_test.boom"


def test_options_are_validated_where_the_extension_is_created() -> None:
    with pytest.raises(ValueError, match=r"(?i)dsn"):
        Errlink(dsn="not a dsn")
    with pytest.raises(TypeError, match="capture_status_codes"):
        Errlink(dsn="", capture_status_codes=500)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="capture_status_codes"):
        Errlink(dsn="", capture_status_codes=[700])
    with pytest.raises(TypeError, match="unknown option"):
        Errlink(dsn="", colour="red")  # type: ignore[call-arg]
    app = new_app()
    ext = Errlink(app, dsn="")
    with pytest.raises(RuntimeError, match="already serves"):
        ext.init_app(new_app())


async def test_a_disabled_client_leaves_requests_alone(session: aiohttp.ClientSession) -> None:
    app = new_app()
    add_routes(app)
    ext = Errlink(app, dsn="")
    async with serving(app) as base:
        assert await fetch(session, "GET", f"{base}/ok") == (200, b"fine")
        assert (await fetch(session, "GET", f"{base}/boom"))[0] == 500
        assert await fetch(session, "GET", f"{base}/handled") == (200, b'{"event_id":null}')
    assert ext.client is not None
    assert ext.client.stats.captured == 0


@pytest.fixture(autouse=True)
def _sanic_test_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    # Sanic rewrites some of its methods when an app starts; in test mode it rewrites the
    # originals each time, so that more than one app can start in this process.
    monkeypatch.setattr(Sanic, "test_mode", True)
    # Module-level capture calls must reach the request's client: hide any process default
    # client another test module created (errlink.init at import time, say).
    monkeypatch.setattr(errlink._scope, "_default_client", None)
