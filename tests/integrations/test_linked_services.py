"""Two errlink services on 127.0.0.1, one calling the other, both failing: one trace.

The front is an aiohttp.web app (errlink's aiohttp.web extension); each request it serves calls
the back, a Flask app (errlink's Flask extension), through an aiohttp `ClientSession`. errlink's
aiohttp client integration adds the trace headers because the back's URL is among the front's
`trace_propagation_targets`. The back fails, so the front fails too. errlink's collector
receives both events: the same trace id, and the back's parent span is the front's span.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from _async_web_helpers import EVENT_TIMEOUT, fetch, newest_exception
from _web_apps import aiohttp_serving

import errlink
from errlink._capture.scope import isolated_scope
from errlink._capture.trace import parse_baggage
from errlink.collector import Collector
from errlink.integrations import _libraries
from errlink.sync import Client
from tests.integrations._raw_http import serve_wsgi

UPSTREAM_TRACE = "5b8efff798038103d269b633813fc60c"
UPSTREAM_SPAN = "eee19b7ec3c1b174"


@pytest.fixture(autouse=True)
def _isolated() -> Iterator[None]:
    errlink.close(timeout=1)
    with isolated_scope():
        yield
    errlink.close(timeout=1)
    _libraries.disable_all()


@asynccontextmanager
async def serve_back(dsn: str) -> AsyncIterator[str]:
    """The Flask back: ``POST /charge`` fails. Yields its base URL."""
    from flask import Flask

    from errlink.integrations.flask import Errlink

    app = Flask("back")

    @app.post("/charge")
    def charge() -> str:
        raise RuntimeError("back: card processor unreachable")

    # A client of its own rather than the process default (which would also hook logging, and
    # so the front's server log, as if the two services were one process).
    client = Client(dsn, release="back@2", environment="linked")
    Errlink(app, client=client)
    server, thread = serve_wsgi(app)
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        await asyncio.to_thread(server.shutdown)
        await asyncio.to_thread(thread.join, EVENT_TIMEOUT)
        server.server_close()
        await asyncio.to_thread(client.close, 5)


@asynccontextmanager
async def serve_front(dsn: str, back: str, targets: list[str]) -> AsyncIterator[str]:
    """The aiohttp.web front: ``GET /checkout`` calls the back, and fails when it does."""
    from aiohttp import web

    from errlink.integrations.aiohttp import Errlink

    async def checkout(request: web.Request) -> web.Response:
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{back}/charge", json={"order": 7}) as answer,
        ):
            if answer.status >= 500:
                raise RuntimeError(f"front: payment failed ({answer.status})")
        return web.Response(text="paid")

    app = web.Application()
    app.router.add_get("/checkout", checkout)
    Errlink(
        app,
        dsn=dsn,
        release="front@1",
        environment="linked",
        trace_propagation_targets=targets,
    )
    async with aiohttp_serving(app) as base:
        yield base


def _by_service(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {newest_exception(event)["value"].split(":")[0]: event for event in events}


def _header(event: dict[str, Any], name: str) -> str | None:
    headers = event["request"]["headers"]
    pairs = headers.items() if isinstance(headers, dict) else headers
    found = [value for key, value in pairs if key.lower() == name]
    return str(found[0]) if found else None


@pytest.mark.parametrize("upstream", [False, True], ids=["front-starts", "front-continues"])
async def test_errors_of_two_linked_services_share_one_trace(
    upstream: bool, collector: Collector, session: aiohttp.ClientSession
) -> None:
    headers = {"sentry-trace": f"{UPSTREAM_TRACE}-{UPSTREAM_SPAN}-1"} if upstream else {}
    async with (
        serve_back(collector.dsn) as back,
        serve_front(collector.dsn, back, [re.escape(back)]) as front,
    ):
        status, _ = await fetch(session, "GET", f"{front}/checkout", headers=headers)
        assert status == 500
        events = _by_service(await collector.wait_for_events(2, EVENT_TIMEOUT))

    front_event, back_event = events["front"], events["back"]
    assert front_event["release"] == "front@1"
    assert back_event["release"] == "back@2"
    front_trace = front_event["contexts"]["trace"]
    back_trace = back_event["contexts"]["trace"]
    assert back_trace["trace_id"] == front_trace["trace_id"]
    assert back_trace["parent_span_id"] == front_trace["span_id"]
    assert back_trace["span_id"] != front_trace["span_id"]
    if upstream:
        assert front_trace["trace_id"] == UPSTREAM_TRACE
        assert front_trace["parent_span_id"] == UPSTREAM_SPAN
    else:
        assert "parent_span_id" not in front_trace
        # The front heads the trace: the back received the front's sampling context.
        baggage = _header(back_event, "baggage")
        assert baggage is not None
        dsc, _ = parse_baggage(baggage)
        assert dsc is not None
        assert (dsc["trace_id"], dsc["release"]) == (front_trace["trace_id"], "front@1")
    assert _header(back_event, "traceparent") == (
        f"00-{front_trace['trace_id']}-{front_trace['span_id']}-{'01' if upstream else '00'}"
    )


async def test_a_back_not_among_the_targets_gets_no_trace_headers(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    async with (
        serve_back(collector.dsn) as back,
        serve_front(collector.dsn, back, [r"^https://payments\.example\.com/"]) as front,
    ):
        status, _ = await fetch(session, "GET", f"{front}/checkout")
        assert status == 500
        events = _by_service(await collector.wait_for_events(2, EVENT_TIMEOUT))

    back_event = events["back"]
    for name in ("sentry-trace", "baggage", "traceparent"):
        assert _header(back_event, name) is None
    front_trace = events["front"]["contexts"]["trace"]
    back_trace = back_event["contexts"]["trace"]
    assert back_trace["trace_id"] != front_trace["trace_id"]
    assert "parent_span_id" not in back_trace
