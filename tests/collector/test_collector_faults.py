"""The collector misbehaving on purpose (`fail_rate`, `fail_status`, `delay_ms`, `retry_after`),
and errlink's client watched against it: retries, rate limits, accounting."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace

import aiohttp
import pytest

from errlink import AsyncClient
from errlink._delivery import ratelimit
from errlink._wire.dsn import Dsn
from errlink.collector import Collector, CollectorThread
from tests._support import FakeClock
from tests._support.collector import CollectorProcess


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


async def post_event(
    session: aiohttp.ClientSession, collector: Collector
) -> tuple[int, dict[str, str]]:
    dsn = Dsn.parse(collector.dsn)
    event = {"event_id": uuid.uuid4().hex, "message": "probe", "level": "error"}
    async with session.post(
        dsn.store_url,
        data=json.dumps(event).encode(),
        headers={"X-Sentry-Auth": dsn.auth_header(), "Content-Type": "application/json"},
    ) as response:
        await response.read()
        return response.status, dict(response.headers)


async def test_every_request_refused_with_the_chosen_status_and_nothing_stored(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    async with Collector(
        db_path=tmp_path / "f.db", fail_rate=1.0, fail_status=503, retry_after=7
    ) as collector:
        for _ in range(3):
            status, headers = await post_event(session, collector)
            assert status == 503
            assert headers["Retry-After"] == "7"
        assert collector.event_count() == 0
        assert collector.request_statuses == {503: 3}
        # Only ingestion misbehaves: the UI and the read API answer.
        for path in ("/", "/api/0/events/"):
            async with session.get(collector.url + path) as response:
                assert response.status == 200


async def test_429_tells_the_client_how_long_to_back_off(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    async with Collector(
        db_path=tmp_path / "f.db", fail_rate=1.0, fail_status=429, retry_after=2.5
    ) as collector:
        status, headers = await post_event(session, collector)
    assert status == 429
    assert headers["Retry-After"] == "3"
    assert headers["X-Sentry-Rate-Limits"].startswith("3::")


async def test_faults_switch_on_and_off_at_runtime(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    assert (await post_event(session, collector))[0] == 200
    collector.fail_rate = 1.0
    assert (await post_event(session, collector))[0] == 500
    collector.fail_status = 429
    assert (await post_event(session, collector))[0] == 429
    collector.set_faults(fail_rate=0.0)
    assert (await post_event(session, collector))[0] == 200
    collector.set_faults(fail_rate=1.0, fail_status=503)
    assert (await post_event(session, collector))[0] == 503
    collector.clear_faults()
    assert (await post_event(session, collector))[0] == 200
    assert collector.event_count() == 3
    assert collector.faults.active is False


def test_knobs_are_validated() -> None:
    for bad in (
        {"fail_rate": 1.5},
        {"fail_rate": -0.1},
        {"fail_status": 200},
        {"fail_status": 600},
        {"delay_ms": -1},
        {"retry_after": float("inf")},
        {"max_events": 0},
    ):
        with pytest.raises(ValueError, match=next(iter(bad))):
            Collector(**bad)  # type: ignore[arg-type]
    collector = Collector()
    with pytest.raises(ValueError, match="fail_rate"):
        collector.fail_rate = 2.0
    assert collector.fail_rate == 0.0


async def test_a_seeded_fail_rate_refuses_about_that_share(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    async with Collector(db_path=tmp_path / "f.db", fail_rate=0.3, fault_seed=11) as collector:
        statuses = [(await post_event(session, collector))[0] for _ in range(200)]
    refused = statuses.count(500)
    assert statuses.count(200) + refused == 200
    assert 35 <= refused <= 85  # 60 expected; a fixed seed keeps the run repeatable
    assert collector.event_count() == statuses.count(200)


async def test_delay_holds_every_answer(tmp_path: Path, session: aiohttp.ClientSession) -> None:
    async with Collector(db_path=tmp_path / "f.db", delay_ms=300) as collector:
        started = time.monotonic()
        assert (await post_event(session, collector))[0] == 200
        # A lower bound only: sleeping at least this long cannot depend on machine speed.
        assert time.monotonic() - started >= 0.3
        collector.set_faults(fail_rate=1.0)
        started = time.monotonic()
        assert (await post_event(session, collector))[0] == 500
        assert time.monotonic() - started >= 0.3


async def test_client_retries_through_a_flaky_collector_and_accounts_for_everything(
    tmp_path: Path,
) -> None:
    async with Collector(
        db_path=tmp_path / "f.db", fail_rate=0.5, fail_status=500, fault_seed=3
    ) as collector:
        async with AsyncClient(collector.dsn) as client:
            for n in range(30):
                await client.capture_message(f"flaky {n}")
            assert await client.flush(timeout=60)
            stats = client.stats
        refused = collector.request_statuses[500]
        assert stats.sent + sum(stats.dropped.values()) == 30
        assert collector.event_count() == stats.sent
        # A dropped event used up all 3 attempts; any other refusal was retried successfully.
        assert refused > 3 * sum(stats.dropped.values())
        assert stats.sent > 30 - refused


async def test_client_honours_the_rate_limit_then_resumes_and_reports_its_drops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Rate limits run on the monotonic clock (their methods take `now=`): the client's read this.
    clock = FakeClock(time.monotonic())
    monkeypatch.setattr(ratelimit, "time", SimpleNamespace(monotonic=clock, time=time.time))
    async with Collector(
        db_path=tmp_path / "f.db", fail_rate=1.0, fail_status=429, retry_after=1
    ) as collector:
        async with AsyncClient(collector.dsn) as client:
            await client.capture_message("refused")
            assert await client.flush(10)
            collector.clear_faults()
            await client.capture_message("held back by the client, not sent")
            assert await client.flush(10)
            clock.advance(0.9)
            await client.capture_message("still held back")
            assert await client.flush(10)
            assert collector.request_statuses == {429: 1}  # the client did not even try
            clock.advance(0.2)  # past the 1 s Retry-After
            await client.capture_message("after the limit")
            assert await client.flush(10)
        assert [e["message"] if "message" in e else e["logentry"]["formatted"]
                for e in collector.events()] == ["after the limit"]  # fmt: skip
        assert collector.discarded_totals() == {("ratelimit_backoff", "error"): 3}


def store_request(dsn_text: str) -> urllib.request.Request:
    dsn = Dsn.parse(dsn_text)
    return urllib.request.Request(
        dsn.store_url,
        b'{"message": "x"}',
        {"X-Sentry-Auth": dsn.auth_header(), "Content-Type": "application/json"},
    )


def refusal(request: urllib.request.Request) -> tuple[int, str | None]:
    """The status and Retry-After of a request the collector must refuse."""
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    refused.value.close()
    return refused.value.code, refused.value.headers["Retry-After"]


def test_collector_thread_exposes_the_same_knobs(tmp_path: Path) -> None:
    with CollectorThread(db_path=tmp_path / "t.db") as collector:
        collector.fail_rate = 1.0
        collector.fail_status = 503
        collector.delay_ms = 1
        collector.retry_after = 4
        assert collector.faults.describe() == (
            "refusing 100% of ingestion requests with 503, delaying every ingestion answer by 1 ms"
        )
        request = store_request(collector.dsn)
        assert refusal(request) == (503, "4")
        collector.clear_faults()
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
        assert collector.request_statuses == {503: 1, 200: 1}


def test_errlink_serve_fault_options(tmp_path: Path) -> None:
    fault_options = ("--fail-rate", "1", "--status", "429", "--retry-after", "5", "--delay", "10")
    with CollectorProcess(
        *fault_options, db=tmp_path / "e.db", quiet=False, max_events=None, capture_stderr=True
    ) as process:
        text = process.banner
        assert "faults:   refusing 100% of ingestion requests with 429" in text
        assert "delaying every ingestion answer by 10 ms" in text
        assert f"web UI:   http://{Dsn.parse(process.dsn).netloc}/" in text
        assert "keeping the newest 10000 events" in text
        assert refusal(store_request(process.dsn)) == (429, "5")
        process.stop(timeout=15)
    assert process.returncode == 0
