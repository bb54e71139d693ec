"""Release health, request mode: real apps under real servers count every request as a session.

Flask and Sanic (the acceptance case) serve 1,000 requests, 10 of which raise and 5 of which
report a handled error; the collector must then show 1,000 sessions for the release, 99.0%
crash-free, 5 errored and 10 crashed, and the raw ``sessions`` items it received must add up to
the same. The other frameworks serve a shorter run with the same shape.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from typing import Any

import aiohttp
import pytest
from _web_apps import SERVERS

from errlink.collector import Collector

# sanic-testing (which Sanic imports when it is installed) uses websockets' legacy client.
pytestmark = pytest.mark.filterwarnings("ignore:websockets.legacy is deprecated:DeprecationWarning")

RELEASE = "shop@2.0.0"


def _plan(total: int, crashing: int, handled: int) -> list[str]:
    paths = ["/boom"] * crashing + ["/handled"] * handled
    return paths + ["/ok"] * (total - len(paths))


async def _serve_requests(framework: str, dsn: str, paths: list[str]) -> None:
    async with (
        SERVERS[framework](dsn, release=RELEASE, environment="test") as served,
        aiohttp.ClientSession() as http,
    ):
        limit = asyncio.Semaphore(20)

        async def one(path: str) -> None:
            async with limit, http.get(served.base + path) as answer:
                await answer.read()
                assert answer.status == (500 if path == "/boom" else 200)

        await asyncio.gather(*(one(path) for path in paths))


def _get(collector: Collector, path: str) -> Any:
    with urllib.request.urlopen(collector.url + path) as answer:
        body = answer.read().decode()
    return json.loads(body) if path.startswith("/api/") else body


async def _release_row(collector: Collector) -> dict[str, Any]:
    releases = (await asyncio.to_thread(_get, collector, "/api/0/releases/"))["releases"]
    assert [r["release"] for r in releases] == [RELEASE]
    row: dict[str, Any] = releases[0]
    return row


def _raw_totals(collector: Collector) -> dict[str, int]:
    totals = {"exited": 0, "errored": 0, "crashed": 0, "abnormal": 0}
    raw = _get(collector, "/api/0/sessions/")
    assert raw["sessions"] == []  # request mode only: no per-process session
    for bucket in raw["aggregates"]:
        assert bucket["release"] == RELEASE
        assert bucket["environment"] == "test"
        for name in totals:
            totals[name] += bucket.get(name, 0)
    return totals


@pytest.fixture(autouse=True)
def _sanic_test_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    # Sanic rewrites some of its methods when an app starts; in test mode it rewrites the
    # originals each time, so that later tests in this process can start apps of their own.
    sanic = pytest.importorskip("sanic")
    monkeypatch.setattr(sanic.Sanic, "test_mode", True)


@pytest.mark.parametrize("framework", ["flask", "sanic"])
async def test_a_thousand_requests_give_the_release_its_crash_free_rate(
    framework: str, collector: Collector, no_default_client: None
) -> None:
    await _serve_requests(framework, collector.dsn, _plan(1000, crashing=10, handled=5))

    row = await _release_row(collector)
    assert row["sessions"] == 1000
    assert (row["errored"], row["crashed"], row["abnormal"]) == (5, 10, 0)
    assert row["crash_free_rate"] == pytest.approx(0.99)
    page = await asyncio.to_thread(_get, collector, "/releases/")
    assert "99.0%" in page
    assert RELEASE in page
    assert "1,000" in page
    totals = await asyncio.to_thread(_raw_totals, collector)
    assert totals == {"exited": 985, "errored": 5, "crashed": 10, "abnormal": 0}


@pytest.mark.parametrize("framework", ["django", "tornado", "aiohttp", "starlette"])
async def test_every_web_integration_counts_its_requests(
    framework: str, collector: Collector, no_default_client: None
) -> None:
    await _serve_requests(framework, collector.dsn, _plan(40, crashing=3, handled=2))

    row = await _release_row(collector)
    assert (row["sessions"], row["errored"], row["crashed"]) == (40, 2, 3)


async def test_without_a_release_no_session_is_sent(
    collector: Collector, no_default_client: None
) -> None:
    async with (
        SERVERS["aiohttp"](collector.dsn) as served,
        aiohttp.ClientSession() as http,
        http.get(served.base + "/handled") as answer,
    ):
        assert answer.status == 200
    await collector.wait_for_events(1)
    assert (await asyncio.to_thread(_get, collector, "/api/0/releases/"))["releases"] == []
