"""What only the Litestar plugin does, under a real uvicorn (the shared contract is in
`test_web_contract`): the client's lifetime around the app's own lifespan code, WebSockets,
tasks nobody awaited, background tasks, the user's exception handlers and middleware."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from _asgi_serving import uvicorn_serving
from _async_web_helpers import EVENT_TIMEOUT, fetch, mechanism, newest_exception
from _web_apps import State
from _web_apps_litestar import litestar_app
from litestar import Litestar, Request, Response, Router, WebSocket, get, websocket
from litestar.background_tasks import BackgroundTask

import errlink
from errlink.collector import Collector
from errlink.integrations.asgi import Receive, Scope, Send
from errlink.integrations.litestar import ErrlinkPlugin


async def _fail_later() -> None:
    await asyncio.sleep(0)
    raise LookupError("nobody awaited me")


async def _fail_in_background() -> None:
    raise OSError("background job failed")


@get("/spawn")
async def spawn() -> str:
    errlink.set_tag("handler", "spawn")
    asyncio.create_task(_fail_later())  # noqa: RUF006 - never awaited, on purpose
    return "spawned"


@get("/later")
async def later() -> Response[str]:
    errlink.set_tag("handler", "later")
    return Response("queued", background=BackgroundTask(_fail_in_background))


@websocket("/live")
async def live(socket: WebSocket[Any, Any, Any]) -> None:
    await socket.accept()
    errlink.set_tag("handler", "socket")
    raise RuntimeError("socket broke")


@asynccontextmanager
async def serving(
    plugin: ErrlinkPlugin | None, server: dict[str, Any] | None = None, **app_options: Any
) -> AsyncIterator[str]:
    """The contract's app plus `app_options` (extra `route_handlers`...), with `plugin`."""
    plugins = [] if plugin is None else [plugin]
    app = litestar_app(State(asyncio.Barrier(1)), plugins=plugins, **app_options)
    async with uvicorn_serving(app, proxy_headers=False, **(server or {})) as base:
        yield base


async def test_the_client_outlives_the_apps_own_lifespan_code(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    plugin = ErrlinkPlugin(collector.dsn, environment="test")
    seen_at_startup: list[Any] = []

    @asynccontextmanager
    async def own_lifespan(app: Litestar) -> AsyncIterator[None]:
        seen_at_startup.append(plugin.client)
        yield

    async def on_shutdown() -> None:
        # Captured after the last request, by the app's own hook: only the flush that follows
        # every shutdown hook can deliver it.
        assert plugin.client is not None
        await plugin.client.capture_message("said at shutdown")

    async with serving(plugin, lifespan=[own_lifespan], on_shutdown=[on_shutdown]) as base:
        client = plugin.client
        assert client is not None
        assert client.enabled
        assert await fetch(session, "GET", f"{base}/report") == (200, b"reported")

    assert seen_at_startup == [client]
    assert not client.enabled  # flushed and closed by the server's shutdown
    events = await collector.wait_for_events(2, EVENT_TIMEOUT)
    assert [e["logentry"]["formatted"] for e in events] == ["second request", "said at shutdown"]
    assert events[0]["request"]["url"] == f"{base}/report"
    assert events[0]["transaction"] == "/report"
    assert "request" not in events[1]
    assert "litestar" in events[0]["sdk"]["integrations"]


async def test_without_a_lifespan_the_client_starts_at_the_first_request(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    plugin = ErrlinkPlugin(collector.dsn, capture_status_codes={404})
    async with serving(plugin, server={"lifespan": "off"}) as base:
        assert plugin.client is None
        # A routing failure: no route middleware runs, the after_exception hook starts it.
        assert (await fetch(session, "GET", f"{base}/missing?x=1"))[0] == 404
        [event] = await collector.wait_for_events(1, EVENT_TIMEOUT)
        assert plugin.client is not None
        await plugin.aclose()

    assert newest_exception(event)["type"] == "NotFoundException"
    assert event["request"]["url"] == f"{base}/missing"
    assert event["request"]["query_string"] == "x=1"
    assert "transaction" not in event


async def test_a_websocket_handler_that_raises_is_reported(collector: Collector) -> None:
    plugin = ErrlinkPlugin(collector.dsn)
    async with serving(plugin, route_handlers=[live]) as base, aiohttp.ClientSession() as session:
        async with session.ws_connect(f"{base.replace('http', 'ws')}/live?room=7") as socket:
            message = await socket.receive(timeout=EVENT_TIMEOUT)
            assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        [event] = await collector.wait_for_events(1, EVENT_TIMEOUT)

    assert mechanism(event) == ("litestar", False)
    assert newest_exception(event)["value"] == "socket broke"
    assert event["request"]["url"] == f"{base.replace('http', 'ws')}/live"
    assert event["request"]["query_string"] == "room=7"
    assert event["transaction"] == "/live"
    assert event["tags"] == {"handler": "socket"}


async def test_a_task_nobody_awaited_is_reported_once_with_its_request(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    plugin = ErrlinkPlugin(collector.dsn)
    async with serving(plugin, route_handlers=[spawn]) as base:
        assert await fetch(session, "GET", f"{base}/spawn") == (200, b"spawned")
        [event] = await collector.wait_for_events(1, EVENT_TIMEOUT)
        gc.collect()  # asyncio now reports the task's exception itself: the same one
        client = plugin.client
        assert client is not None
    assert client.stats.captured == 1  # final: the client was closed at shutdown

    assert mechanism(event) == ("asyncio", False)
    assert newest_exception(event)["value"] == "nobody awaited me"
    assert event["request"]["url"] == f"{base}/spawn"
    assert event["tags"] == {"handler": "spawn"}
    assert len(collector.events()) == 1


async def test_a_failing_background_task_is_reported_once(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    plugin = ErrlinkPlugin(collector.dsn)
    async with serving(plugin, route_handlers=[later]) as base:
        assert await fetch(session, "GET", f"{base}/later") == (200, b"queued")
        [event] = await collector.wait_for_events(1, EVENT_TIMEOUT)
        client = plugin.client
        assert client is not None
    assert client.stats.captured == 1

    # Litestar wraps it ("Exception caught after response started"): the error itself is sent.
    assert newest_exception(event)["type"] == "OSError"
    assert newest_exception(event)["value"] == "background job failed"
    assert mechanism(event) == ("litestar", False)
    assert event["request"]["url"] == f"{base}/later"
    assert event["transaction"] == "/later"
    assert event["tags"] == {"handler": "later"}
    assert len(collector.events()) == 1


def _teapot(request: Request[Any, Any, Any], exc: Exception) -> Response[str]:
    return Response(f"teapot: {exc}", status_code=418, headers={"X-Handled": "yes"})


async def test_the_apps_own_exception_handler_and_hooks_still_run(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    hooked: list[str] = []

    async def own_hook(exc: Exception, scope: Any) -> None:
        hooked.append(scope["path"])

    async def response(plugin: ErrlinkPlugin | None) -> tuple[int, bytes, str | None]:
        options = {"exception_handlers": {LookupError: _teapot}, "after_exception": [own_hook]}
        async with serving(plugin, **options) as base, session.get(f"{base}/orders/7") as reply:
            return reply.status, await reply.read(), reply.headers.get("X-Handled")

    plain = await response(None)
    assert plain == (418, b"teapot: no order 7", "yes")
    assert await response(ErrlinkPlugin(collector.dsn)) == plain
    assert hooked == ["/orders/7", "/orders/7"]
    [event] = await collector.wait_for_events(1, EVENT_TIMEOUT)
    assert newest_exception(event)["value"] == "no order 7"
    assert mechanism(event) == ("litestar", False)
    assert event["transaction"] == "/orders/{order_id}"


def _failing_middleware(app: Any) -> Any:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/ok":
            errlink.set_tag("middleware", "yes")
            raise ConnectionError("cache down")
        await app(scope, receive, send)

    return middleware


async def test_an_error_in_the_apps_middleware_is_reported_once(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    # It escapes to errlink's middleware, then reaches Litestar's outermost exception handler.
    plugin = ErrlinkPlugin(collector.dsn)
    async with serving(plugin, middleware=[_failing_middleware]) as base:
        assert (await fetch(session, "GET", f"{base}/ok"))[0] == 500
        [event] = await collector.wait_for_events(1, EVENT_TIMEOUT)
        client = plugin.client
        assert client is not None
    assert client.stats.captured == 1

    assert newest_exception(event)["value"] == "cache down"
    assert event["tags"] == {"middleware": "yes"}
    assert event["transaction"] == "/ok"


async def test_the_transaction_includes_the_routers_prefix(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    @get("/orders/{order_id:str}")
    async def nested_order(request: Request[Any, Any, Any]) -> str:
        raise LookupError(f"no order {request.path_params['order_id']}")

    api = Router("/api/v2", route_handlers=[nested_order])
    async with serving(ErrlinkPlugin(collector.dsn), route_handlers=[api]) as base:
        assert (await fetch(session, "GET", f"{base}/api/v2/orders/x9"))[0] == 500
        [event] = await collector.wait_for_events(1, EVENT_TIMEOUT)
    assert event["transaction"] == "/api/v2/orders/{order_id}"
    assert event["request"]["url"] == f"{base}/api/v2/orders/x9"


def test_without_a_path_template_the_transaction_is_the_handler() -> None:
    # Litestar before 2.11 puts only the route handler in the scope.
    plugin = ErrlinkPlugin("")
    assert plugin.name_transaction({"type": "http", "route_handler": spawn}) == (
        "test_litestar.spawn"
    )
    assert plugin.name_transaction({"type": "http"}) is None


def test_bad_options_fail_where_the_plugin_is_created() -> None:
    with pytest.raises(TypeError, match="capture_status_codes"):
        ErrlinkPlugin("", capture_status_codes=404)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="capture_status_codes"):
        ErrlinkPlugin("", capture_status_codes={99})
    with pytest.raises(TypeError, match="enviroment"):
        ErrlinkPlugin("", enviroment="prod")  # type: ignore[call-arg]


def test_one_plugin_serves_one_app() -> None:
    plugin = ErrlinkPlugin("")
    Litestar(plugins=[plugin], logging_config=None, openapi_config=None)
    with pytest.raises(RuntimeError, match="already serves"):
        Litestar(plugins=[plugin], logging_config=None, openapi_config=None)


async def test_an_app_served_again_gets_a_new_client(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    # As with one `TestClient` block after another: each run has its own loop and lifespan.
    plugin = ErrlinkPlugin(collector.dsn)
    app = litestar_app(State(asyncio.Barrier(1)), plugins=[plugin])
    clients = []
    for run in (1, 2):
        async with uvicorn_serving(app) as base:
            clients.append(plugin.client)
            assert (await fetch(session, "GET", f"{base}/orders/{run}"))[0] == 500
        await collector.wait_for_events(run, EVENT_TIMEOUT)

    first, second = clients
    assert first is not second
    assert first is not None
    assert second is not None
    assert not second.enabled
    values = [newest_exception(event)["value"] for event in collector.events()]
    assert values == ["no order 1", "no order 2"]
