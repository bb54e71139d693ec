"""The async web integrations (Sanic, Tornado, aiohttp.web) report the failure of a task that a
request started and nothing awaited: once, with the request that started it."""

from __future__ import annotations

import aiohttp
import pytest
from _async_web_helpers import EVENT_TIMEOUT, fetch, mechanism, newest_exception
from _web_apps import SERVERS
from sanic import Sanic

from errlink.collector import Collector

pytestmark = pytest.mark.filterwarnings("ignore:websockets.legacy is deprecated:DeprecationWarning")


@pytest.mark.parametrize("framework", ["sanic", "tornado", "aiohttp"])
async def test_a_task_nobody_awaited_is_reported_once_with_its_request(
    framework: str,
    collector: Collector,
    session: aiohttp.ClientSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(Sanic, "test_mode", True)
    async with SERVERS[framework](collector.dsn) as served:
        assert await fetch(session, "GET", f"{served.base}/spawn") == (200, b"spawned")
        [event] = await collector.wait_for_events(1, EVENT_TIMEOUT)
        assert await served.client.flush(EVENT_TIMEOUT)
        assert served.client.stats.captured == 1

    assert mechanism(event) == ("asyncio", False)
    exception = newest_exception(event)
    assert (exception["type"], exception["value"]) == ("LookupError", "nobody awaited me")
    assert event["request"]["url"] == f"{served.base}/spawn"
    assert event["tags"] == {"handler": "spawn"}
