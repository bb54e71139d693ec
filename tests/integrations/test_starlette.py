"""The Starlette and FastAPI integrations, under a real uvicorn on 127.0.0.1 and the collector.

What every web integration does (request data, status codes, bodies, personal data, scope
isolation) is tested once for all of them in `test_web_contract`; here is what is Starlette's and
FastAPI's own: transaction styles, mounts, middleware order, exception handlers, WebSockets,
dependencies, background tasks, validation errors, the lifespan flush and set-up errors.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import logging
import sys
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from _asgi_serving import uvicorn_serving
from _async_web_helpers import EVENT_TIMEOUT, fetch, mechanism, newest_exception
from _web_apps import State
from _web_apps_starlette import UVICORN, fastapi_app, starlette_app
from fastapi import BackgroundTasks, Depends, FastAPI
from fastapi import HTTPException as FastAPIHTTPException
from starlette.applications import Starlette
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket

import errlink
from errlink.collector import Collector
from errlink.integrations import fastapi as errlink_fastapi
from errlink.integrations import starlette as errlink_starlette
from errlink.integrations._framework import MissingFrameworkError


class TeapotError(Exception):
    """An application error the app answers itself, with no status code of its own."""


async def fail_later() -> None:
    await asyncio.sleep(0)
    raise LookupError("nobody awaited me")


def build_starlette(**app_options: Any) -> Starlette:
    """The shared app, a mounted sub-app and a WebSocket route."""
    app = starlette_app(State(barrier=None), **app_options)

    async def item(request: Request) -> Response:
        raise KeyError(f"no item {request.path_params['item_id']}")

    async def teapot(request: Request) -> Response:
        raise TeapotError("short and stout")

    async def live(websocket: WebSocket) -> None:
        await websocket.accept()
        errlink.set_tag("handler", "socket")
        raise RuntimeError("socket broke")

    app.router.routes += [
        Mount("/api", routes=[Route("/items/{item_id}", item)]),
        Route("/teapot", teapot),
        WebSocketRoute("/live", live),
    ]
    return app


def build_fastapi(**app_options: Any) -> FastAPI:
    """The shared app, plus routes with dependencies, background tasks and a WebSocket."""
    app = fastapi_app(State(barrier=None), **app_options)

    def current_user() -> str:
        raise PermissionError("no session store")

    def not_found() -> None:
        raise FastAPIHTTPException(404, "no such shop")

    def down() -> None:
        raise FastAPIHTTPException(503, "shop closed")

    @app.get("/me")
    async def me(user: str = Depends(current_user)) -> str:
        return user

    @app.get("/shops/{shop_id}", dependencies=[Depends(not_found)])
    async def shop(shop_id: int) -> str:
        return "never"

    @app.get("/closed", dependencies=[Depends(down)])
    async def closed() -> str:
        return "never"

    def send_receipt(order_id: int) -> None:
        raise ConnectionError(f"mail server down for order {order_id}")

    @app.post("/checkout")
    async def checkout(background_tasks: BackgroundTasks) -> dict[str, str]:
        background_tasks.add_task(send_receipt, 42)
        return {"status": "paid"}

    @app.get("/spawn")
    async def spawn() -> str:
        errlink.set_tag("handler", "spawn")
        asyncio.get_running_loop().create_task(fail_later())  # never awaited
        return "spawned"

    @app.get("/teapot")
    async def teapot() -> str:
        raise TeapotError("short and stout")

    @app.websocket("/live")
    async def live(websocket: WebSocket) -> None:
        await websocket.accept()
        errlink.set_tag("handler", "socket")
        raise RuntimeError("socket broke")

    return app


@asynccontextmanager
async def serving(
    app: Any, errlink_class: type[Any], dsn: str, **options: Any
) -> AsyncIterator[Any]:
    """`app` with errlink under uvicorn; yields ``(base URL, extension)``."""
    ext = errlink_class(app, dsn=dsn, **options)
    async with uvicorn_serving(app, **UVICORN) as base:
        yield base, ext


FRAMEWORKS: dict[str, tuple[Callable[..., Any], type[Any]]] = {
    "starlette": (build_starlette, errlink_starlette.Errlink),
    "fastapi": (build_fastapi, errlink_fastapi.Errlink),
}


@pytest.fixture(params=list(FRAMEWORKS))
def framework(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


def serve(framework: str, collector: Collector, **options: Any) -> Any:
    build, errlink_class = FRAMEWORKS[framework]
    app_options = options.pop("app_options", {})
    return serving(build(**app_options), errlink_class, collector.dsn, **options)


# -- both frameworks -------------------------------------------------------------------------


async def test_transaction_style_endpoint_names_the_endpoint(
    framework: str, collector: Collector, session: aiohttp.ClientSession
) -> None:
    async with serve(framework, collector, transaction_style="endpoint") as (base, _):
        assert (await fetch(session, "GET", f"{base}/orders/7"))[0] == 500
        assert (await fetch(session, "GET", f"{base}/missing"))[0] == 404
        assert (await fetch(session, "GET", f"{base}/handled"))[0] == 200
        order, handled = await collector.wait_for_events(2, EVENT_TIMEOUT)

    assert order["transaction"] == f"_web_apps_starlette.{framework}_app.<locals>.order"
    assert handled["transaction"] == f"_web_apps_starlette.{framework}_app.<locals>.handled"


async def test_a_websocket_handler_that_raises_is_reported(
    framework: str, collector: Collector, session: aiohttp.ClientSession
) -> None:
    async with serve(framework, collector) as (base, _):
        ws_base = base.replace("http", "ws")
        async with session.ws_connect(f"{ws_base}/live?room=7") as socket:
            message = await socket.receive(timeout=EVENT_TIMEOUT)
            assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        [event] = await collector.wait_for_events(1, EVENT_TIMEOUT)

    assert mechanism(event) == (framework, False)
    assert newest_exception(event)["value"] == "socket broke"
    assert event["request"]["url"] == f"{ws_base}/live"
    assert event["request"]["query_string"] == "room=7"
    assert event["transaction"] == "/live"
    assert event["tags"] == {"handler": "socket"}


async def test_a_user_exception_handler_runs_and_its_response_is_returned(
    framework: str, collector: Collector, session: aiohttp.ClientSession
) -> None:
    handler_threads: list[threading.Thread] = []

    async def teapot_page(request: Request, exc: Exception) -> Response:
        return JSONResponse({"brew": str(exc)}, status_code=418, headers={"X-Pot": "tea"})

    def unavailable_page(request: Request, exc: Exception) -> Response:  # sync: in a thread
        handler_threads.append(threading.current_thread())
        return PlainTextResponse(f"come back later ({request.url.path})", status_code=503)

    async def error_page(request: Request, exc: Exception) -> Response:
        return PlainTextResponse(f"sorry: {exc}", status_code=500)

    handlers = {TeapotError: teapot_page, 503: unavailable_page, Exception: error_page}
    async with serve(framework, collector, app_options={"exception_handlers": handlers}) as (
        base,
        ext,
    ):
        async with session.get(f"{base}/teapot") as reply:
            assert (reply.status, await reply.json()) == (418, {"brew": "short and stout"})
            assert reply.headers["X-Pot"] == "tea"
        assert ext.client.stats.captured == 0  # the app answered it: not an error
        assert await fetch(session, "GET", f"{base}/unavailable") == (
            503,
            b"come back later (/unavailable)",
        )
        assert await fetch(session, "GET", f"{base}/boom") == (500, b"sorry: boom: no reason")
        event, boom = await collector.wait_for_events(2, EVENT_TIMEOUT)

    assert newest_exception(boom)["value"] == "boom: no reason"  # reported, then answered
    assert mechanism(boom) == (framework, False)
    assert handler_threads
    assert handler_threads[0] is not threading.main_thread()
    assert mechanism(event) == (framework, False)
    assert (newest_exception(event)["type"], newest_exception(event)["value"]) == (
        "HTTPException",
        "503: try later",
    )
    assert event["transaction"] == "/unavailable"
    assert event["request"]["url"] == f"{base}/unavailable"


class Audit:
    """A plain ASGI middleware that names the user, and fails when asked to."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            errlink.set_user({"id": "audited"})
            if (b"x-audit", b"broken") in scope["headers"]:
                raise OSError("audit log full")
        await self.app(scope, receive, send)


async def test_middleware_added_after_errlink_still_runs_inside_it(
    framework: str, collector: Collector, session: aiohttp.ClientSession
) -> None:
    build, errlink_class = FRAMEWORKS[framework]
    app = build()
    errlink_class(app, dsn=collector.dsn)
    app.add_middleware(Audit)  # Starlette puts a later middleware outside the earlier ones
    async with uvicorn_serving(app, **UVICORN) as base:
        assert (await fetch(session, "GET", f"{base}/ok", headers={"X-Audit": "broken"}))[0] == 500
        assert (await fetch(session, "GET", f"{base}/boom"))[0] == 500
        audit, boom = await collector.wait_for_events(2, EVENT_TIMEOUT)

    assert newest_exception(audit)["value"] == "audit log full"
    assert mechanism(audit) == (framework, False)
    assert "transaction" not in audit  # failed before routing
    assert audit["user"] == {"id": "audited"}
    assert newest_exception(boom)["value"] == "boom: no reason"
    assert boom["user"] == {"id": "audited"}


async def test_the_lifespan_shutdown_flushes_the_client(
    framework: str, collector: Collector
) -> None:
    async with serve(framework, collector) as (_, ext):
        client = ext.client
        assert client is not None  # created at startup
        assert client.enabled
        await client.capture_message("said just before shutdown")
    # No waiting: uvicorn's shutdown ran the lifespan, which flushed the client before closing it.
    assert not client.enabled
    assert [event["logentry"]["formatted"] for event in collector.events()] == [
        "said just before shutdown"
    ]


async def test_setup_errors_are_clear(framework: str, collector: Collector) -> None:
    build, errlink_class = FRAMEWORKS[framework]
    with pytest.raises(ValueError, match="transaction_style"):
        errlink_class(build(), dsn=collector.dsn, transaction_style="path")
    with pytest.raises(TypeError, match="capture_status_codes"):
        errlink_class(build(), dsn=collector.dsn, capture_status_codes=500)
    with pytest.raises(TypeError, match="ErrlinkMiddleware"):
        errlink_class(object(), dsn=collector.dsn)
    app = build()
    errlink_class(app, dsn=collector.dsn)
    with pytest.raises(RuntimeError, match="already installed"):
        errlink_class(app, dsn=collector.dsn)
    started = build()
    started.middleware_stack = started.build_middleware_stack()  # what its first call does
    with pytest.raises(RuntimeError, match="before the app starts"):
        errlink_class(started, dsn=collector.dsn)


@pytest.mark.parametrize("name", ["starlette", "fastapi"])
def test_a_missing_framework_names_the_extra_to_install(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, name, None)  # what an import of a missing package finds
    monkeypatch.delitem(sys.modules, f"errlink.integrations.{name}")
    with pytest.raises(MissingFrameworkError, match=rf"pip install 'errlink\[{name}\]'"):
        importlib.import_module(f"errlink.integrations.{name}")


# -- Starlette -------------------------------------------------------------------------------


async def test_a_mounted_route_is_named_with_its_mount_path(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    async with serve("starlette", collector) as (base, _):
        assert (await fetch(session, "GET", f"{base}/api/items/3"))[0] == 500
        [event] = await collector.wait_for_events(1, EVENT_TIMEOUT)

    assert newest_exception(event)["value"] == "'no item 3'"
    assert event["transaction"] == "/api/items/{item_id}"
    assert event["request"]["url"] == f"{base}/api/items/3"


def test_before_starlette_1_the_route_is_found_by_its_endpoint(collector: Collector) -> None:
    app = build_starlette()
    ext = errlink_starlette.Errlink(app, dsn=collector.dsn)
    [mount] = [route for route in app.routes if isinstance(route, Mount)]
    [item] = mount.routes
    # Starlette before 1.0 puts the endpoint in the scope, not the route.
    scope = {"type": "http", "endpoint": getattr(item, "endpoint", None)}
    assert ext.name_transaction(scope) == "/api/items/{item_id}"
    assert ext.name_transaction({"type": "http"}) is None


class Opaque:
    """A middleware keeping the app it wraps where errlink cannot find it."""

    def __init__(self, app: Any) -> None:
        self._inner = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self._inner(scope, receive, send)


async def test_a_middleware_hiding_the_exception_middleware_only_costs_http_errors(
    collector: Collector, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="errlink")
    options = {"app_options": {"middleware": [Middleware(Opaque)]}}
    async with serve("starlette", collector, **options) as (base, ext):
        assert (await fetch(session, "GET", f"{base}/unavailable"))[0] == 503
        assert ext.client.stats.captured == 0  # its ExceptionMiddleware was out of reach
        assert (await fetch(session, "GET", f"{base}/boom"))[0] == 500
        [event] = await collector.wait_for_events(1, EVENT_TIMEOUT)

    assert newest_exception(event)["value"] == "boom: no reason"
    hidden = [r for r in caplog.records if "no ExceptionMiddleware" in r.getMessage()]
    assert len(hidden) == 1


# -- FastAPI ---------------------------------------------------------------------------------


async def test_errors_in_dependencies_follow_the_same_rules(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    async with serve("fastapi", collector) as (base, ext):
        assert (await fetch(session, "GET", f"{base}/me"))[0] == 500
        assert (await fetch(session, "GET", f"{base}/shops/1"))[0] == 404
        assert ext.client.stats.captured == 1  # the 404 the dependency raised is not reported
        assert (await fetch(session, "GET", f"{base}/closed"))[0] == 503
        me, closed = await collector.wait_for_events(2, EVENT_TIMEOUT)

    assert (newest_exception(me)["type"], newest_exception(me)["value"]) == (
        "PermissionError",
        "no session store",
    )
    assert mechanism(me) == ("fastapi", False)
    assert me["transaction"] == "/me"
    assert newest_exception(me)["stacktrace"]["frames"][-1]["function"] == (
        "build_fastapi.<locals>.current_user"
    )
    assert newest_exception(closed)["value"] == "503: shop closed"
    assert mechanism(closed) == ("fastapi", False)
    assert closed["transaction"] == "/closed"


async def test_a_failing_background_task_is_reported_once_after_a_200(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    async with serve("fastapi", collector) as (base, ext):
        assert await fetch(session, "POST", f"{base}/checkout") == (200, b'{"status":"paid"}')
        [event] = await collector.wait_for_events(1, EVENT_TIMEOUT)
        assert await ext.client.flush(EVENT_TIMEOUT)
        assert ext.client.stats.captured == 1
    assert len(collector.events()) == 1

    assert newest_exception(event)["value"] == "mail server down for order 42"
    assert mechanism(event) == ("fastapi", False)
    assert event["transaction"] == "/checkout"
    assert event["request"]["url"] == f"{base}/checkout"
    assert event["request"]["method"] == "POST"


async def test_a_task_nobody_awaited_is_reported_once_with_its_request(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    async with serve("fastapi", collector) as (base, ext):
        assert (await fetch(session, "GET", f"{base}/spawn"))[0] == 200
        [event] = await collector.wait_for_events(1, EVENT_TIMEOUT)
        gc.collect()  # asyncio now gives up on the task too: the same exception, no new event
        assert await ext.client.flush(EVENT_TIMEOUT)
        assert ext.client.stats.captured == 1

    assert mechanism(event) == ("asyncio", False)
    assert newest_exception(event)["value"] == "nobody awaited me"
    assert event["request"]["url"] == f"{base}/spawn"
    assert event["tags"] == {"handler": "spawn"}
    assert event["transaction"] == "/spawn"


async def test_validation_errors_follow_capture_status_codes_as_422(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    async with serve("fastapi", collector) as (base, ext):
        assert (await fetch(session, "POST", f"{base}/echo", json={"nope": 1}))[0] == 422
        assert ext.client.stats.captured == 0

    codes = {422, *range(500, 600)}
    async with serve("fastapi", collector, capture_status_codes=codes) as (base, ext):
        assert (await fetch(session, "POST", f"{base}/echo", json={"nope": 1}))[0] == 422
        assert (await fetch(session, "GET", f"{base}/boom"))[0] == 500
        invalid, boom = await collector.wait_for_events(2, EVENT_TIMEOUT)

    assert newest_exception(invalid)["type"] == "RequestValidationError"
    assert mechanism(invalid) == ("fastapi", False)
    assert invalid["transaction"] == "/echo"
    assert invalid["request"]["data"] == {"nope": 1}
    assert newest_exception(boom)["value"] == "boom: no reason"


async def test_http_exceptions_are_reported_from_the_configured_codes_only(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    async with serve("fastapi", collector) as (base, ext):
        assert (await fetch(session, "GET", f"{base}/shops/1"))[0] == 404
        assert (await fetch(session, "GET", f"{base}/forbidden"))[0] == 403
        assert ext.client.stats.captured == 0
        assert (await fetch(session, "GET", f"{base}/unavailable"))[0] == 503
        [event] = await collector.wait_for_events(1, EVENT_TIMEOUT)

    assert newest_exception(event)["value"] == "503: try later"
    assert "fastapi" in event["sdk"]["integrations"]


async def test_http_exceptions_of_a_mounted_sub_app_are_reported_too(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    # A mounted app answers its own HTTP exceptions, out of sight of the outer app's handlers.
    v2 = FastAPI()

    @v2.get("/orders/{order_id}")
    async def order(order_id: int) -> str:
        if order_id == 404:
            raise FastAPIHTTPException(404, "no such order")
        raise FastAPIHTTPException(502, f"ledger down for order {order_id}")

    inner = Starlette()
    v2.mount("/legacy", inner)

    async def legacy(request: Request) -> Response:
        raise StarletteHTTPException(500, "legacy store down")

    inner.router.routes.append(Route("/stock", legacy))
    app = build_fastapi()
    app.mount("/v2", v2)
    async with serving(app, errlink_fastapi.Errlink, collector.dsn) as (base, ext):
        assert (await fetch(session, "GET", f"{base}/v2/orders/404"))[0] == 404
        assert ext.client.stats.captured == 0
        assert (await fetch(session, "GET", f"{base}/v2/orders/7"))[0] == 502
        assert (await fetch(session, "GET", f"{base}/v2/legacy/stock"))[0] == 500
        events = await collector.wait_for_events(2, EVENT_TIMEOUT)

    by_value = {newest_exception(event)["value"]: event for event in events}
    assert set(by_value) == {"502: ledger down for order 7", "500: legacy store down"}
    order_event = by_value["502: ledger down for order 7"]
    assert order_event["transaction"] == "/v2/orders/{order_id}"
    assert order_event["request"]["url"] == f"{base}/v2/orders/7"
    assert by_value["500: legacy store down"]["transaction"] == "/v2/legacy/stock"
    assert ext.client.stats.captured == 2


def test_the_fastapi_extension_wants_a_fastapi_app(collector: Collector) -> None:
    with pytest.raises(TypeError, match=r"fastapi\.applications\.FastAPI app, not Starlette"):
        errlink_fastapi.Errlink(build_starlette(), dsn=collector.dsn)


async def test_the_client_outlives_the_apps_own_lifespan(collector: Collector) -> None:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await ext.client.capture_message("app starting")
        yield
        await ext.client.capture_message("app stopping")

    app = starlette_app(State(barrier=None), lifespan=lifespan)
    ext = errlink_starlette.Errlink(app, dsn=collector.dsn)
    async with uvicorn_serving(app, **UVICORN):
        pass
    assert sorted(event["logentry"]["formatted"] for event in collector.events()) == [
        "app starting",
        "app stopping",
    ]


async def test_sync_endpoints_reach_the_request_scope_from_their_thread(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    app = build_fastapi()

    @app.get("/sync", response_class=PlainTextResponse)
    def sync_note(request: Request) -> str:
        errlink.set_tag("thread", threading.current_thread().name)
        errlink.capture_message("from a worker thread")
        return "noted"

    async with serving(app, errlink_fastapi.Errlink, collector.dsn) as (base, ext):
        assert await fetch(session, "GET", f"{base}/sync?x=1") == (200, b"noted")
        assert await ext.client.flush(EVENT_TIMEOUT)
        [event] = collector.events()  # delivered while the server runs, not at its shutdown

    assert event["tags"]["thread"] != threading.main_thread().name
    assert event["request"]["url"] == f"{base}/sync"
    assert event["request"]["query_string"] == "x=1"
    assert event["transaction"] == "/sync"


async def test_calls_a_request_fans_out_in_child_tasks_are_in_its_event_only(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    # asyncio.gather runs each call in a task of its own: their breadcrumbs belong to the
    # request that started them, and to no other request in flight at the same time.
    app = build_fastapi()

    @app.get("/fan-out")
    async def fan_out(request: Request, n: int) -> str:
        base = str(request.base_url).rstrip("/")
        async with aiohttp.ClientSession() as calls:

            async def leg(name: str) -> None:
                async with calls.get(f"{base}/ok?leg={name}&n={n}") as response:
                    await response.read()

            await asyncio.gather(leg("a"), leg("b"))
        raise RuntimeError(f"fan-out {n} failed")

    async with serving(app, errlink_fastapi.Errlink, collector.dsn) as (base, _):
        statuses = await asyncio.gather(
            *(fetch(session, "GET", f"{base}/fan-out?n={n}") for n in range(8))
        )
        assert [status for status, _ in statuses] == [500] * 8
        events = await collector.wait_for_events(8, EVENT_TIMEOUT)

    for event in events:
        n = event["request"]["query_string"].removeprefix("n=")
        assert newest_exception(event)["value"] == f"fan-out {n} failed"
        crumbs = [c for c in event["breadcrumbs"]["values"] if c.get("type") == "http"]
        assert sorted(c["data"]["http.query"] for c in crumbs) == [f"leg=a&n={n}", f"leg=b&n={n}"]
