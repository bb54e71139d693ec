"""The generic ASGI middleware (`errlink.integrations.asgi`) under a real uvicorn: the client's
lifetime follows the lifespan, each connection gets its own scope, errors escaping the app and
tasks nobody awaited are reported, and a SIGTERM still delivers what was captured."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import signal
import sys
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from _asgi_serving import uvicorn_serving
from _async_web_helpers import (
    EVENT_TIMEOUT,
    SENSITIVE_HEADERS,
    assert_headers_scrubbed,
    fetch,
    free_socket,
    mechanism,
    newest_exception,
)

import errlink
from errlink.collector import Collector
from errlink.integrations.asgi import ErrlinkMiddleware, Receive, Scope, Send
from errlink.integrations.logging import EventHandler


def fail_in_app(why: str) -> None:
    raise ValueError(f"boom: {why}")


async def raw_app(scope: Scope, receive: Receive, send: Send) -> None:
    """A framework-free ASGI app: /ok, /boom (raises), /spawn (a task nobody awaits), /note
    (captures a message), and a WebSocket that raises once it has accepted."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        errlink.set_tag("handler", "socket")
        raise RuntimeError("socket broke")
    path = scope["path"]
    if path == "/boom":
        errlink.set_tag("handler", "boom")
        fail_in_app("disk full")
    if path == "/spawn":
        errlink.set_tag("handler", "spawn")
        asyncio.get_running_loop().create_task(_fail_later())
    if path == "/note":
        errlink.capture_message("noted")
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"fine"})


async def _fail_later() -> None:
    await asyncio.sleep(0)
    raise LookupError("nobody awaited me")


@asynccontextmanager
async def serving(collector: Collector, **config: Any) -> AsyncIterator[tuple[str, Any]]:
    app = ErrlinkMiddleware(raw_app, dsn=collector.dsn, environment="test")
    async with uvicorn_serving(app, **config) as base:
        yield base, app


async def test_the_client_lives_from_lifespan_startup_to_shutdown(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    async with serving(collector) as (base, middleware):
        client = middleware.client
        assert client is not None  # created at startup, before any request
        assert client.enabled
        assert await fetch(session, "GET", f"{base}/note") == (200, b"fine")
        # Not flushed by the test: leaving shuts uvicorn down, and the lifespan flushes.
    assert middleware.client is client
    assert not client.enabled
    [event] = await collector.wait_for_events(1, EVENT_TIMEOUT)
    assert event["logentry"]["formatted"] == "noted"
    assert event["request"]["url"] == f"{base}/note"
    assert event["environment"] == "test"
    assert "asgi" in event["sdk"]["integrations"]


async def test_without_a_lifespan_the_client_starts_at_the_first_request(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    async with serving(collector, lifespan="off") as (base, middleware):
        assert middleware.client is None
        assert (await fetch(session, "GET", f"{base}/boom"))[0] == 500
        [event] = await collector.wait_for_events(1, EVENT_TIMEOUT)
        assert middleware.client is not None
        await middleware.aclose()
    assert newest_exception(event)["value"] == "boom: disk full"


async def test_an_error_escaping_the_app_is_reported_with_its_request(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    async with serving(collector) as (base, _):
        status, _ = await fetch(
            session, "GET", f"{base}/boom?page=2&token=abc", headers=SENSITIVE_HEADERS
        )
        assert status == 500
        [event] = await collector.wait_for_events(1, EVENT_TIMEOUT)

    assert mechanism(event) == ("asgi", False)
    assert newest_exception(event)["value"] == "boom: disk full"
    assert newest_exception(event)["stacktrace"]["frames"][-1]["function"] == "fail_in_app"
    request = event["request"]
    assert request["url"] == f"{base}/boom"
    assert request["method"] == "GET"
    assert request["query_string"] == "page=2&token=%5BFiltered%5D"
    assert_headers_scrubbed(event)
    assert event["tags"] == {"handler": "boom"}
    assert "transaction" not in event  # nothing routed: no route to name it after
    for secret in ("top-secret-token", "key-123", "203.0.113.9", "sessionid"):
        text = json.dumps(event)
        assert secret not in text, text[max(0, text.index(secret) - 300) : text.index(secret) + 50]


async def test_a_websocket_that_raises_is_reported(collector: Collector) -> None:
    async with serving(collector) as (base, _), aiohttp.ClientSession() as session:
        async with session.ws_connect(f"{base.replace('http', 'ws')}/live?room=7") as socket:
            message = await socket.receive(timeout=EVENT_TIMEOUT)
            assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        [event] = await collector.wait_for_events(1, EVENT_TIMEOUT)

    assert mechanism(event) == ("asgi", False)
    assert newest_exception(event)["value"] == "socket broke"
    assert event["request"]["url"] == f"{base.replace('http', 'ws')}/live"
    assert event["request"]["query_string"] == "room=7"
    assert event["tags"] == {"handler": "socket"}


async def test_a_task_nobody_awaited_is_reported_once_with_the_request_that_started_it(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    # The logging handler sees asyncio's "never retrieved" line too, once the task is collected.
    handler = EventHandler(level=logging.ERROR)
    asyncio_logger = logging.getLogger("asyncio")
    asyncio_logger.addHandler(handler)
    try:
        async with serving(collector) as (base, middleware):
            assert await fetch(session, "GET", f"{base}/spawn") == (200, b"fine")
            [event] = await collector.wait_for_events(1, EVENT_TIMEOUT)
            gc.collect()  # asyncio now logs the task's exception: the same one, not a new event
            await errlink_flush(middleware)
            assert middleware.client.stats.captured == 1
    finally:
        asyncio_logger.removeHandler(handler)

    assert mechanism(event) == ("asyncio", False)
    assert newest_exception(event)["type"] == "LookupError"
    assert event["request"]["url"] == f"{base}/spawn"
    assert event["tags"] == {"handler": "spawn"}
    assert len(await collector.wait_for_events(1, EVENT_TIMEOUT)) == 1


async def errlink_flush(middleware: Any) -> None:
    assert await middleware.client.flush(EVENT_TIMEOUT)


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def test_asyncios_own_log_line_for_the_task_is_not_a_second_event(
    collector: Collector,
) -> None:
    async def fail() -> None:
        await asyncio.sleep(0)
        raise LookupError("nobody awaited me")

    # The usual set-up of an app with both: `init()` hooks logging for the process (its client
    # gets asyncio's log line), the web integration's AsyncClient watches the tasks.
    default = errlink.init(collector.dsn)
    seen = _Records()
    asyncio_logger = logging.getLogger("asyncio")
    asyncio_logger.addHandler(seen)
    client = errlink.AsyncClient(collector.dsn)
    try:
        asyncio.get_running_loop().create_task(fail())
        [event] = await collector.wait_for_events(1, EVENT_TIMEOUT)
        for _ in range(100):  # until asyncio logged the collected task's exception
            gc.collect()
            if seen.records:
                break
            await asyncio.sleep(0.01)
        [record] = seen.records
        assert record.getMessage().startswith("Task exception was never retrieved")
        assert await client.flush(EVENT_TIMEOUT)
        assert await asyncio.to_thread(default.flush, EVENT_TIMEOUT)
    finally:
        asyncio_logger.removeHandler(seen)
        await client.aclose()
        await asyncio.to_thread(errlink.close, EVENT_TIMEOUT)
    assert mechanism(event) == ("asyncio", False)
    assert default.stats.captured == 0  # the log line carried an exception already reported
    assert len(collector.events()) == 1


async def test_the_loops_exception_handler_is_chained_and_given_back(collector: Collector) -> None:
    loop = asyncio.get_running_loop()
    seen: list[dict[str, Any]] = []

    def previous(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        seen.append(context)

    loop.set_exception_handler(previous)
    try:
        async with errlink.AsyncClient(collector.dsn) as client:
            assert loop.get_exception_handler() is not previous
            failure = OSError("callback failed")
            loop.call_exception_handler({"message": "in a callback", "exception": failure})
            assert await client.flush(EVENT_TIMEOUT)
        assert loop.get_exception_handler() is previous  # restored on close
    finally:
        loop.set_exception_handler(None)

    assert [context["exception"] for context in seen] == [failure]  # the old handler still ran
    [event] = await collector.wait_for_events(1, EVENT_TIMEOUT)
    assert mechanism(event) == ("asyncio", False)
    assert newest_exception(event)["value"] == "callback failed"


async def test_awaited_and_gathered_task_errors_are_not_reported(collector: Collector) -> None:
    async def fail() -> None:
        await asyncio.sleep(0)
        raise KeyError("awaited")

    async with errlink.AsyncClient(collector.dsn) as client:
        with pytest.raises(KeyError):
            await asyncio.create_task(fail())
        results = await asyncio.gather(fail(), fail(), return_exceptions=True)
        assert [type(result) for result in results] == [KeyError, KeyError]
        done, _ = await asyncio.wait([asyncio.create_task(fail())])
        assert isinstance(done.pop().exception(), KeyError)
        await asyncio.sleep(0.2)  # past the grace period: a report would be captured by now
        captured = client.stats.captured
    assert captured == 0


SERVER = textwrap.dedent(
    """
    import sys
    import uvicorn
    import errlink
    from errlink.integrations.asgi import ErrlinkMiddleware

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.shutdown":
                    # Captured after the last request: only the lifespan's flush can deliver it.
                    # A module-level call: the lifespan is bound to the middleware's client.
                    errlink.capture_message("said at shutdown")
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        errlink.capture_message("captured in the last request")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    middleware = ErrlinkMiddleware(app, dsn=sys.argv[1])
    uvicorn.run(middleware, fd=int(sys.argv[2]), log_level="warning", lifespan="on")
    """
)


async def test_events_captured_just_before_sigterm_arrive(
    collector: Collector, tmp_path: Path
) -> None:
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    sock = free_socket()
    sock.listen()
    port = sock.getsockname()[1]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        collector.dsn,
        str(sock.fileno()),
        pass_fds=[sock.fileno()],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    try:
        async with aiohttp.ClientSession() as session:
            status, _ = await fetch(session, "GET", f"http://127.0.0.1:{port}/")
        assert status == 200
        process.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then raises the signal again to exit by it.
        assert await asyncio.wait_for(process.wait(), EVENT_TIMEOUT) in (0, -signal.SIGTERM)
    finally:
        sock.close()
        if process.returncode is None:
            process.kill()
            await process.wait()
    events = await collector.wait_for_events(2, EVENT_TIMEOUT)
    assert sorted(event["logentry"]["formatted"] for event in events) == [
        "captured in the last request",
        "said at shutdown",
    ]
