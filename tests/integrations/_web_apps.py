"""The same tiny app in Flask, Django, Sanic, Tornado and aiohttp.web, served for real on 127.0.0.1.

Every app has the same routes:

- ``GET /ok``: 200 "fine";
- ``GET|POST /boom``: tags the scope (``handler=boom``), then `fail_in_app` raises, without
  reading the request body;
- ``POST /echo``: reads the JSON body, then raises ``RuntimeError("cannot order <item>")``;
- ``GET /orders/<id>``: a path parameter; raises ``LookupError("no order <id>")``;
- ``GET /handled``: reports a caught error itself and answers ``{"event_id": ...}``;
- ``GET /forbidden`` (403) and ``GET /unavailable`` (503), the framework's own way;
- ``GET /moved``: a redirect to /ok; ``/missing`` matches no route (404);
- ``GET /work?n=<n>``: tag, extra and user id from ``n``, waits at `State.barrier` until all
  concurrent requests are in flight, then raises ``RuntimeError("request <n> failed")``;
- ``GET /spawn`` (async frameworks only): starts a task that fails and that nothing awaits;
- ``GET /tag`` and ``GET /report``: the first leaves a tag, a user and a breadcrumb in its scope,
  the second reports a message; both note their connection in `State.connections`.

`serve(framework, dsn, **options)` runs one on the test's loop (Sanic, Tornado, aiohttp) or in a
thread (Flask, Django: werkzeug's threaded WSGI server) and yields a `Served`. ``dsn=None``
serves the same app without errlink.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import threading
import uuid
import warnings
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, ExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from _async_web_helpers import CONCURRENT_REQUESTS, EVENT_TIMEOUT, free_socket, meet
from tornado.web import Application, HTTPError, RequestHandler

import errlink
from tests.integrations._raw_http import serve_wsgi


@dataclass
class State:
    """What the handlers share with the test."""

    barrier: Any  # threading.Barrier (WSGI) or asyncio.Barrier, of CONCURRENT_REQUESTS parties
    connections: list[object] = field(default_factory=list)


@dataclass
class Served:
    base: str  # "http://127.0.0.1:<port>"
    client: Any  # the errlink client reporting for the app (None without errlink)
    app_name: str  # what a transaction name may include (Sanic's app name), else ""
    state: State


def fail_in_app(why: str) -> None:
    raise ValueError(f"boom: {why}")


def start_unawaited_task() -> None:
    """`/spawn` of the async apps: tags the scope, then starts a task that fails, and that
    nothing awaits."""
    errlink.set_tag("handler", "spawn")

    async def fail_later() -> None:
        await asyncio.sleep(0)
        raise LookupError("nobody awaited me")

    asyncio.get_running_loop().create_task(fail_later())


# -- Flask -------------------------------------------------------------------------------------


def flask_app(state: State) -> Any:
    from flask import Flask, abort, jsonify, redirect, request

    app = Flask(__name__)

    @app.get("/ok")
    def ok() -> str:
        return "fine"

    @app.route("/boom", methods=["GET", "POST"])
    def boom() -> str:
        errlink.set_tag("handler", "boom")
        fail_in_app(request.args.get("why", "no reason"))
        return "unreachable"

    @app.post("/echo")
    def echo() -> str:
        raise RuntimeError(f"cannot order {request.get_json()['item']}")

    @app.get("/orders/<int:order_id>")
    def order(order_id: int) -> str:
        raise LookupError(f"no order {order_id}")

    @app.get("/handled")
    def handled() -> Any:
        errlink.set_tag("handler", "handled")
        try:
            fail_in_app("caught")
        except ValueError:
            event_id = errlink.capture_exception()
        return jsonify({"event_id": event_id})

    @app.get("/forbidden")
    def forbidden() -> str:
        abort(403)

    @app.get("/unavailable")
    def unavailable() -> str:
        abort(503)

    @app.get("/moved")
    def moved() -> Any:
        return redirect("/ok")

    @app.get("/work")
    def work() -> str:
        n = int(request.args["n"])
        errlink.set_tag("n", n)
        errlink.set_extra("n", n)
        errlink.set_user({"id": f"user-{n}"})
        state.barrier.wait(EVENT_TIMEOUT)  # all requests are in flight, each with its own tags
        raise RuntimeError(f"request {n} failed")

    @app.get("/tag")
    def tag() -> str:
        state.connections.append(request.environ["werkzeug.socket"])
        leave_traces()
        return "tagged"

    @app.get("/report")
    def report() -> str:
        state.connections.append(request.environ["werkzeug.socket"])
        errlink.capture_message("second request")
        return "reported"

    return app


def leave_traces() -> None:
    """What a request must not pass on to the next one."""
    errlink.set_tag("leftover", "yes")
    errlink.set_user({"id": "1"})
    errlink.add_breadcrumb("left by /tag", category="leftover")


@asynccontextmanager
async def serve_flask(dsn: str | None, **options: Any) -> AsyncIterator[Served]:
    from errlink.integrations.flask import Errlink

    state = State(threading.Barrier(CONCURRENT_REQUESTS))
    app = flask_app(state)
    client = None
    if dsn is not None:
        Errlink(app, dsn=dsn, **options)
        client = Errlink.client_for(app)
    try:
        async with _wsgi_server(app) as base:
            yield Served(base, client, "", state)
    finally:
        if client is not None:
            # The app's client became the process default: close both off the loop, which the
            # collector needs to receive what is still on its way.
            await asyncio.to_thread(client.close, 5)
            await asyncio.to_thread(errlink.close, 5)


@asynccontextmanager
async def _wsgi_server(app: Any) -> AsyncIterator[str]:
    server, thread = serve_wsgi(app)
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        await asyncio.to_thread(server.shutdown)
        await asyncio.to_thread(thread.join, EVENT_TIMEOUT)
        server.server_close()


# -- Django ------------------------------------------------------------------------------------


def django_urlconf(state: State) -> type:
    """A URLconf (for ``settings.ROOT_URLCONF``) with the routes of this module."""
    from django.core.exceptions import PermissionDenied
    from django.http import (
        HttpRequest,
        HttpResponse,
        HttpResponseRedirect,
        JsonResponse,
    )
    from django.urls import path

    def ok(request: HttpRequest) -> HttpResponse:
        return HttpResponse("fine")

    def boom(request: HttpRequest) -> HttpResponse:
        errlink.set_tag("handler", "boom")
        fail_in_app(request.GET.get("why", "no reason"))
        return HttpResponse("unreachable")

    def echo(request: HttpRequest) -> HttpResponse:
        raise RuntimeError(f"cannot order {json.loads(request.body)['item']}")

    def order(request: HttpRequest, order_id: int) -> HttpResponse:
        raise LookupError(f"no order {order_id}")

    def handled(request: HttpRequest) -> HttpResponse:
        errlink.set_tag("handler", "handled")
        try:
            fail_in_app("caught")
        except ValueError:
            event_id = errlink.capture_exception()
        return JsonResponse({"event_id": event_id})

    def forbidden(request: HttpRequest) -> HttpResponse:
        raise PermissionDenied("members only")

    def unavailable(request: HttpRequest) -> HttpResponse:
        return HttpResponse("down for maintenance", status=503)

    def moved(request: HttpRequest) -> HttpResponse:
        return HttpResponseRedirect("/ok")

    def work(request: HttpRequest) -> HttpResponse:
        n = int(request.GET["n"])
        errlink.set_tag("n", n)
        errlink.set_extra("n", n)
        errlink.set_user({"id": f"user-{n}"})
        state.barrier.wait(EVENT_TIMEOUT)
        raise RuntimeError(f"request {n} failed")

    def tag(request: HttpRequest) -> HttpResponse:
        state.connections.append(request.META["werkzeug.socket"])
        leave_traces()
        return HttpResponse("tagged")

    def report(request: HttpRequest) -> HttpResponse:
        state.connections.append(request.META["werkzeug.socket"])
        errlink.capture_message("second request")
        return HttpResponse("reported")

    views: list[tuple[str, Callable[..., HttpResponse]]] = [
        ("ok", ok),
        ("boom", boom),
        ("echo", echo),
        ("orders/<int:order_id>", order),
        ("handled", handled),
        ("forbidden", forbidden),
        ("unavailable", unavailable),
        ("moved", moved),
        ("work", work),
        ("tag", tag),
        ("report", report),
    ]
    patterns = [path(route, view, name=view.__name__) for route, view in views]
    return type("ContractUrls", (), {"urlpatterns": patterns})


@asynccontextmanager
async def serve_django(dsn: str | None, **options: Any) -> AsyncIterator[Served]:
    from _django_project import errlink_configured, errlink_off, setup_django

    await asyncio.to_thread(setup_django)  # migrates (once): not on the loop
    from django.core.handlers.wsgi import WSGIHandler
    from django.test.utils import override_settings

    state = State(threading.Barrier(CONCURRENT_REQUESTS))
    with ExitStack() as stack:
        try:
            stack.enter_context(override_settings(ROOT_URLCONF=django_urlconf(state)))
            if dsn is None:
                stack.enter_context(errlink_off())
                client = None
            else:
                client = stack.enter_context(errlink_configured(dsn=dsn, **options))
            async with _wsgi_server(WSGIHandler()) as base:
                yield Served(base, client, "", state)
        finally:
            # errlink_configured closes the client: off the loop, which the collector needs.
            await asyncio.to_thread(stack.close)


# -- Sanic -------------------------------------------------------------------------------------


def new_sanic_app(*, own_loop: bool = False) -> Any:
    from sanic import Sanic

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


def sanic_app(state: State, *, own_loop: bool = False) -> Any:
    from sanic import Request, response
    from sanic.exceptions import Forbidden, SanicException

    app = new_sanic_app(own_loop=own_loop)

    @app.get("/ok")
    async def ok(request: Request) -> response.HTTPResponse:
        return response.text("fine")

    @app.route("/boom", methods=["GET", "POST"])
    async def boom(request: Request) -> response.HTTPResponse:
        errlink.set_tag("handler", "boom")
        fail_in_app(request.args.get("why", "no reason"))
        return response.text("unreachable")

    @app.post("/echo")
    async def echo(request: Request) -> response.HTTPResponse:
        raise RuntimeError(f"cannot order {request.json['item']}")

    @app.get("/orders/<order_id:int>")
    async def order(request: Request, order_id: int) -> response.HTTPResponse:
        raise LookupError(f"no order {order_id}")

    @app.get("/handled")
    async def handled(request: Request) -> response.HTTPResponse:
        errlink.set_tag("handler", "handled")
        try:
            fail_in_app("caught")
        except ValueError:
            event_id = errlink.capture_exception()
        return response.json({"event_id": event_id})

    @app.get("/forbidden")
    async def forbidden(request: Request) -> response.HTTPResponse:
        raise Forbidden("members only")

    @app.get("/unavailable")
    async def unavailable(request: Request) -> response.HTTPResponse:
        raise SanicException("try later", status_code=503)

    @app.get("/moved")
    async def moved(request: Request) -> response.HTTPResponse:
        return response.redirect("/ok")

    @app.get("/work")
    async def work(request: Request) -> response.HTTPResponse:
        n = int(request.args["n"][0])
        errlink.set_tag("n", n)
        errlink.set_extra("n", n)
        errlink.set_user({"id": f"user-{n}"})
        await meet(state.barrier)
        raise RuntimeError(f"request {n} failed")

    @app.get("/tag")
    async def tag(request: Request) -> response.HTTPResponse:
        state.connections.append(request.conn_info)
        leave_traces()
        return response.text("tagged")

    @app.get("/report")
    async def report(request: Request) -> response.HTTPResponse:
        state.connections.append(request.conn_info)
        errlink.capture_message("second request")
        return response.text("reported")

    @app.get("/spawn")
    async def spawn(request: Request) -> response.HTTPResponse:
        start_unawaited_task()
        return response.text("spawned")

    return app


@asynccontextmanager
async def sanic_serving(app: Any) -> AsyncIterator[str]:
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


@asynccontextmanager
async def serve_sanic(dsn: str | None, **options: Any) -> AsyncIterator[Served]:
    from errlink.integrations.sanic import Errlink

    state = State(asyncio.Barrier(CONCURRENT_REQUESTS))
    app = sanic_app(state)
    ext = None if dsn is None else Errlink(app, dsn=dsn, **options)
    async with sanic_serving(app) as base:
        yield Served(base, None if ext is None else ext.client, app.name, state)


# -- Tornado -----------------------------------------------------------------------------------


def tornado_app(state: State) -> Application:
    handlers: list[tuple[str, type]] = [
        (r"/ok", OkHandler),
        (r"/boom", BoomHandler),
        (r"/echo", EchoHandler),
        (r"/orders/([0-9]+)", OrderHandler),
        (r"/handled", HandledHandler),
        (r"/forbidden", ForbiddenHandler),
        (r"/unavailable", UnavailableHandler),
        (r"/moved", MovedHandler),
        (r"/work", WorkHandler),
        (r"/tag", TagHandler),
        (r"/report", ReportHandler),
        (r"/spawn", SpawnHandler),
    ]
    return Application([(route, handler, {"state": state}) for route, handler in handlers])


# Tornado names a transaction after the handler class: the handlers are defined at module level.


class Handler(RequestHandler):
    def initialize(self, state: State) -> None:
        self.state = state


class OkHandler(Handler):
    def get(self) -> None:
        self.write("fine")


class BoomHandler(Handler):
    async def get(self) -> None:
        errlink.set_tag("handler", "boom")
        await asyncio.sleep(0)
        fail_in_app(self.get_argument("why", "no reason"))

    post = get


class EchoHandler(Handler):
    def post(self) -> None:
        raise RuntimeError(f"cannot order {json.loads(self.request.body)['item']}")


class OrderHandler(Handler):
    def get(self, order_id: str) -> None:
        raise LookupError(f"no order {order_id}")


class HandledHandler(Handler):
    def get(self) -> None:
        errlink.set_tag("handler", "handled")
        try:
            fail_in_app("caught")
        except ValueError:
            event_id = errlink.capture_exception()
        self.write({"event_id": event_id})


class ForbiddenHandler(Handler):
    def get(self) -> None:
        raise HTTPError(403)


class UnavailableHandler(Handler):
    def get(self) -> None:
        raise HTTPError(503)


class MovedHandler(Handler):
    def get(self) -> None:
        self.redirect("/ok")


class WorkHandler(Handler):
    async def get(self) -> None:
        n = int(self.get_argument("n"))
        errlink.set_tag("n", n)
        errlink.set_extra("n", n)
        errlink.set_user({"id": f"user-{n}"})
        await meet(self.state.barrier)
        raise RuntimeError(f"request {n} failed")


class TagHandler(Handler):
    def get(self) -> None:
        self.state.connections.append(self.request.connection.stream)  # type: ignore[union-attr]
        leave_traces()
        self.write("tagged")


class ReportHandler(Handler):
    def get(self) -> None:
        self.state.connections.append(self.request.connection.stream)  # type: ignore[union-attr]
        errlink.capture_message("second request")
        self.write("reported")


class SpawnHandler(Handler):
    def get(self) -> None:
        start_unawaited_task()
        self.write("spawned")


@asynccontextmanager
async def tornado_serving(app: Any) -> AsyncIterator[str]:
    from tornado.httpserver import HTTPServer
    from tornado.testing import bind_unused_port

    sock, port = bind_unused_port()
    server = HTTPServer(app)
    server.add_sockets([sock])
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        await server.close_all_connections()


@asynccontextmanager
async def serve_tornado(dsn: str | None, **options: Any) -> AsyncIterator[Served]:
    from errlink.integrations.tornado import Errlink

    state = State(asyncio.Barrier(CONCURRENT_REQUESTS))
    app = tornado_app(state)
    ext = None if dsn is None else Errlink(app, dsn=dsn, **options)
    try:
        async with tornado_serving(app) as base:
            yield Served(base, None if ext is None else ext.client, "", state)
    finally:
        if ext is not None:
            await ext.aclose()


# -- aiohttp.web -------------------------------------------------------------------------------


def aiohttp_app(state: State, **app_options: Any) -> Any:
    """`app_options` go to `web.Application` (`middlewares`, say)."""
    from aiohttp import web

    routes = web.RouteTableDef()

    @routes.get("/ok")
    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="fine")

    @routes.route("*", "/boom", name="boom")
    async def boom(request: web.Request) -> web.Response:
        errlink.set_tag("handler", "boom")
        await asyncio.sleep(0)
        fail_in_app(request.query.get("why", "no reason"))
        return web.Response(text="unreachable")

    @routes.post("/echo")
    async def echo(request: web.Request) -> web.Response:
        raise RuntimeError(f"cannot order {(await request.json())['item']}")

    @routes.get("/orders/{order_id}")
    async def order(request: web.Request) -> web.Response:
        raise LookupError(f"no order {request.match_info['order_id']}")

    @routes.get("/handled")
    async def handled(request: web.Request) -> web.Response:
        errlink.set_tag("handler", "handled")
        try:
            fail_in_app("caught")
        except ValueError:
            event_id = errlink.capture_exception()
        return web.json_response({"event_id": event_id})

    @routes.get("/forbidden")
    async def forbidden(request: web.Request) -> web.Response:
        raise web.HTTPForbidden(text="members only")

    @routes.get("/unavailable")
    async def unavailable(request: web.Request) -> web.Response:
        raise web.HTTPServiceUnavailable()

    @routes.get("/moved")
    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPFound("/ok")

    @routes.get("/work")
    async def work(request: web.Request) -> web.Response:
        n = int(request.query["n"])
        errlink.set_tag("n", n)
        errlink.set_extra("n", n)
        errlink.set_user({"id": f"user-{n}"})
        await meet(state.barrier)
        raise RuntimeError(f"request {n} failed")

    @routes.get("/tag")
    async def tag(request: web.Request) -> web.Response:
        state.connections.append(request.transport)
        leave_traces()
        return web.Response(text="tagged")

    @routes.get("/report")
    async def report(request: web.Request) -> web.Response:
        state.connections.append(request.transport)
        errlink.capture_message("second request")
        return web.Response(text="reported")

    @routes.get("/spawn")
    async def spawn(request: web.Request) -> web.Response:
        start_unawaited_task()
        return web.Response(text="spawned")

    app = web.Application(**app_options)
    app.add_routes(routes)
    return app


@asynccontextmanager
async def aiohttp_serving(app: Any) -> AsyncIterator[str]:
    """aiohttp's real server (AppRunner + SockSite) on 127.0.0.1; cleanup runs at exit."""
    from aiohttp import web

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


@asynccontextmanager
async def serve_aiohttp(dsn: str | None, **options: Any) -> AsyncIterator[Served]:
    from errlink.integrations.aiohttp import Errlink

    state = State(asyncio.Barrier(CONCURRENT_REQUESTS))
    app = aiohttp_app(state)
    ext = None if dsn is None else Errlink(app, dsn=dsn, **options)
    async with aiohttp_serving(app) as base:
        yield Served(base, None if ext is None else ext.client, "", state)


def _served_by(module: str, function: str) -> Callable[..., AbstractAsyncContextManager[Served]]:
    """`module.function` (a `serve_*` of the same shape, kept in a module of its own), imported
    when first used."""

    def serve(dsn: str | None, **options: Any) -> AbstractAsyncContextManager[Served]:
        served: Callable[..., AbstractAsyncContextManager[Served]]
        served = getattr(importlib.import_module(module), function)
        return served(dsn, **options)

    return serve


SERVERS: dict[str, Callable[..., AbstractAsyncContextManager[Served]]] = {
    "flask": serve_flask,
    "django": serve_django,
    "sanic": serve_sanic,
    "tornado": serve_tornado,
    "aiohttp": serve_aiohttp,
    "starlette": _served_by("_web_apps_starlette", "serve_starlette"),
    "fastapi": _served_by("_web_apps_starlette", "serve_fastapi"),
    "litestar": _served_by("_web_apps_litestar", "serve_litestar"),
    "quart": _served_by("_web_apps_quart", "serve_quart"),
}
