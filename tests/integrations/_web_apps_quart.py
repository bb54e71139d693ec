"""The web contract's app (`_web_apps`) in Quart, served by hypercorn on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from _asgi_serving import hypercorn_serving
from _async_web_helpers import CONCURRENT_REQUESTS, meet
from _web_apps import Served, State, fail_in_app, leave_traces

import errlink


def quart_app(state: State) -> Any:
    from quart import Quart, abort, redirect, request

    app = Quart(__name__)

    @app.get("/ok")
    async def ok() -> str:
        return "fine"

    @app.route("/boom", methods=["GET", "POST"])
    async def boom() -> str:
        errlink.set_tag("handler", "boom")
        fail_in_app(request.args.get("why", "no reason"))
        return "unreachable"

    @app.post("/echo")
    async def echo() -> str:
        raise RuntimeError(f"cannot order {(await request.get_json())['item']}")

    @app.get("/orders/<int:order_id>")
    async def order(order_id: int) -> str:
        raise LookupError(f"no order {order_id}")

    @app.get("/handled")
    async def handled() -> dict[str, Any]:
        errlink.set_tag("handler", "handled")
        try:
            fail_in_app("caught")
        except ValueError:
            event_id = errlink.capture_exception()
        return {"event_id": event_id}

    @app.get("/forbidden")
    async def forbidden() -> str:
        abort(403)

    @app.get("/unavailable")
    async def unavailable() -> str:
        abort(503)

    @app.get("/moved")
    async def moved() -> Any:
        return redirect("/ok")

    @app.get("/work")
    async def work() -> str:
        n = int(request.args["n"])
        errlink.set_tag("n", n)
        errlink.set_extra("n", n)
        errlink.set_user({"id": f"user-{n}"})
        await meet(state.barrier)
        raise RuntimeError(f"request {n} failed")

    # hypercorn hands every request of a connection the same client address tuple.
    @app.get("/tag")
    async def tag() -> str:
        state.connections.append(request.scope["client"])
        leave_traces()
        return "tagged"

    @app.get("/report")
    async def report() -> str:
        state.connections.append(request.scope["client"])
        errlink.capture_message("second request")
        return "reported"

    return app


@asynccontextmanager
async def serve_quart(dsn: str | None, **options: Any) -> AsyncIterator[Served]:
    """`dsn=None`: the app without errlink; ``""``: with a disabled client."""
    from errlink.integrations.quart import Errlink

    state = State(asyncio.Barrier(CONCURRENT_REQUESTS))
    app = quart_app(state)
    ext = None if dsn is None else Errlink(app, dsn=dsn, **options)
    async with hypercorn_serving(app) as base:
        yield Served(base, None if ext is None else ext.client, "", state)
