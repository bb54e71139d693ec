"""The aiohttp.web integration, through aiohttp's real server on 127.0.0.1 and the collector."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import aiohttp
import pytest
from _async_web_helpers import (
    CONCURRENT_REQUESTS,
    EVENT_TIMEOUT,
    SENSITIVE_HEADERS,
    assert_boom_request,
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
from aiohttp import web

import errlink
from errlink.collector import Collector
from errlink.integrations.aiohttp import Errlink

routes = web.RouteTableDef()


def fail_in_app(why: str) -> None:
    raise ValueError(f"boom: {why}")


@routes.get("/ok")
async def ok(request: web.Request) -> web.Response:
    return web.Response(text="fine")


@routes.route("*", "/boom", name="boom")
async def boom(request: web.Request) -> web.Response:
    errlink.set_tag("handler", "boom")
    await asyncio.sleep(0)
    fail_in_app(request.query.get("why", "no reason"))
    return web.Response(text="unreachable")


@routes.post("/orders")
async def create_order(request: web.Request) -> web.Response:
    order = await request.json()
    raise RuntimeError(f"cannot order {order['item']}")


@routes.post("/unread")
async def unread(request: web.Request) -> web.Response:
    raise RuntimeError("failed before reading the body")


@routes.get("/forbidden")
async def forbidden(request: web.Request) -> web.Response:
    raise web.HTTPForbidden(text="not yours")


@routes.get("/moved")
async def moved(request: web.Request) -> web.Response:
    raise web.HTTPFound("/ok")


@routes.get("/unavailable")
async def unavailable(request: web.Request) -> web.Response:
    raise web.HTTPServiceUnavailable()


@routes.get("/handled")
async def handled(request: web.Request) -> web.Response:
    errlink.set_tag("handler", "handled")
    try:
        fail_in_app("caught")
    except ValueError:
        event_id = errlink.capture_exception()
    return web.json_response({"event_id": event_id})


@routes.view("/orders/{id}")
class OrderView(web.View):
    async def get(self) -> web.Response:
        raise LookupError(f"no order {self.request.match_info['id']}")


def build_app(*, with_subapp: bool = True) -> web.Application:
    app = web.Application()
    app.add_routes(routes)
    if with_subapp:
        admin = web.Application()

        async def purge(request: web.Request) -> web.Response:
            raise PermissionError("purge refused")

        admin.router.add_get("/purge", purge)
        app.add_subapp("/admin", admin)
    return app


@asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    """aiohttp's real server (AppRunner + SockSite) on 127.0.0.1; cleanup runs at exit."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = free_socket()
    port = sock.getsockname()[1]
    site = web.SockSite(runner, sock)
    await site.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_unhandled_error_is_reported_with_request_route_and_tags(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    app = build_app()
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
    assert mechanism(event) == ("aiohttp", False)
    assert in_app_functions(event) == ["boom", "fail_in_app"]
    assert_boom_request(event, base)
    assert event["transaction"] == "boom"  # the route's name
    assert event["tags"] == {"handler": "boom"}
    assert event["environment"] == "test"
    assert "aiohttp" in event["sdk"]["integrations"]
    assert Errlink.of(app) is ext
    assert ext.client is not None
    assert not ext.client.enabled


async def test_handled_capture_inside_a_handler_reaches_the_request_scope(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    app = build_app()
    Errlink(app, dsn=collector.dsn)
    async with serving(app) as base:
        status, body = await fetch(session, "GET", f"{base}/handled?x=1")
        assert status == 200
        [event] = await collector.wait_for_events(1, EVENT_TIMEOUT)

    assert body.decode() == f'{{"event_id": "{event["event_id"]}"}}'
    assert mechanism(event) == ("generic", True)
    assert event["request"]["url"] == f"{base}/handled"
    assert event["transaction"] == "test_aiohttp_web.handled"  # unnamed: the handler's path
    assert event["tags"] == {"handler": "handled"}


async def test_responses_are_identical_with_errlink_on_and_off(collector: Collector) -> None:
    paths = ["/ok", "/boom", "/missing", "/forbidden", "/moved", "/unavailable", "/orders/7"]

    async def responses(app: web.Application) -> list[tuple[int, bytes, str | None, str | None]]:
        out = []
        async with serving(app) as base, aiohttp.ClientSession() as client:
            for path in paths:
                async with client.get(base + path, allow_redirects=False) as reply:
                    out.append(
                        (
                            reply.status,
                            await reply.read(),
                            reply.headers.get("Content-Type"),
                            reply.headers.get("Location"),
                        )
                    )
        return out

    plain = await responses(build_app())
    instrumented_app = build_app()
    Errlink(instrumented_app, dsn=collector.dsn)
    assert await responses(instrumented_app) == plain
    await collector.wait_for_events(3, EVENT_TIMEOUT)  # boom, unavailable, orders/7


async def test_http_exceptions_are_reported_by_status(collector: Collector) -> None:
    for codes in (None, {403, 404}):
        app = build_app()
        if codes is None:
            Errlink(app, dsn=collector.dsn)
        else:
            Errlink(app, dsn=collector.dsn, capture_status_codes=codes)
        async with serving(app) as base, aiohttp.ClientSession() as client:
            for path in ("/missing", "/forbidden", "/moved", "/unavailable"):
                async with client.get(base + path, allow_redirects=False) as reply:
                    await reply.read()

    await collector.wait_for_events(3, EVENT_TIMEOUT)
    await asyncio.sleep(0.2)  # nothing else may trickle in
    reported = sorted(
        (event.get("transaction", "-"), newest_exception(event)["type"])
        for event in collector.events()
    )
    assert reported == [
        ("-", "HTTPNotFound"),  # no route matched
        ("test_aiohttp_web.forbidden", "HTTPForbidden"),
        ("test_aiohttp_web.unavailable", "HTTPServiceUnavailable"),  # 503: by default
    ]


async def test_request_bodies_within_the_limit(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    app = build_app()
    Errlink(app, dsn=collector.dsn, max_request_body_size="small")
    async with serving(app) as base:
        await fetch(session, "POST", f"{base}/orders", json={"item": "tea"})
        await fetch(session, "POST", f"{base}/unread", data={"note": "left alone"})
        await fetch(session, "POST", f"{base}/unread", data=b"x" * 5000)
        read, unread, large = await collector.wait_for_events(3, EVENT_TIMEOUT)

    assert read["request"]["data"] == {"item": "tea"}
    assert read["transaction"] == "test_aiohttp_web.create_order"
    assert unread["request"]["data"] == {"note": "left alone"}  # buffered: read on the error path
    assert header(unread, "Content-Type") == "application/x-www-form-urlencoded"
    assert large["request"]["data"] == (
        "[request body of 5000 bytes left out: over max_request_body_size]"
    )


async def test_no_body_without_max_request_body_size(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    app = build_app()
    Errlink(app, dsn=collector.dsn, max_request_body_size="none")
    async with serving(app) as base:
        await fetch(session, "POST", f"{base}/orders", json={"item": "tea"})
        [event] = await collector.wait_for_events(1, EVENT_TIMEOUT)
    assert "data" not in event["request"]


async def test_other_middleware_views_and_subapps(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    app = build_app()

    @web.middleware
    async def audit(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.headers.get("X-Audit") == "broken":
            raise OSError("audit log full")
        return await handler(request)

    app.middlewares.append(audit)
    Errlink(app, dsn=collector.dsn)  # goes first: it sees what `audit` raises
    async with serving(app) as base:
        assert (await fetch(session, "GET", f"{base}/ok", headers={"X-Audit": "broken"}))[0] == 500
        assert (await fetch(session, "GET", f"{base}/orders/7"))[0] == 500
        assert (await fetch(session, "GET", f"{base}/admin/purge"))[0] == 500
        middleware, view, subapp = await collector.wait_for_events(3, EVENT_TIMEOUT)

    assert newest_exception(middleware)["type"] == "OSError"
    assert in_app_functions(middleware)[-1].endswith("audit")
    assert middleware["transaction"] == "test_aiohttp_web.ok"
    assert view["transaction"] == "test_aiohttp_web.OrderView"
    assert newest_exception(view)["value"] == "no order 7"
    assert subapp["transaction"] == "test_aiohttp_web.build_app.<locals>.purge"
    assert subapp["request"]["url"] == f"{base}/admin/purge"


async def test_personal_data_only_with_send_default_pii(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    app = build_app()
    Errlink(app, dsn=collector.dsn, send_default_pii=True)
    async with serving(app) as base:
        await fetch(session, "GET", f"{base}/boom", headers=SENSITIVE_HEADERS)
        [event] = await collector.wait_for_events(1, EVENT_TIMEOUT)

    assert_personal_data_sent(event)


async def test_concurrent_requests_never_share_scope_data(collector: Collector) -> None:
    barrier = asyncio.Barrier(CONCURRENT_REQUESTS)

    async def work(request: web.Request) -> web.Response:
        n = int(request.query["n"])
        errlink.set_tag("n", n)
        errlink.set_extra("n", n)
        await meet(barrier)  # all requests are in flight, each with its own tags set
        raise RuntimeError(f"request {n} failed")

    app = web.Application()
    app.router.add_get("/work", work)
    Errlink(app, dsn=collector.dsn)
    async with serving(app) as base:
        results = await fetch_concurrently(base, "/work", CONCURRENT_REQUESTS)
        assert {status for status, _ in results} == {500}
        events = await collector.wait_for_events(CONCURRENT_REQUESTS, EVENT_TIMEOUT)
    assert_no_leakage(events, CONCURRENT_REQUESTS)


async def test_keep_alive_requests_on_one_connection_start_clean(collector: Collector) -> None:
    transports: list[object] = []

    async def tag(request: web.Request) -> web.Response:
        transports.append(request.transport)
        errlink.set_tag("leftover", "yes")
        errlink.set_user({"id": "1"})
        return web.Response(text="tagged")

    async def report(request: web.Request) -> web.Response:
        transports.append(request.transport)
        errlink.capture_message("second request")
        return web.Response(text="reported")

    app = web.Application()
    app.router.add_get("/tag", tag)
    app.router.add_get("/report", report)
    Errlink(app, dsn=collector.dsn)
    async with serving(app) as base:
        connector = aiohttp.TCPConnector(limit=1)
        async with aiohttp.ClientSession(connector=connector) as client:
            assert (await fetch(client, "GET", f"{base}/tag"))[0] == 200
            assert (await fetch(client, "GET", f"{base}/report"))[0] == 200
        [event] = await collector.wait_for_events(1, EVENT_TIMEOUT)

    assert transports[0] is transports[1]  # really one keep-alive connection
    assert "tags" not in event
    assert "user" not in event
    assert event["transaction"].endswith(".report")


async def test_wiring_the_parts_by_hand(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    ext = Errlink(dsn=collector.dsn)
    app = web.Application(middlewares=[ext.middleware])
    app.add_routes(routes)
    app.cleanup_ctx.append(ext.cleanup_ctx)
    assert ext.client is None  # created when the app starts
    async with serving(app) as base:
        assert ext.client is not None
        assert ext.client.enabled
        assert (await fetch(session, "GET", f"{base}/boom"))[0] == 500
    # Clean-up flushed the client: the event is stored although the app is gone.
    assert len(collector.events()) == 1
    assert not ext.client.enabled


def test_options_are_validated_where_the_extension_is_created() -> None:
    with pytest.raises(ValueError, match=r"(?i)dsn"):
        Errlink(dsn="not a dsn")
    with pytest.raises(ValueError, match="capture_status_codes"):
        Errlink(dsn="", capture_status_codes=[True])
    app = web.Application()
    ext = Errlink(app, dsn="")
    with pytest.raises(RuntimeError, match="already serves"):
        ext.init_app(web.Application())


async def test_a_disabled_client_leaves_requests_alone(session: aiohttp.ClientSession) -> None:
    app = build_app()
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
