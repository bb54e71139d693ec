"""The contract's app (see `_web_apps`) in Litestar, served by uvicorn on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from _asgi_serving import uvicorn_serving
from _async_web_helpers import CONCURRENT_REQUESTS, meet
from _web_apps import Served, State, fail_in_app, leave_traces
from litestar import Litestar, Request, get, post, route
from litestar.exceptions import PermissionDeniedException, ServiceUnavailableException
from litestar.response import Redirect

import errlink


def litestar_app(state: State, **app_options: Any) -> Litestar:
    """`app_options` go to `Litestar` (`plugins`, `middleware`, `on_shutdown`, ...)."""

    @get("/ok")
    async def ok() -> str:
        return "fine"

    @route("/boom", http_method=["GET", "POST"])
    async def boom(request: Request[Any, Any, Any]) -> str:
        errlink.set_tag("handler", "boom")
        fail_in_app(request.query_params.get("why", "no reason"))
        return "unreachable"

    @post("/echo")
    async def echo(request: Request[Any, Any, Any]) -> str:
        raise RuntimeError(f"cannot order {(await request.json())['item']}")

    @get("/orders/{order_id:int}")
    async def order(request: Request[Any, Any, Any]) -> str:
        raise LookupError(f"no order {request.path_params['order_id']}")

    @get("/handled")
    async def handled() -> dict[str, str | None]:
        errlink.set_tag("handler", "handled")
        try:
            fail_in_app("caught")
        except ValueError:
            event_id = errlink.capture_exception()
        return {"event_id": event_id}

    @get("/forbidden")
    async def forbidden() -> str:
        raise PermissionDeniedException("members only")

    @get("/unavailable")
    async def unavailable() -> str:
        raise ServiceUnavailableException("try later")

    @get("/moved")
    async def moved() -> Redirect:
        return Redirect("/ok")

    @get("/work")
    async def work(request: Request[Any, Any, Any]) -> str:
        n = int(request.query_params["n"])
        errlink.set_tag("n", n)
        errlink.set_extra("n", n)
        errlink.set_user({"id": f"user-{n}"})
        await meet(state.barrier)
        raise RuntimeError(f"request {n} failed")

    # uvicorn gives every request of a connection the same `client` tuple: it tells connections
    # apart by identity, as the other apps' transports do.
    @get("/tag")
    async def tag(request: Request[Any, Any, Any]) -> str:
        state.connections.append(request.scope["client"])
        leave_traces()
        return "tagged"

    @get("/report")
    async def report(request: Request[Any, Any, Any]) -> str:
        state.connections.append(request.scope["client"])
        errlink.capture_message("second request")
        return "reported"

    handlers = [ok, boom, echo, order, handled, forbidden, unavailable, moved, work, tag, report]
    routes = [*handlers, *app_options.pop("route_handlers", [])]
    # No logging config: Litestar's would reconfigure logging for the whole test process.
    options = {"logging_config": None, "openapi_config": None, **app_options}
    return Litestar(route_handlers=routes, **options)


@asynccontextmanager
async def serve_litestar(dsn: str | None, **options: Any) -> AsyncIterator[Served]:
    from errlink.integrations.litestar import ErrlinkPlugin

    state = State(asyncio.Barrier(CONCURRENT_REQUESTS))
    plugin = None if dsn is None else ErrlinkPlugin(dsn, **options)
    app = litestar_app(state, plugins=[] if plugin is None else [plugin])
    # No proxy headers: uvicorn would take the client address from X-Forwarded-For.
    async with uvicorn_serving(app, proxy_headers=False) as base:
        yield Served(base, None if plugin is None else plugin.client, "", state)
