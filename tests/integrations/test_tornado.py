"""The Tornado integration, through Tornado's real HTTP server on 127.0.0.1 and the collector.

Tornado runs on asyncio: the server, errlink's AsyncClient and the `collector` fixture all share
the test's loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from _async_web_helpers import (
    CONCURRENT_REQUESTS,
    EVENT_TIMEOUT,
    SENSITIVE_HEADERS,
    assert_boom_request,
    assert_no_leakage,
    fetch,
    fetch_concurrently,
    header,
    in_app_functions,
    mechanism,
    meet,
    newest_exception,
)
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port
from tornado.web import Application, HTTPError, RequestHandler
from tornado.websocket import WebSocketHandler

import errlink
from errlink.collector import Collector
from errlink.integrations.tornado import Errlink, ErrlinkMixin


def fail_in_app(why: str) -> None:
    raise ValueError(f"boom: {why}")


class OkHandler(RequestHandler):
    def get(self) -> None:
        self.write("fine")


class BoomHandler(RequestHandler):
    async def get(self) -> None:
        errlink.set_tag("handler", "boom")
        await asyncio.sleep(0)
        fail_in_app(self.get_argument("why", "no reason"))

    def post(self) -> None:
        raise RuntimeError(f"cannot take {self.request.body[:20]!r}")


class NotFoundHandler(RequestHandler):
    def get(self) -> None:
        raise HTTPError(404, "no such order")


class UnavailableHandler(RequestHandler):
    def get(self) -> None:
        raise HTTPError(503)


class HandledHandler(RequestHandler):
    def get(self) -> None:
        errlink.set_tag("handler", "handled")
        try:
            fail_in_app("caught")
        except ValueError:
            event_id = errlink.capture_exception()
        self.write({"event_id": event_id})


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


ROUTES: list[Any] = [
    (r"/ok", OkHandler),
    (r"/boom", BoomHandler),
    (r"/orders/missing", NotFoundHandler),
    (r"/unavailable", UnavailableHandler),
    (r"/handled", HandledHandler),
    (r"/after-finish", AfterFinishHandler),
    (r"/mixin", MixinBoomHandler),
    (r"/echo", EchoSocket),
]


@asynccontextmanager
async def serving(app: Application) -> AsyncIterator[str]:
    sock, port = bind_unused_port()
    server = HTTPServer(app)
    server.add_sockets([sock])
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        await server.close_all_connections()


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


async def test_uncaught_error_is_reported_with_request_handler_and_tags(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    async with errlink_app(collector, environment="test") as (ext, base):
        status, _ = await fetch(
            session, "GET", f"{base}/boom?why=disk+full&page=2", headers=SENSITIVE_HEADERS
        )
        assert status == 500
        [event] = await collector.wait_for_events(1, EVENT_TIMEOUT)

    exception = newest_exception(event)
    assert exception["type"] == "ValueError"
    assert exception["value"] == "boom: disk full"
    assert mechanism(event) == ("tornado", False)
    assert in_app_functions(event) == ["BoomHandler.get", "fail_in_app"]
    assert_boom_request(event, base)
    assert event["transaction"] == "test_tornado.BoomHandler"
    assert event["tags"] == {"handler": "boom"}
    assert event["environment"] == "test"
    assert "tornado" in event["sdk"]["integrations"]
    assert Errlink.of(ext.app) is ext  # type: ignore[arg-type]


async def test_handled_capture_inside_a_handler_reaches_the_request_scope(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    async with errlink_app(collector) as (_, base):
        status, body = await fetch(session, "GET", f"{base}/handled?x=1")
        assert status == 200
        [event] = await collector.wait_for_events(1, EVENT_TIMEOUT)

    assert body.decode() == f'{{"event_id": "{event["event_id"]}"}}'
    assert mechanism(event) == ("generic", True)
    assert event["request"]["url"] == f"{base}/handled"
    assert event["request"]["query_string"] == "x=1"
    assert event["tags"] == {"handler": "handled"}


async def test_responses_are_identical_with_errlink_on_and_off(collector: Collector) -> None:
    paths = ["/ok", "/boom", "/orders/missing", "/unavailable", "/nowhere", "/after-finish"]

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
    await collector.wait_for_events(3, EVENT_TIMEOUT)  # boom, unavailable, after-finish


async def test_http_errors_are_reported_by_status(collector: Collector) -> None:
    async def visit(**options: Any) -> None:
        async with (
            errlink_app(collector, **options) as (_, base),
            aiohttp.ClientSession() as client,
        ):
            for path in ("/orders/missing", "/nowhere", "/unavailable"):
                async with client.get(base + path) as reply:
                    await reply.read()

    await visit()
    await visit(capture_status_codes={404})
    await collector.wait_for_events(3, EVENT_TIMEOUT)
    await asyncio.sleep(0.2)  # nothing else may trickle in
    reported = sorted(
        (event["transaction"], newest_exception(event)["value"]) for event in collector.events()
    )
    assert reported == [
        ("test_tornado.NotFoundHandler", "HTTP 404: Not Found (no such order)"),
        ("test_tornado.UnavailableHandler", "HTTP 503: Service Unavailable"),
        ("tornado.web.ErrorHandler", "HTTP 404: Not Found"),  # no route matched
    ]


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
    async with errlink_app(collector, every_handler=False) as (_, base):
        assert (await fetch(session, "GET", f"{base}/boom"))[0] == 500
        assert (await fetch(session, "GET", f"{base}/mixin"))[0] == 500
        # The scope is there for every handler all the same.
        assert (await fetch(session, "GET", f"{base}/handled"))[0] == 200
        events = await collector.wait_for_events(2, EVENT_TIMEOUT)
        await asyncio.sleep(0.2)

    assert len(collector.events()) == 2
    by_type = {newest_exception(event)["type"]: event for event in events}
    assert set(by_type) == {"LookupError", "ValueError"}
    assert mechanism(by_type["LookupError"]) == ("tornado", False)
    assert by_type["LookupError"]["transaction"] == "test_tornado.MixinBoomHandler"
    assert mechanism(by_type["ValueError"]) == ("generic", True)  # the handled capture


async def test_mixin_and_every_handler_together_report_once(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    async with errlink_app(collector) as (_, base):
        assert (await fetch(session, "GET", f"{base}/mixin"))[0] == 500
        await collector.wait_for_events(1, EVENT_TIMEOUT)
        await asyncio.sleep(0.2)
    assert len(collector.events()) == 1


async def test_body_and_personal_data(collector: Collector, session: aiohttp.ClientSession) -> None:
    async with errlink_app(collector, send_default_pii=True, max_request_body_size="small") as (
        _,
        base,
    ):
        await fetch(
            session, "POST", f"{base}/boom", json={"item": "tea"}, headers=SENSITIVE_HEADERS
        )
        await fetch(session, "POST", f"{base}/boom", data=b"x" * 5000)
        small, large = await collector.wait_for_events(2, EVENT_TIMEOUT)

    assert small["request"]["data"] == {"item": "tea"}
    assert small["request"]["method"] == "POST"
    assert "theme=dark" in small["request"]["cookies"]
    assert small["request"]["env"]["REMOTE_ADDR"] == "127.0.0.1"
    assert header(small, "Authorization") == "[Filtered]"
    assert large["request"]["data"] == (
        "[request body of 5000 bytes left out: over max_request_body_size]"
    )


async def test_websocket_callback_error_is_reported(collector: Collector) -> None:
    async with errlink_app(collector) as (_, base), aiohttp.ClientSession() as client:
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


class WorkHandler(RequestHandler):
    barrier: asyncio.Barrier

    async def get(self) -> None:
        n = int(self.get_argument("n"))
        errlink.set_tag("n", n)
        errlink.set_extra("n", n)
        await meet(self.barrier)  # all requests are in flight, each with its own tags set
        raise RuntimeError(f"request {n} failed")


async def test_concurrent_requests_never_share_scope_data(collector: Collector) -> None:
    WorkHandler.barrier = asyncio.Barrier(CONCURRENT_REQUESTS)
    async with errlink_app(collector, routes=[(r"/work", WorkHandler)]) as (_, base):
        results = await fetch_concurrently(base, "/work", CONCURRENT_REQUESTS)
        assert {status for status, _ in results} == {500}
        events = await collector.wait_for_events(CONCURRENT_REQUESTS, EVENT_TIMEOUT)
    assert_no_leakage(events, CONCURRENT_REQUESTS)


class TagHandler(RequestHandler):
    connections: list[object]

    def get(self) -> None:
        self.connections.append(self.request.connection.stream)  # type: ignore[union-attr]
        errlink.set_tag("leftover", "yes")
        errlink.set_user({"id": "1"})
        self.write("tagged")


class ReportHandler(RequestHandler):
    connections: list[object]

    def get(self) -> None:
        self.connections.append(self.request.connection.stream)  # type: ignore[union-attr]
        errlink.capture_message("second request")
        self.write("reported")


async def test_keep_alive_requests_on_one_connection_start_clean(collector: Collector) -> None:
    connections: list[object] = []
    TagHandler.connections = ReportHandler.connections = connections
    routes = [(r"/tag", TagHandler), (r"/report", ReportHandler)]
    async with errlink_app(collector, routes=routes) as (_, base):
        connector = aiohttp.TCPConnector(limit=1)
        async with aiohttp.ClientSession(connector=connector) as client:
            assert (await fetch(client, "GET", f"{base}/tag"))[0] == 200
            assert (await fetch(client, "GET", f"{base}/report"))[0] == 200
        [event] = await collector.wait_for_events(1, EVENT_TIMEOUT)

    assert connections[0] is connections[1]  # really one keep-alive connection
    assert "tags" not in event
    assert "user" not in event
    assert event["request"]["url"].endswith("/report")


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


async def test_a_disabled_client_leaves_requests_alone(session: aiohttp.ClientSession) -> None:
    app = Application(ROUTES)
    ext = Errlink(app, dsn="")
    async with serving(app) as base:
        assert await fetch(session, "GET", f"{base}/ok") == (200, b"fine")
        assert (await fetch(session, "GET", f"{base}/boom"))[0] == 500
        assert await fetch(session, "GET", f"{base}/handled") == (200, b'{"event_id": null}')
    assert ext.client is not None
    assert ext.client.stats.captured == 0


@pytest.fixture(autouse=True)
def _no_default_client(monkeypatch: pytest.MonkeyPatch) -> None:
    # Module-level capture calls must reach the request's client: hide any process default
    # client another test module created (errlink.init at import time, say).
    monkeypatch.setattr(errlink._scope, "_default_client", None)
