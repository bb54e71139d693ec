"""Item kinds: a kind declared outside the pipeline travels through it unchanged.

The kind below exists only in this test. Nothing in the sender loop knows it, yet it reaches a
real server as its own item type, is bounded by its own queue, limited by its own size and rate
limited and reported under its own category.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from errlink._delivery.http import HttpTransport
from errlink._delivery.kinds import EVENT, ItemKind, declare, kind_of
from errlink._delivery.pipeline import Pipeline
from errlink._delivery.stats import Stats
from errlink._wire.dsn import Dsn
from tests._support.envelope_server import Answer, ScriptedServer

PROBE = declare(ItemKind("errlink_test_probe", "test_probe", max_bytes=200, own_queue=3))
SDK = {"name": "errlink", "version": "0.0.test"}


@pytest.fixture
async def server() -> AsyncIterator[ScriptedServer]:
    started = await ScriptedServer().start()
    yield started
    await started.stop()


@pytest.fixture
async def pipeline(server: ScriptedServer) -> AsyncIterator[tuple[Pipeline, Stats]]:
    dsn = Dsn.parse(f"http://public@127.0.0.1:{server.port}/1")
    stats = Stats()
    made = Pipeline(
        transport=HttpTransport(dsn),
        stats=stats,
        sdk_info=SDK,
        dsn=dsn,
        queue_size=5,
        max_in_flight=1,
        retry_base_delay=0.01,
        retry_max_delay=0.05,
    )
    yield made, stats
    await made.aclose(1.0)


def probe(index: int, pad: int = 0) -> dict[str, Any]:
    return {"probe": index, "pad": "x" * pad}


def event(index: int) -> dict[str, Any]:
    return {"event_id": uuid.uuid4().hex, "level": "error", "message": f"event {index}"}


def test_a_declared_kind_is_found_by_its_item_type() -> None:
    assert kind_of("errlink_test_probe") is PROBE
    assert kind_of("event") is EVENT
    assert kind_of("not_declared").category == "not_declared"


def test_declaring_a_known_item_type_differently_is_refused() -> None:
    assert declare(ItemKind("errlink_test_probe", "test_probe", max_bytes=200, own_queue=3))
    with pytest.raises(ValueError, match="errlink_test_probe"):
        declare(ItemKind("errlink_test_probe", "other"))


async def test_a_new_kind_reaches_the_server_as_its_own_item(
    server: ScriptedServer, pipeline: tuple[Pipeline, Stats]
) -> None:
    made, stats = pipeline
    assert made.submit_item(PROBE, probe(1))
    assert made.submit(event(1))
    assert await made.flush(5.0)

    probes = [r for r in server.delivered if r.items("errlink_test_probe")]
    assert [r.items("errlink_test_probe") for r in probes] == [[{"probe": 1, "pad": ""}]]
    assert "event_id" not in probes[0].envelope.headers  # only events carry one
    assert [e["message"] for e in server.events()] == ["event 1"]
    assert stats.snapshot().sent == 2


async def test_a_kind_with_its_own_queue_neither_crowds_out_events_nor_is_crowded_out(
    server: ScriptedServer, pipeline: tuple[Pipeline, Stats]
) -> None:
    made, stats = pipeline
    accepted_probes = [made.submit_item(PROBE, probe(i)) for i in range(5)]
    accepted_events = [made.submit(event(i)) for i in range(6)]
    assert accepted_probes == [True, True, True, False, False]  # its own bound: 3
    assert accepted_events == [True] * 5 + [False]  # the main queue: 5, probes not counted
    assert await made.flush(5.0)

    assert len(server.events()) == 5
    assert sum(len(r.items("errlink_test_probe")) for r in server.delivered) == 3
    assert server.discarded() == {
        ("queue_overflow", "test_probe"): 2,
        ("queue_overflow", "error"): 1,
    }
    assert stats.snapshot().dropped == {"queue_overflow": 3}


async def test_an_item_over_its_kinds_size_limit_is_dropped_and_reported(
    server: ScriptedServer, pipeline: tuple[Pipeline, Stats]
) -> None:
    made, stats = pipeline
    made.submit_item(PROBE, probe(1, pad=500))
    made.submit_item(PROBE, probe(2))
    assert await made.flush(5.0)

    sent = [item for r in server.delivered for item in r.items("errlink_test_probe")]
    assert sent == [{"probe": 2, "pad": ""}]
    assert server.discarded() == {("send_error", "test_probe"): 1}
    assert stats.snapshot().sent == 1


async def test_a_kind_is_rate_limited_by_its_own_category(
    server: ScriptedServer, pipeline: tuple[Pipeline, Stats]
) -> None:
    made, stats = pipeline
    server.script.append(Answer(200, {"X-Sentry-Rate-Limits": "60:test_probe:key"}))
    made.submit(event(0))
    assert await made.flush(5.0)
    assert made.rate_limits.is_limited("test_probe")
    assert not made.rate_limits.is_limited("error")

    made.submit_item(PROBE, probe(1))
    made.submit(event(1))
    assert await made.flush(5.0)

    assert not any(r.items("errlink_test_probe") for r in server.received)
    assert [e["message"] for e in server.events()] == ["event 0", "event 1"]
    assert server.discarded() == {("ratelimit_backoff", "test_probe"): 1}
    assert stats.snapshot().dropped == {"ratelimit_backoff": 1}
