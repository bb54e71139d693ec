"""Fault injection: each way a server can misbehave, with and without the disk outbox.

See `_scenario.py` for what every scenario checks (fast captures, bounded memory, balanced
books that agree with the collector and the outbox file). With the outbox, every event the
queue took must finally reach the collector exactly once (the only loss allowed is capture
outrunning the disk at a full queue, refused and counted as queue_overflow); without it, what
could not be sent is dropped and counted by reason.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path

import pytest

from errlink.collector import CollectorThread
from errlink.sync import Client
from tests._support import wait_until
from tests.faults._proxy import (
    HANG,
    Delay,
    Policy,
    ProxyThread,
    Reset,
    Respond,
    always,
    every_other,
)
from tests.faults._scenario import Scenario, books_balance, outbox_rows


@pytest.fixture
def proxy_thread(collector_thread: CollectorThread) -> Iterator[ProxyThread]:
    with ProxyThread(collector_thread.url) as started:
        yield started


@pytest.fixture
def scenario(
    collector_thread: CollectorThread, proxy_thread: ProxyThread, tmp_path: Path
) -> Iterator[Scenario]:
    started = Scenario(collector_thread, proxy_thread, tmp_path)
    yield started
    started.close()


FAULTS: dict[str, Policy] = {
    "500 on every other request": every_other(Respond(500)),
    "503 on every request": always(Respond(503)),
    "answers slower than http_timeout": always(Delay(1.0)),
    "connection reset mid-body": always(Reset(after_body_bytes=10)),
    "accepts and never answers": always(HANG),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_with_the_outbox_every_event_arrives_exactly_once(scenario: Scenario, fault: str) -> None:
    scenario.fault(FAULTS[fault])
    during = scenario.settle()
    if fault != "500 on every other request":  # there, retries alone may get everything out
        assert during.in_outbox > 0
    scenario.assert_only_overflow_lost(during)
    final = scenario.recover()
    scenario.assert_only_overflow_lost(final)
    assert final.sent == len(scenario.queued_ids)
    scenario.assert_every_queued_event_delivered_once()


def test_refused_connections_then_back(scenario: Scenario, proxy_thread: ProxyThread) -> None:
    proxy_thread.go_down()
    scenario.fault(always(HANG))  # the policy is moot: nothing connects
    assert scenario.settle().in_outbox > 0
    proxy_thread.come_back()
    final = scenario.recover()
    scenario.assert_only_overflow_lost(final)
    assert final.sent == len(scenario.queued_ids)
    scenario.assert_every_queued_event_delivered_once()


def _retry_after_date(seconds: float) -> str:
    return formatdate(time.time() + seconds, usegmt=True)


RATE_LIMIT_HEADERS = {
    "Retry-After seconds": lambda: {"Retry-After": "1"},
    "Retry-After HTTP date": lambda: {"Retry-After": _retry_after_date(2)},
    "X-Sentry-Rate-Limits for errors": lambda: {"X-Sentry-Rate-Limits": "1:error:key"},
    "X-Sentry-Rate-Limits for all categories": lambda: {"X-Sentry-Rate-Limits": "1::organization"},
}


@pytest.mark.parametrize("form", list(RATE_LIMIT_HEADERS))
def test_rate_limited_events_wait_in_the_outbox(scenario: Scenario, form: str) -> None:
    headers = RATE_LIMIT_HEADERS[form]
    scenario.fault(lambda _n: Respond(429, headers()))
    during = scenario.settle()
    assert during.in_outbox > 0
    scenario.assert_only_overflow_lost(during)  # never "ratelimit_backoff": they wait on disk
    final = scenario.recover()
    assert final.sent == len(scenario.queued_ids)
    scenario.assert_every_queued_event_delivered_once()


def test_429_without_headers_limits_for_a_minute_and_a_later_run_sends_them(
    scenario: Scenario, proxy_thread: ProxyThread
) -> None:
    # No header: 60 s of silence for every category. This client keeps them on disk; a
    # restarted application (a new client on the same outbox) sends them.
    scenario.fault(always(Respond(429)))
    during = scenario.settle()
    scenario.assert_only_overflow_lost(during)
    assert during.in_outbox == len(scenario.queued_ids) - len(scenario.healthy.ids) > 0
    scenario.close()
    assert books_balance(scenario.client.stats)
    assert len(outbox_rows(scenario.outbox_path)) == scenario.client.stats.in_outbox

    proxy_thread.set_policy(always(Delay(0)))
    restarted = Client(proxy_thread.dsn(), outbox=scenario.outbox_path, outbox_drain_rate=1000.0)
    try:
        wait_until(lambda: restarted.stats.adopted == during.in_outbox, 30)
        scenario.assert_every_queued_event_delivered_once()
        assert books_balance(restarted.stats)
        assert outbox_rows(scenario.outbox_path) == []
    finally:
        restarted.close(5)


@pytest.mark.parametrize("fault", ["500 on every other request", "accepts and never answers"])
def test_without_the_outbox_losses_are_counted_by_reason(
    collector_thread: CollectorThread, proxy_thread: ProxyThread, tmp_path: Path, fault: str
) -> None:
    scenario = Scenario(collector_thread, proxy_thread, tmp_path, outbox=False)
    try:
        scenario.fault(FAULTS[fault])
    finally:
        scenario.client.close(1.0)  # whatever is left now is dropped as network_error
    stats = scenario.client.stats
    assert books_balance(stats), stats
    assert stats.spilled == stats.in_outbox == stats.pending == 0
    assert set(stats.dropped) <= {"network_error", "queue_overflow"}
    if fault == "accepts and never answers":
        assert stats.dropped_total > 0
    delivered = {e["event_id"] for e in collector_thread.events()}
    assert len(delivered) == stats.sent
    assert not outbox_rows(scenario.outbox_path)
