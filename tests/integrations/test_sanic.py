"""The Sanic integration, through Sanic's real server on 127.0.0.1 and errlink's collector.

Most tests run the server on the test's own loop (`app.create_server`, the low-level API Sanic
documents for that), so the `collector` fixture shares the loop. Others run the app through
sanic-testing's clients (`app.test_client`: `app.run` on its own loop, against
`collector_thread`; `app.asgi_client`: Sanic as an ASGI app), and one runs it as a real
two-worker server in a separate process. What every web integration does (request data, status
codes, bodies, personal data, scope isolation) is tested once for all of them in
`test_web_contract`; here is what is Sanic's own.
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
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from _async_web_helpers import (
    EVENT_TIMEOUT,
    SENSITIVE_HEADERS,
    assert_headers_scrubbed,
    fetch,
    free_socket,
    header,
    in_app_functions,
    mechanism,
    newest_exception,
)
from _web_apps import State, sanic_app
from _web_apps import new_sanic_app as new_app
from _web_apps import sanic_serving as serving
from sanic import Blueprint, Request, Sanic, Websocket, response

import errlink
from errlink.collector import Collector, CollectorThread
from errlink.integrations.logging import EventHandler
from errlink.integrations.sanic import Errlink

# sanic-testing (which Sanic imports when it is installed) uses websockets' legacy client.
pytestmark = pytest.mark.filterwarnings("ignore:websockets.legacy is deprecated:DeprecationWarning")


def shared_app(*, own_loop: bool = False) -> Any:
    """The app every web integration is tested with (`_web_apps`: /ok, /boom, ...)."""
    return sanic_app(State(barrier=None), own_loop=own_loop)


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
    app = shared_app()

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
    app = shared_app()

    @app.on_response
    async def stamp(request: Request, reply: response.HTTPResponse) -> None:
        if request.path == "/ok":
            raise AttributeError("no stamp")

    ext = Errlink(app, dsn=collector.dsn)
    handler = EventHandler()
    sanic_error = logging.getLogger("sanic.error")
    sanic_error.addHandler(handler)
    try:
        async with serving(app) as base:
            assert await fetch(session, "GET", f"{base}/ok") == (200, b"fine")
            # Logged by Sanic too, but already reported by the extension: sent once.
            assert (await fetch(session, "GET", f"{base}/boom"))[0] == 500
            logged, reported = await collector.wait_for_events(2, EVENT_TIMEOUT)
            client = ext.client
            assert client is not None
            # Both responses are back: whatever was going to be captured has been.
            assert client.stats.captured == 2
            assert await client.flush(EVENT_TIMEOUT)
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
    app = shared_app(own_loop=True)
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
    app = shared_app()
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


@pytest.fixture(autouse=True)
def _sanic_test_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    # Sanic rewrites some of its methods when an app starts; in test mode it rewrites the
    # originals each time, so that more than one app can start in this process.
    monkeypatch.setattr(Sanic, "test_mode", True)
    # Module-level capture calls must reach the request's client: hide any process default
    # client another test module created (errlink.init at import time, say).
    monkeypatch.setattr(errlink._capture.binding, "_default_client", None)
