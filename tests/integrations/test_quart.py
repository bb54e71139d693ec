"""The Quart integration, through hypercorn on 127.0.0.1 and the collector.

What every web integration does (request data, status codes, bodies, personal data, scope
isolation) is tested once for all of them in `test_web_contract`; here is what is Quart's own.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from _asgi_serving import hypercorn_serving
from _async_web_helpers import EVENT_TIMEOUT, fetch, mechanism, newest_exception
from _web_apps import State
from _web_apps_quart import quart_app
from hypercorn.utils import LifespanFailureError
from quart import Quart, websocket

import errlink
from errlink import AsyncClient
from errlink.collector import Collector
from errlink.integrations.quart import Errlink

TASKS: set[asyncio.Task[None]] = set()


def build_app(failing: asyncio.Event | None = None) -> Quart:
    """The contract's app (`_web_apps_quart`) plus a WebSocket, a task nobody awaits, a
    background task, a note, a streamed response that fails, and /early, which sets `failing`
    and raises without reading the request body."""
    app: Quart = quart_app(State(barrier=None))

    @app.websocket("/live/<room>")
    async def live(room: str) -> None:
        await websocket.accept()
        errlink.set_tag("handler", "live")
        await websocket.send(f"joined {room}")
        raise RuntimeError(f"socket broke in room {room}")

    @app.get("/spawn")
    async def spawn() -> str:
        errlink.set_tag("handler", "spawn")
        # Kept from the garbage collector only until the test collects it: nobody awaits it.
        TASKS.add(asyncio.create_task(fail_later("nobody awaited me")))
        return "spawned"

    @app.get("/background")
    async def background() -> str:
        errlink.set_tag("handler", "background")
        app.add_background_task(fail_later, "background work failed")
        return "queued"

    @app.get("/note")
    async def note() -> str:
        errlink.capture_message("noted")
        return "noted"

    @app.get("/stream")
    async def stream() -> Any:
        errlink.set_tag("handler", "stream")

        async def chunks() -> AsyncIterator[bytes]:
            yield b"first chunk"
            raise OSError("lost the file mid-stream")

        return chunks()

    @app.post("/early")
    async def early() -> str:
        assert failing is not None
        failing.set()
        raise PermissionError("refused before the body arrived")

    return app


def client_of(ext: Errlink) -> AsyncClient:
    client = ext.client
    assert client is not None
    return client


async def fail_later(why: str) -> None:
    await asyncio.sleep(0)
    raise LookupError(why)


async def test_a_websocket_handler_that_raises_is_reported(collector: Collector) -> None:
    app = build_app()
    Errlink(app, dsn=collector.dsn)
    async with hypercorn_serving(app) as base, aiohttp.ClientSession() as session:
        url = f"{base.replace('http', 'ws')}/live/7?lang=en"
        async with session.ws_connect(url) as socket:
            assert (await socket.receive_str(timeout=EVENT_TIMEOUT)) == "joined 7"
            message = await socket.receive(timeout=EVENT_TIMEOUT)
            assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        [event] = await collector.wait_for_events(1, EVENT_TIMEOUT)

    assert mechanism(event) == ("quart", False)
    assert newest_exception(event)["value"] == "socket broke in room 7"
    assert event["request"]["url"] == f"{base.replace('http', 'ws')}/live/7"
    assert event["request"]["query_string"] == "lang=en"
    assert event["tags"] == {"handler": "live"}
    assert event["transaction"] == "live"


async def test_a_task_nobody_awaited_is_reported_once_with_its_request(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    app = build_app()
    ext = Errlink(app, dsn=collector.dsn)
    async with hypercorn_serving(app) as base:
        assert await fetch(session, "GET", f"{base}/spawn") == (200, b"spawned")
        [event] = await collector.wait_for_events(1, EVENT_TIMEOUT)
        TASKS.clear()
        gc.collect()  # asyncio now logs the task's exception: the same one, not a new event
    # Left: the lifespan flushed everything captured.
    assert client_of(ext).stats.captured == 1
    assert len(collector.events()) == 1

    assert mechanism(event) == ("asyncio", False)
    assert newest_exception(event)["value"] == "nobody awaited me"
    assert event["request"]["url"] == f"{base}/spawn"
    assert event["tags"] == {"handler": "spawn"}
    assert event["transaction"] == "spawn"


async def test_a_background_task_that_raises_is_reported_once(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    app = build_app()
    ext = Errlink(app, dsn=collector.dsn)
    async with hypercorn_serving(app) as base:
        assert await fetch(session, "GET", f"{base}/background") == (200, b"queued")
        [event] = await collector.wait_for_events(1, EVENT_TIMEOUT)
    # Quart waits for its background tasks at shutdown, before the lifespan flushes.
    assert client_of(ext).stats.captured == 1
    assert len(collector.events()) == 1

    assert mechanism(event) == ("quart", False)
    assert newest_exception(event)["value"] == "background work failed"
    assert event["request"]["url"] == f"{base}/background"
    assert event["tags"] == {"handler": "background"}
    assert event["transaction"] == "background"


async def test_a_body_still_arriving_when_the_handler_fails_is_waited_for(
    collector: Collector,
) -> None:
    failing = asyncio.Event()
    app = build_app(failing)
    Errlink(app, dsn=collector.dsn)
    body = b"note=late&password=hunter2"
    async with hypercorn_serving(app) as base:
        reader, writer = await asyncio.open_connection("127.0.0.1", int(base.rsplit(":", 1)[1]))
        writer.write(
            b"POST /early HTTP/1.1\r\nHost: shop\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)
        )
        await writer.drain()
        await asyncio.wait_for(failing.wait(), EVENT_TIMEOUT)
        writer.write(body)  # while the error is being reported
        await writer.drain()
        assert (await reader.readline()).startswith(b"HTTP/1.1 500")
        writer.close()
        [event] = await collector.wait_for_events(1, EVENT_TIMEOUT)

    assert newest_exception(event)["value"] == "refused before the body arrived"
    assert event["request"]["data"] == {"note": "late", "password": "[Filtered]"}


async def test_what_is_captured_before_shutdown_arrives(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    app = build_app()

    @app.after_serving
    async def release_resources() -> None:
        raise OSError("could not release the pool")

    ext = Errlink(app, dsn=collector.dsn)
    with pytest.raises(LifespanFailureError):  # hypercorn's answer to the failed shutdown
        async with hypercorn_serving(app) as base:
            assert await fetch(session, "GET", f"{base}/note") == (200, b"noted")
            # No waiting: leaving shuts the server down, and the lifespan flushes.
    assert not client_of(ext).enabled

    note, shutdown = collector.events()  # already there: nothing to wait for
    assert note["logentry"]["formatted"] == "noted"
    assert note["request"]["url"] == f"{base}/note"
    assert note["transaction"] == "note"
    assert mechanism(shutdown) == ("quart", False)
    assert newest_exception(shutdown)["value"] == "could not release the pool"
    assert "request" not in shutdown


async def test_transaction_style_url_names_events_after_the_url_rule(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    app = build_app()
    Errlink(app, dsn=collector.dsn, transaction_style="url")
    async with hypercorn_serving(app) as base:
        assert (await fetch(session, "GET", f"{base}/orders/7"))[0] == 500
        [order] = await collector.wait_for_events(1, EVENT_TIMEOUT)
        assert (await fetch(session, "GET", f"{base}/handled"))[0] == 200
        handled = (await collector.wait_for_events(2, EVENT_TIMEOUT))[-1]

    assert order["transaction"] == "/orders/<int:order_id>"
    assert handled["transaction"] == "/handled"


async def test_propagated_errors_are_reported_once(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    app = build_app()
    app.config["PROPAGATE_EXCEPTIONS"] = True  # Quart re-raises to the server after its signal
    ext = Errlink(app, dsn=collector.dsn)
    async with hypercorn_serving(app) as base:
        assert (await fetch(session, "GET", f"{base}/orders/7"))[0] == 500
        [event] = await collector.wait_for_events(1, EVENT_TIMEOUT)
    assert client_of(ext).stats.captured == 1
    assert len(collector.events()) == 1
    assert mechanism(event) == ("quart", False)
    assert event["transaction"] == "order"


async def test_an_error_while_streaming_escapes_quart_and_is_reported(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    app = build_app()
    Errlink(app, dsn=collector.dsn)
    async with hypercorn_serving(app) as base:
        with pytest.raises(aiohttp.ClientPayloadError):  # the response was cut short
            await fetch(session, "GET", f"{base}/stream?page=2")
        [event] = await collector.wait_for_events(1, EVENT_TIMEOUT)

    assert mechanism(event) == ("quart", False)
    assert newest_exception(event)["value"] == "lost the file mid-stream"
    assert event["request"]["url"] == f"{base}/stream"
    assert event["request"]["query_string"] == "page=2"
    # Reported where it escaped Quart: outside the handler's context.
    assert "transaction" not in event
    assert "tags" not in event


def test_setup_errors_are_clear() -> None:
    with pytest.raises(ValueError, match="'transaction_style' must be 'endpoint' or 'url'"):
        Errlink(dsn="", transaction_style="path")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="capture_status_codes"):
        Errlink(dsn="", capture_status_codes=500)  # type: ignore[arg-type]
    app = Quart(__name__)
    ext = Errlink(dsn="")
    ext.init_app(app)
    assert Errlink.of(app) is ext
    assert Errlink.of(Quart(__name__)) is None
    with pytest.raises(RuntimeError, match="already set up"):
        Errlink(app, dsn="")
    with pytest.raises(RuntimeError, match="already serves"):
        ext.init_app(Quart(__name__))
