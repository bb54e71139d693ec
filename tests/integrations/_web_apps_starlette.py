"""The shared web app (`_web_apps`: /ok, /boom, /echo, ...) in Starlette and in FastAPI, served by
uvicorn on 127.0.0.1 with the lifespan on.

`serve_starlette(dsn, **options)` and `serve_fastapi(dsn, **options)` yield a `Served`;
``dsn=None`` serves the same app without errlink. `starlette_app(state)` and `fastapi_app(state)`
build the bare apps, for tests that add routes of their own.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from _asgi_serving import uvicorn_serving
from _async_web_helpers import CONCURRENT_REQUESTS, meet
from _web_apps import Served, State, fail_in_app, leave_traces
from fastapi import FastAPI, Request
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request as StarletteRequest
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

import errlink

# uvicorn trusts X-Forwarded-For from 127.0.0.1 by default: the contract's client sends one, and
# expects the peer's address, as a server not behind a proxy reports it.
UVICORN = {"proxy_headers": False}

# -- Starlette ---------------------------------------------------------------------------------


def starlette_app(state: State, **app_options: Any) -> Starlette:
    """`app_options` go to `Starlette` (`middleware`, `exception_handlers`, ...)."""

    async def ok(request: StarletteRequest) -> Response:
        return PlainTextResponse("fine")

    async def boom(request: StarletteRequest) -> Response:
        errlink.set_tag("handler", "boom")
        fail_in_app(request.query_params.get("why", "no reason"))
        return PlainTextResponse("unreachable")

    async def echo(request: StarletteRequest) -> Response:
        raise RuntimeError(f"cannot order {(await request.json())['item']}")

    async def order(request: StarletteRequest) -> Response:
        raise LookupError(f"no order {request.path_params['order_id']}")

    async def handled(request: StarletteRequest) -> Response:
        errlink.set_tag("handler", "handled")
        try:
            fail_in_app("caught")
        except ValueError:
            event_id = errlink.capture_exception()
        return JSONResponse({"event_id": event_id})

    async def forbidden(request: StarletteRequest) -> Response:
        raise HTTPException(403, "members only")

    async def unavailable(request: StarletteRequest) -> Response:
        raise HTTPException(503, "try later")

    async def moved(request: StarletteRequest) -> Response:
        return RedirectResponse("/ok", status_code=302)

    async def work(request: StarletteRequest) -> Response:
        n = int(request.query_params["n"])
        errlink.set_tag("n", n)
        errlink.set_extra("n", n)
        errlink.set_user({"id": f"user-{n}"})
        await meet(state.barrier)
        raise RuntimeError(f"request {n} failed")

    async def tag(request: StarletteRequest) -> Response:
        state.connections.append(request.scope["client"])  # one object per connection
        leave_traces()
        return PlainTextResponse("tagged")

    async def report(request: StarletteRequest) -> Response:
        state.connections.append(request.scope["client"])
        errlink.capture_message("second request")
        return PlainTextResponse("reported")

    routes = [
        Route("/ok", ok),
        Route("/boom", boom, methods=["GET", "POST"]),
        Route("/echo", echo, methods=["POST"]),
        Route("/orders/{order_id:int}", order),
        Route("/handled", handled),
        Route("/forbidden", forbidden),
        Route("/unavailable", unavailable),
        Route("/moved", moved),
        Route("/work", work),
        Route("/tag", tag),
        Route("/report", report),
    ]
    return Starlette(routes=routes, **app_options)


@asynccontextmanager
async def serve_starlette(dsn: str | None, **options: Any) -> AsyncIterator[Served]:
    from errlink.integrations.starlette import Errlink

    state = State(asyncio.Barrier(CONCURRENT_REQUESTS))
    app = starlette_app(state)
    ext = None if dsn is None else Errlink(app, dsn=dsn, **options)
    async with uvicorn_serving(app, **UVICORN) as base:
        yield Served(base, None if ext is None else ext.client, "", state)


# -- FastAPI -----------------------------------------------------------------------------------


class Order(BaseModel):  # at module level: FastAPI resolves the handlers' annotations here
    item: str


def fastapi_app(state: State, **app_options: Any) -> FastAPI:
    """`app_options` go to `FastAPI` (`exception_handlers`, ...)."""
    from fastapi import HTTPException

    app = FastAPI(**app_options)

    @app.get("/ok", response_class=PlainTextResponse)
    async def ok() -> str:
        return "fine"

    @app.api_route("/boom", methods=["GET", "POST"])
    async def boom(why: str = "no reason") -> str:
        errlink.set_tag("handler", "boom")
        fail_in_app(why)
        return "unreachable"

    @app.post("/echo")
    async def echo(order: Order) -> str:
        raise RuntimeError(f"cannot order {order.item}")

    @app.get("/orders/{order_id}")
    async def order(order_id: int) -> str:
        raise LookupError(f"no order {order_id}")

    @app.get("/handled")
    async def handled() -> dict[str, str | None]:
        errlink.set_tag("handler", "handled")
        try:
            fail_in_app("caught")
        except ValueError:
            event_id = errlink.capture_exception()
        return {"event_id": event_id}

    @app.get("/forbidden")
    async def forbidden() -> str:
        raise HTTPException(403, "members only")

    @app.get("/unavailable")
    async def unavailable() -> str:
        raise HTTPException(503, "try later")

    @app.get("/moved")
    async def moved() -> RedirectResponse:
        return RedirectResponse("/ok", status_code=302)

    @app.get("/work")
    async def work(n: int) -> str:
        errlink.set_tag("n", n)
        errlink.set_extra("n", n)
        errlink.set_user({"id": f"user-{n}"})
        await meet(state.barrier)
        raise RuntimeError(f"request {n} failed")

    @app.get("/tag", response_class=PlainTextResponse)
    async def tag(request: Request) -> str:
        state.connections.append(request.scope["client"])  # one object per connection
        leave_traces()
        return "tagged"

    @app.get("/report", response_class=PlainTextResponse)
    async def report(request: Request) -> str:
        state.connections.append(request.scope["client"])
        errlink.capture_message("second request")
        return "reported"

    return app


@asynccontextmanager
async def serve_fastapi(dsn: str | None, **options: Any) -> AsyncIterator[Served]:
    from errlink.integrations.fastapi import Errlink

    state = State(asyncio.Barrier(CONCURRENT_REQUESTS))
    app = fastapi_app(state)
    ext = None if dsn is None else Errlink(app, dsn=dsn, **options)
    async with uvicorn_serving(app, **UVICORN) as base:
        yield Served(base, None if ext is None else ext.client, "", state)
