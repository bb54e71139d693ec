"""The Tornado integration, through Tornado's real HTTP server on 127.0.0.1 and the collector.

Tornado runs on asyncio: the server, errlink's AsyncClient and the `collector` fixture all share
the test's loop. What every web integration does (request data, status codes, bodies, personal
data, scope isolation) is tested once for all of them in `test_web_contract`; here is what is
Tornado's own.
"""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from _async_web_helpers import EVENT_TIMEOUT, fetch, mechanism, newest_exception
from _web_apps import BoomHandler, HandledHandler, State
from _web_apps import tornado_serving as serving
from tornado.httpclient import AsyncHTTPClient, HTTPResponse
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop
from tornado.testing import bind_unused_port
from tornado.web import Application, HTTPError, RequestHandler
from tornado.websocket import WebSocketHandler

import errlink
from errlink.collector import Collector, CollectorThread
from errlink.integrations.tornado import Errlink, ErrlinkMixin


class NotFoundHandler(RequestHandler):
    def get(self) -> None:
        raise HTTPError(404, "no such order")


class AfterFinishHandler(RequestHandler):
    def get(self) -> None:
        self.finish("done")
        raise KeyError("after the response")


class MixinBoomHandler(ErrlinkMixin, RequestHandler):
    def get(self) -> None:
        raise LookupError("from a mixin handler")


class EchoSocket(WebSocketHandler):
    def open(self) -> None:
        errlink.set_tag("socket", "echo")

    def on_message(self, message: str | bytes) -> None:
        raise ArithmeticError(f"cannot echo {message!r}")


class CaptureThenStopHandler(RequestHandler):
    def get(self) -> None:
        errlink.capture_message("queued as the loop stops")
        # The senders are woken for the loop's next pass, which never comes: start() returns.
        IOLoop.current().stop()
        self.write("stopped")


# The shared handlers (`_web_apps`) take a `State`; these routes use none of it.
_UNUSED_STATE = {"state": State(barrier=None)}
ROUTES: list[Any] = [
    (r"/boom", BoomHandler, _UNUSED_STATE),
    (r"/orders/missing", NotFoundHandler),
    (r"/handled", HandledHandler, _UNUSED_STATE),
    (r"/after-finish", AfterFinishHandler),
    (r"/mixin", MixinBoomHandler),
    (r"/echo", EchoSocket),
    (r"/stop", CaptureThenStopHandler),
]


@asynccontextmanager
async def errlink_app(
    collector: Collector, routes: list[Any] = ROUTES, **options: Any
) -> AsyncIterator[tuple[Errlink, str]]:
    app = Application(routes)
    ext = Errlink(app, dsn=collector.dsn, **options)
    try:
        async with serving(app) as base:
            yield ext, base
    finally:
        await ext.aclose()


async def test_responses_are_identical_with_errlink_on_and_off(collector: Collector) -> None:
    # The common routes are in test_web_contract; these are Tornado's own ways to fail.
    paths = ["/orders/missing", "/after-finish"]

    async def responses(app: Application) -> list[tuple[int, bytes, str | None]]:
        out = []
        async with serving(app) as base, aiohttp.ClientSession() as client:
            for path in paths:
                async with client.get(base + path) as reply:
                    out.append(
                        (reply.status, await reply.read(), reply.headers.get("Content-Type"))
                    )
        return out

    plain = await responses(Application(ROUTES))
    async with errlink_app(collector) as (ext, _):
        assert ext.app is not None
        instrumented = await responses(ext.app)
    assert instrumented == plain
    assert [status for status, *_ in plain] == [404, 200]
    await collector.wait_for_events(1, EVENT_TIMEOUT)  # after-finish


async def test_an_http_error_a_handler_raises_is_reported_by_status(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    async with errlink_app(collector) as (ext, base):
        assert (await fetch(session, "GET", f"{base}/orders/missing"))[0] == 404
        assert ext.client is not None
        assert ext.client.stats.captured == 0
    async with errlink_app(collector, capture_status_codes={404}) as (ext, base):
        assert (await fetch(session, "GET", f"{base}/orders/missing"))[0] == 404
        [event] = await collector.wait_for_events(1, EVENT_TIMEOUT)
    assert newest_exception(event)["value"] == "HTTP 404: Not Found (no such order)"
    assert mechanism(event) == ("tornado", False)
    assert event["transaction"] == "test_tornado.NotFoundHandler"


async def test_error_after_the_response_was_sent_is_reported(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    async with errlink_app(collector) as (_, base):
        assert await fetch(session, "GET", f"{base}/after-finish") == (200, b"done")
        [event] = await collector.wait_for_events(1, EVENT_TIMEOUT)
    assert newest_exception(event)["type"] == "KeyError"
    assert event["transaction"] == "test_tornado.AfterFinishHandler"


async def test_without_every_handler_only_mixin_handlers_report(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    async with errlink_app(collector, every_handler=False) as (ext, base):
        assert (await fetch(session, "GET", f"{base}/boom"))[0] == 500
        assert (await fetch(session, "GET", f"{base}/mixin"))[0] == 500
        # The scope is there for every handler all the same.
        assert (await fetch(session, "GET", f"{base}/handled"))[0] == 200
        events = await collector.wait_for_events(2, EVENT_TIMEOUT)
        assert ext.client is not None
        assert ext.client.stats.captured == 2  # the responses are back: all captures are made

    assert len(collector.events()) == 2  # the client was flushed and closed
    by_type = {newest_exception(event)["type"]: event for event in events}
    assert set(by_type) == {"LookupError", "ValueError"}
    assert mechanism(by_type["LookupError"]) == ("tornado", False)
    assert by_type["LookupError"]["transaction"] == "test_tornado.MixinBoomHandler"
    assert mechanism(by_type["ValueError"]) == ("generic", True)  # the handled capture


async def test_mixin_and_every_handler_together_report_once(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    async with errlink_app(collector) as (ext, base):
        assert (await fetch(session, "GET", f"{base}/mixin"))[0] == 500
        await collector.wait_for_events(1, EVENT_TIMEOUT)
        assert ext.client is not None
        assert ext.client.stats.captured == 1  # the response is back: all captures are made
    assert len(collector.events()) == 1  # the client was flushed and closed


async def test_websocket_callback_error_is_reported(collector: Collector) -> None:
    async with errlink_app(collector) as (ext, base), aiohttp.ClientSession() as client:
        assert Errlink.of(ext.app) is ext  # type: ignore[arg-type]
        async with client.ws_connect(f"{base}/echo?room=1") as ws:
            await ws.send_str("hello")
            closing = await ws.receive(timeout=EVENT_TIMEOUT)
            assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        [event] = await collector.wait_for_events(1, EVENT_TIMEOUT)

    assert newest_exception(event)["value"] == "cannot echo 'hello'"
    assert mechanism(event) == ("tornado", False)
    assert event["transaction"] == "test_tornado.EchoSocket"
    assert event["request"]["query_string"] == "room=1"
    assert event["tags"] == {"socket": "echo"}


def test_a_loop_run_by_start_flushes_its_clients_when_it_stops(
    collector_thread: CollectorThread,
) -> None:
    io_loop = IOLoop(make_current=False)
    app = Application(ROUTES)
    ext = Errlink(app, dsn=collector_thread.dsn)
    server = HTTPServer(app)
    responses: list[asyncio.Future[HTTPResponse]] = []

    def serve_and_request() -> None:
        sock, port = bind_unused_port()
        server.add_sockets([sock])
        responses.append(AsyncHTTPClient().fetch(f"http://127.0.0.1:{port}/stop"))

    io_loop.add_callback(serve_and_request)
    io_loop.start()  # returns when the handler stops the loop, its event still queued then
    try:
        # Delivered before start() returned: nothing ran the loop since.
        [event] = collector_thread.events()
        assert event["logentry"]["formatted"] == "queued as the loop stops"
    finally:

        async def finish() -> None:
            await responses[0]
            server.stop()
            await server.close_all_connections()
            await ext.aclose()

        io_loop.run_sync(finish)
        io_loop.close(all_fds=True)


async def test_the_documented_program_reports_and_delivers_before_it_exits(
    collector: Collector,
) -> None:
    page = Path(__file__).parents[2] / "docs" / "integrations" / "tornado.md"
    program = re.search(r"```python\n(.*?)```", page.read_text(), re.DOTALL)
    assert program is not None
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    source = (
        program[1]
        .replace("https://PUBLIC_KEY@o0.ingest.sentry.io/PROJECT_ID", collector.dsn)
        .replace("app.listen(8888)", f"app.listen({port}, '127.0.0.1')")
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", source, stderr=asyncio.subprocess.PIPE
    )
    try:
        deadline = asyncio.get_running_loop().time() + EVENT_TIMEOUT
        async with aiohttp.ClientSession() as session:
            while True:  # until the program listens
                try:
                    status, _ = await fetch(session, "GET", f"http://127.0.0.1:{port}/orders/42")
                    break
                except aiohttp.ClientConnectionError:
                    assert process.returncode is None, "the program ended before it listened"
                    assert asyncio.get_running_loop().time() < deadline, "it never listened"
                    await asyncio.sleep(0.05)
        assert status == 500
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), EVENT_TIMEOUT)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, stderr.decode()
    [event] = await collector.wait_for_events(1, EVENT_TIMEOUT)
    assert newest_exception(event)["value"] == "no order 42"
    assert event["transaction"] == "__main__.OrderHandler"


def test_options_are_validated_where_the_extension_is_created() -> None:
    with pytest.raises(ValueError, match=r"(?i)dsn"):
        Errlink(dsn="not a dsn")
    with pytest.raises(TypeError, match="capture_status_codes"):
        Errlink(dsn="", capture_status_codes="5xx")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="every_handler"):
        Errlink(dsn="", every_handler="yes")  # type: ignore[arg-type]
    app = Application()
    Errlink(app, dsn="")
    with pytest.raises(RuntimeError, match="already has"):
        Errlink(app, dsn="")


@pytest.fixture(autouse=True)
def _no_default_client(monkeypatch: pytest.MonkeyPatch) -> None:
    # Module-level capture calls must reach the request's client: hide any process default
    # client another test module created (errlink.init at import time, say).
    monkeypatch.setattr(errlink._capture.binding, "_default_client", None)
