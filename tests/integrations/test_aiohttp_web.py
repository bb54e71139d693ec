"""The aiohttp.web integration, through aiohttp's real server on 127.0.0.1 and the collector.

What every web integration does (request data, status codes, bodies, personal data, scope
isolation) is tested once for all of them in `test_web_contract`; here is what is aiohttp's own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from _async_web_helpers import EVENT_TIMEOUT, fetch, in_app_functions, newest_exception
from _web_apps import State, aiohttp_app
from _web_apps import aiohttp_serving as serving
from aiohttp import web

import errlink
from errlink.collector import Collector
from errlink.integrations.aiohttp import Errlink


class OrderView(web.View):
    async def get(self) -> web.Response:
        raise LookupError(f"no order {self.request.match_info['id']}")


def build_app(*, with_subapp: bool = True) -> web.Application:
    """The shared app (`_web_apps`: /ok, /boom, ...), a class-based view and a sub-app."""
    app: web.Application = aiohttp_app(State(barrier=None))
    app.router.add_view("/order-views/{id}", OrderView)
    if with_subapp:
        admin = web.Application()

        async def purge(request: web.Request) -> web.Response:
            raise PermissionError("purge refused")

        admin.router.add_get("/purge", purge)
        app.add_subapp("/admin", admin)
    return app


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
    ext = Errlink(app, dsn=collector.dsn)  # goes first: it sees what `audit` raises
    assert Errlink.of(app) is ext
    async with serving(app) as base:
        assert (await fetch(session, "GET", f"{base}/ok", headers={"X-Audit": "broken"}))[0] == 500
        assert (await fetch(session, "GET", f"{base}/order-views/7"))[0] == 500
        assert (await fetch(session, "GET", f"{base}/admin/purge"))[0] == 500
        middleware, view, subapp = await collector.wait_for_events(3, EVENT_TIMEOUT)

    assert newest_exception(middleware)["type"] == "OSError"
    assert in_app_functions(middleware)[-1].endswith("audit")
    assert middleware["transaction"] == "_web_apps.aiohttp_app.<locals>.ok"
    assert view["transaction"] == "test_aiohttp_web.OrderView"
    assert newest_exception(view)["value"] == "no order 7"
    assert subapp["transaction"] == "test_aiohttp_web.build_app.<locals>.purge"
    assert subapp["request"]["url"] == f"{base}/admin/purge"


async def test_wiring_the_parts_by_hand(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    ext = Errlink(dsn=collector.dsn)
    app = aiohttp_app(State(barrier=None), middlewares=[ext.middleware])
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


@pytest.fixture(autouse=True)
def _no_default_client(monkeypatch: pytest.MonkeyPatch) -> None:
    # Module-level capture calls must reach the request's client: hide any process default
    # client another test module created (errlink.init at import time, say).
    monkeypatch.setattr(errlink._capture.binding, "_default_client", None)
