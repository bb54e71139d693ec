from __future__ import annotations

import asyncio
import copy
import logging
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

import pytest

import errlink._delivery.kinds as kinds_module
from errlink._delivery.http import HttpTransport
from errlink._delivery.pipeline import SENDING, Pipeline
from errlink._delivery.sizing import UNMEASURED_HEAD
from errlink._delivery.stats import Stats
from errlink._wire.dsn import Dsn
from errlink._wire.envelope import CONTENT_TYPE, Envelope
from errlink._wire.transport import Transport, TransportError, TransportResponse
from tests._support import free_port, wait_until_async
from tests._support.envelope_server import (
    Answer,
    ScriptedServer,
    close_after_request,
    half_a_response,
)
from tests._support.transports import MemoryTransport

SDK = {"name": "errlink", "version": "0.0.test"}
SECRET = "s3cr3tkey"
FAST_RETRY = {"retry_base_delay": 0.01, "retry_max_delay": 0.05}
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture
async def server() -> AsyncIterator[ScriptedServer]:
    started = await ScriptedServer().start()
    yield started
    await started.stop()


# -- pipelines -------------------------------------------------------------------------------------


class Make(Protocol):
    def __call__(
        self,
        port: int = 1,
        *,
        transport: Transport | None = None,
        http_timeout: float = 2.0,
        **options: Any,
    ) -> tuple[Pipeline, Stats]: ...


def dsn_for(port: int) -> Dsn:
    return Dsn.parse(f"http://public:{SECRET}@127.0.0.1:{port}/1")


@pytest.fixture
async def make() -> AsyncIterator[Make]:
    made: list[Pipeline] = []

    def factory(
        port: int = 1,
        *,
        transport: Transport | None = None,
        http_timeout: float = 2.0,
        **options: Any,
    ) -> tuple[Pipeline, Stats]:
        dsn = dsn_for(port)
        stats = Stats()
        pipeline = Pipeline(
            transport=transport or HttpTransport(dsn, http_timeout=http_timeout),
            stats=stats,
            sdk_info=SDK,
            dsn=dsn,
            **{**FAST_RETRY, **options},
        )
        made.append(pipeline)
        return pipeline, stats

    yield factory
    loop = asyncio.get_running_loop()
    for pipeline in made:
        if pipeline.loop in (None, loop):
            await pipeline.aclose(0.5)


def new_event(index: int = 0, pad: int = 0) -> dict[str, Any]:
    return {
        "event_id": uuid.uuid4().hex,
        "level": "error",
        "message": f"event {index}",
        "extra": {"index": index, "pad": "p" * pad},
    }


def assert_accounted(stats: Stats, pipeline: Pipeline, submitted: int) -> None:
    snapshot = stats.snapshot()
    assert snapshot.sent + snapshot.dropped_total + snapshot.pending == submitted
    assert snapshot.pending == pipeline.pending()


def errlink_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "errlink"]


# -- delivery --------------------------------------------------------------------------------------


async def test_delivers_2000_events_exactly_once(server: ScriptedServer, make: Make) -> None:
    pipeline, stats = make(server.port, queue_size=2000)
    pipeline.start()
    events = [new_event(i, pad=1500 if i % 2 else 10) for i in range(2000)]
    expected = {event["event_id"]: copy.deepcopy(event) for event in events}
    for event in events:
        assert pipeline.submit(event)

    assert await pipeline.flush(10.0)

    received = server.events()
    assert Counter(e["event_id"] for e in received) == Counter(expected.keys())
    assert all(event == expected[event["event_id"]] for event in received)
    snapshot = stats.snapshot()
    assert (snapshot.queued, snapshot.sent, snapshot.dropped, snapshot.pending) == (
        2000,
        2000,
        {},
        0,
    )
    encodings = Counter(r.headers.get("Content-Encoding") for r in server.received)
    assert encodings == {"gzip": 1000, None: 1000}  # only the big half crossed the threshold
    for r in server.received:
        assert r.headers["Content-Type"] == CONTENT_TYPE
        assert "sentry_key=public" in r.headers["X-Sentry-Auth"]
        header = r.envelope.headers
        assert header["event_id"] == r.items("event")[0]["event_id"]
        assert header["dsn"] == f"http://public@127.0.0.1:{server.port}/1"
        assert header["sdk"] == SDK
        assert RFC3339_UTC.match(header["sent_at"])


async def test_submit_before_start_is_buffered_and_flush_starts_the_pipeline(
    server: ScriptedServer, make: Make
) -> None:
    pipeline, stats = make(server.port)
    unbound = pipeline.loop
    assert unbound is None
    for i in range(3):
        assert pipeline.submit(new_event(i))
    assert pipeline.pending() == 3
    assert await pipeline.flush(5.0)
    assert pipeline.loop is asyncio.get_running_loop()
    assert len(server.events()) == 3
    pipeline.start()  # idempotent on the same loop
    assert_accounted(stats, pipeline, 3)


async def test_start_on_another_loop_running_in_another_thread(make: Make) -> None:
    sink = MemoryTransport()
    pipeline, stats = make(transport=sink)
    other = asyncio.new_event_loop()
    thread = threading.Thread(target=other.run_forever, name="other-loop")
    thread.start()
    try:
        pipeline.start(other)
        with pytest.raises(RuntimeError, match="another event loop"):
            pipeline.start(asyncio.get_running_loop())
        for i in range(50):
            assert pipeline.submit(new_event(i))

        def on_other(coroutine: Awaitable[bool]) -> bool:
            return asyncio.run_coroutine_threadsafe(coroutine, other).result(5)  # type: ignore[arg-type]

        assert await asyncio.to_thread(on_other, pipeline.flush(5.0))
        assert await asyncio.to_thread(on_other, pipeline.aclose(1.0))
    finally:
        other.call_soon_threadsafe(other.stop)
        await asyncio.to_thread(thread.join)
        other.close()
    assert len(sink.envelopes) == 50
    assert sink.closed
    assert_accounted(stats, pipeline, 50)


async def test_submits_from_many_threads_while_the_loop_sends(
    server: ScriptedServer, make: Make
) -> None:
    pipeline, stats = make(server.port, queue_size=4000)
    pipeline.start()
    submitted: list[str] = []
    lock = threading.Lock()

    def produce(thread_index: int) -> None:
        for i in range(250):
            event = new_event(thread_index * 1000 + i)
            assert pipeline.submit(event)
            with lock:
                submitted.append(event["event_id"])

    def produce_in_threads() -> None:
        threads = [threading.Thread(target=produce, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    await asyncio.to_thread(produce_in_threads)
    assert await pipeline.flush(10.0)
    assert Counter(e["event_id"] for e in server.events()) == Counter(submitted)
    assert stats.snapshot().sent == 2000
    assert_accounted(stats, pipeline, 2000)


async def test_queue_bound_drops_the_newest_and_counts_it(make: Make) -> None:
    pipeline, stats = make(queue_size=5)  # not started: nothing drains
    results = [pipeline.submit(new_event(i)) for i in range(8)]
    assert results == [True] * 5 + [False] * 3
    assert pipeline.pending() == 5
    assert stats.snapshot().dropped_by_category == {("queue_overflow", "error"): 3}
    assert_accounted(stats, pipeline, 8)


async def test_large_events_are_encoded_in_a_worker_thread(
    make: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[threading.Thread] = []
    fit = kinds_module.fit_event

    def spy(event: dict[str, Any], dumps: Any, max_bytes: int) -> bytes:
        threads.append(threading.current_thread())
        return fit(event, dumps, max_bytes)

    monkeypatch.setattr(kinds_module, "fit_event", spy)
    sink = MemoryTransport()
    pipeline, _ = make(transport=sink, max_in_flight=1)
    pipeline.submit(new_event(0))
    pipeline.submit(new_event(1, pad=300_000), size_hint=300_000)
    assert await pipeline.flush(5.0)
    assert threads[0] is threading.main_thread()
    assert threads[1] is not threading.main_thread()
    assert sink.envelopes[1].items[0].json()["extra"]["pad"] == "p" * 300_000


# -- retries and outages ------------------------------------------------------------------------


@pytest.mark.parametrize("max_in_flight", [1, 4])
async def test_5xx_is_retried_until_delivered(
    server: ScriptedServer, make: Make, max_in_flight: int
) -> None:
    server.script.extend([Answer(500), Answer(503)])
    pipeline, stats = make(server.port, max_in_flight=max_in_flight, retry_attempts=3)
    for i in range(5):
        pipeline.submit(new_event(i))
    assert await pipeline.flush(5.0)
    assert len(server.events()) == 5
    assert server.event_requests() == 7
    assert stats.snapshot().sent == 5
    assert_accounted(stats, pipeline, 5)


async def test_always_5xx_drops_as_network_error_after_the_attempts(
    server: ScriptedServer, make: Make
) -> None:
    server.default = Answer(500)
    pipeline, stats = make(server.port, retry_attempts=3)
    for i in range(5):
        pipeline.submit(new_event(i))
    assert await pipeline.flush(5.0)
    assert server.event_requests() == 15
    snapshot = stats.snapshot()
    assert snapshot.dropped == {"network_error": 5}
    assert snapshot.pending == 0
    assert_accounted(stats, pipeline, 5)

    server.default = Answer(200)
    assert await pipeline.flush(5.0)
    assert server.discarded() == {("network_error", "error"): 5}


async def start_outage(kind: str, port: int) -> Callable[[], Awaitable[None]]:
    """Make `port` misbehave; returns what ends the outage."""
    if kind == "refused":

        async def nothing_to_stop() -> None:
            pass

        return nothing_to_stop
    if kind == "slow":
        slow = await ScriptedServer().start(port)
        slow.default = Answer(hang=True)
        return slow.stop
    reply = close_after_request if kind == "closed_mid_response" else half_a_response
    raw = await asyncio.start_server(reply, "127.0.0.1", port)

    async def stop() -> None:
        raw.close()
        await raw.wait_closed()

    return stop


@pytest.mark.parametrize("outage", ["refused", "slow", "closed_mid_response", "half_response"])
async def test_outage_keeps_submit_fast_and_memory_bounded_and_reports_the_drops(
    make: Make, outage: str
) -> None:
    port = free_port()
    end_outage = await start_outage(outage, port)
    http_timeout = 0.2
    pipeline, stats = make(port, http_timeout=http_timeout, queue_size=50)
    pipeline.start()

    def submit_many() -> tuple[float, int, int]:
        peak = accepted = 0
        started = time.perf_counter()
        for i in range(1000):
            accepted += pipeline.submit(new_event(i))
            peak = max(peak, pipeline.pending())
        return time.perf_counter() - started, peak, accepted

    # From another thread, as a sync caller would, while the loop keeps failing to send.
    elapsed, peak, accepted = await asyncio.to_thread(submit_many)
    assert elapsed < http_timeout / 4  # 1,000 submits: far less than one request's timeout
    assert peak <= 50
    assert stats.snapshot().dropped["queue_overflow"] == 1000 - accepted

    await wait_until_async(lambda: "network_error" in stats.snapshot().dropped)
    assert pipeline.pending() <= 50
    assert_accounted(stats, pipeline, 1000)

    await end_outage()
    recovered = await ScriptedServer().start(port)
    try:
        assert await pipeline.flush(5.0)
        snapshot = stats.snapshot()
        assert snapshot.pending == 0
        assert_accounted(stats, pipeline, 1000)
        # With a 0.2 s timeout on a busy machine, the server may store an event whose answer
        # comes too late: counted as network_error by the client, yet received.
        received = len(recovered.events())
        assert snapshot.sent <= received <= snapshot.sent + snapshot.dropped["network_error"]
        assert recovered.discarded() == snapshot.dropped_by_category
        assert set(snapshot.dropped) == {"queue_overflow", "network_error"}
    finally:
        await recovered.stop()


async def test_a_dead_server_does_not_make_the_senders_spin(make: Make) -> None:
    class Dead(MemoryTransport):
        async def send(self, envelope: Envelope) -> TransportResponse:
            self.calls += 1
            raise TransportError("refused")

    dead = Dead()
    pipeline, stats = make(
        transport=dead, queue_size=100, retry_base_delay=0.05, retry_max_delay=0.2
    )
    for i in range(100):
        pipeline.submit(new_event(i))
    loop = asyncio.get_running_loop()
    started = loop.time()
    pipeline.start()
    await wait_until_async(lambda: dead.calls >= 8, timeout=5.0)
    # Spinning would make hundreds of calls at once; paced senders make a few per backoff period.
    assert loop.time() - started >= 0.05
    assert dead.calls < 60
    assert_accounted(stats, pipeline, 100)
    assert not await pipeline.aclose(0.05)
    assert_accounted(stats, pipeline, 100)


# -- rate limits ----------------------------------------------------------------------------------


async def test_error_limit_drops_events_but_the_client_report_still_goes(
    server: ScriptedServer, make: Make
) -> None:
    server.script.append(Answer(429, {"X-Sentry-Rate-Limits": "60:error:key"}))
    pipeline, stats = make(server.port, max_in_flight=1)
    pipeline.start()
    pipeline.submit(new_event(0))
    await wait_until_async(lambda: stats.snapshot().dropped.get("ratelimit_backoff") == 1)
    for i in range(1, 6):
        pipeline.submit(new_event(i))
    assert await pipeline.flush(5.0)

    assert pipeline.rate_limits.is_limited("error")
    assert server.event_requests() == 1  # the limited ones never left
    assert len(server.received) == 2  # + one report-only envelope
    assert "event_id" not in server.received[1].envelope.headers
    assert server.discarded() == {("ratelimit_backoff", "error"): 6}
    assert_accounted(stats, pipeline, 6)


async def test_limit_on_all_categories_holds_the_report_until_it_expires(
    server: ScriptedServer, make: Make
) -> None:
    server.script.append(Answer(429, {"X-Sentry-Rate-Limits": "0.3::organization:quota"}))
    pipeline, stats = make(server.port, max_in_flight=1)
    pipeline.submit(new_event(0))
    assert await pipeline.flush(5.0)
    for i in range(1, 4):
        pipeline.submit(new_event(i))
    assert await pipeline.flush(5.0)
    assert len(server.received) == 1  # neither events nor the report went
    assert stats.snapshot().dropped == {"ratelimit_backoff": 4}

    await wait_until_async(lambda: not pipeline.rate_limits.is_limited("error"), timeout=5.0)
    pipeline.submit(new_event(4))
    assert await pipeline.flush(5.0)
    [after] = server.delivered
    assert len(after.items("event")) == 1
    assert after.items("client_report")[0]["discarded_events"] == [
        {"reason": "ratelimit_backoff", "category": "error", "quantity": 4}
    ]
    assert_accounted(stats, pipeline, 5)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [({"Retry-After": "30"}, 30.0), ({}, 60.0), ({"Retry-After": "Tue, 31 Dec 2999 00:00:00"}, 0)],
)
async def test_429_without_quotas_limits_everything(
    server: ScriptedServer, make: Make, headers: dict[str, str], expected: float
) -> None:
    server.script.append(Answer(429, headers))
    pipeline, stats = make(server.port, max_in_flight=1)
    pipeline.submit(new_event(0))
    assert await pipeline.flush(5.0)
    wait = pipeline.rate_limits.retry_after("error")
    if expected:
        assert expected - 1 < wait <= expected
    else:  # a date far away
        assert wait > 1e6
    assert pipeline.rate_limits.is_limited("internal")
    pipeline.submit(new_event(1))
    assert await pipeline.flush(5.0)
    assert len(server.received) == 1
    assert stats.snapshot().dropped == {"ratelimit_backoff": 2}
    assert_accounted(stats, pipeline, 2)


async def test_sending_resumes_when_retry_after_expires(server: ScriptedServer, make: Make) -> None:
    server.script.append(Answer(429, {"Retry-After": "0.2"}))
    pipeline, stats = make(server.port, max_in_flight=1)
    pipeline.submit(new_event(0))
    assert await pipeline.flush(5.0)
    assert pipeline.rate_limits.is_limited("error")
    await wait_until_async(lambda: not pipeline.rate_limits.is_limited("error"), timeout=5.0)
    pipeline.submit(new_event(1))
    assert await pipeline.flush(5.0)
    assert len(server.events()) == 1
    assert server.discarded() == {("ratelimit_backoff", "error"): 1}
    assert_accounted(stats, pipeline, 2)


# -- refusals -----------------------------------------------------------------------------------


async def test_413_and_400_drop_as_send_error_and_log_once_per_status(
    server: ScriptedServer, make: Make, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="errlink")
    server.script.extend([Answer(413)] * 3 + [Answer(400)] * 3)
    pipeline, stats = make(server.port, max_in_flight=1)
    for i in range(6):
        pipeline.submit(new_event(i))
    assert await pipeline.flush(5.0)

    assert stats.snapshot().dropped == {"send_error": 6}
    records = errlink_records(caplog)
    warnings = [r for r in records if r.levelno >= logging.WARNING]
    assert len(warnings) == 2
    assert "413" in warnings[0].getMessage()
    assert "400" in warnings[1].getMessage()
    assert all(getattr(r, "errlink_internal", False) for r in records)
    assert all(SECRET not in r.getMessage() for r in records)
    assert server.discarded() == {("send_error", "error"): 6}
    assert_accounted(stats, pipeline, 6)


# -- flush and close ---------------------------------------------------------------------------


async def test_flush_and_aclose_honour_their_timeouts_against_a_hanging_server(
    server: ScriptedServer, make: Make
) -> None:
    server.default = Answer(hang=True)
    http_timeout = 5.0
    pipeline, stats = make(server.port, http_timeout=http_timeout)
    for i in range(10):
        pipeline.submit(new_event(i))
    loop = asyncio.get_running_loop()

    started = loop.time()
    assert not await pipeline.flush(0.2)
    flush_took = loop.time() - started

    started = loop.time()
    assert not await pipeline.aclose(0.2)
    close_took = loop.time() - started

    assert flush_took < http_timeout / 5
    assert close_took < http_timeout / 5
    assert pipeline.pending() == 0
    assert stats.snapshot().dropped == {"network_error": 10}
    assert_accounted(stats, pipeline, 10)


async def test_flush_waits_only_for_what_was_submitted_before_it(make: Make) -> None:
    gate = asyncio.Event()

    class Gated(MemoryTransport):
        async def send(self, envelope: Envelope) -> TransportResponse:
            if envelope.items[0].json()["message"] == "event 0":
                await gate.wait()  # the first send is slow; later ones finish before it
            return await super().send(envelope)

    sink = Gated()
    pipeline, _ = make(transport=sink)
    pipeline.start()
    for i in range(3):
        pipeline.submit(new_event(i))
    await wait_until_async(lambda: len(sink.envelopes) == 2)
    assert not await pipeline.flush(0.05)  # event 0 still in flight
    gate.set()
    assert await pipeline.flush(1.0)


async def test_aclose_is_idempotent_and_submit_afterwards_counts_queue_overflow(
    server: ScriptedServer, make: Make
) -> None:
    pipeline, stats = make(server.port)
    pipeline.submit(new_event(0))
    assert await pipeline.aclose(2.0)
    assert await pipeline.aclose(2.0)
    assert not pipeline.submit(new_event(1))
    assert stats.snapshot().dropped == {"queue_overflow": 1}
    assert await pipeline.flush(1.0)
    assert len(server.events()) == 1
    assert_accounted(stats, pipeline, 2)


async def test_flush_on_another_loop_is_refused(make: Make) -> None:
    pipeline, _ = make(transport=MemoryTransport())
    pipeline.start()

    with pytest.raises(RuntimeError, match="pipeline's event loop"):
        await asyncio.to_thread(asyncio.run, pipeline.flush(0.1))


# -- client reports ------------------------------------------------------------------------------


async def test_drops_ride_along_on_the_next_event_envelope(make: Make) -> None:
    sink = MemoryTransport()
    pipeline, stats = make(transport=sink)
    stats.record_drop("sample_rate", quantity=2)
    pipeline.submit(new_event(0))
    assert await pipeline.flush(1.0)
    [envelope] = sink.envelopes
    assert [item.type for item in envelope.items] == ["event", "client_report"]
    report = envelope.items[1].json()
    assert report["discarded_events"] == [
        {"reason": "sample_rate", "category": "error", "quantity": 2}
    ]
    assert isinstance(report["timestamp"], float)
    assert stats.take_client_report() is None


async def test_a_report_in_a_failed_envelope_is_restored(make: Make) -> None:
    sink = MemoryTransport(failures=[TransportError("reset")])
    pipeline, stats = make(transport=sink)
    stats.record_drop("before_send")
    pipeline.submit(new_event(0))
    assert await pipeline.flush(1.0)
    assert sink.calls == 2
    [envelope] = sink.envelopes
    assert envelope.items[1].json()["discarded_events"][0]["reason"] == "before_send"


# -- custom transports and hooks ---------------------------------------------------------------


async def test_a_custom_transport_receives_well_formed_envelopes(make: Make) -> None:
    sink = MemoryTransport()
    pipeline, stats = make(transport=sink)
    events = [new_event(i) for i in range(3)]
    for event in events:
        pipeline.submit(event)
    assert await pipeline.flush(1.0)
    assert await pipeline.aclose(1.0)
    assert sink.closed
    assert sorted(e.items[0].json()["message"] for e in sink.envelopes) == [
        "event 0",
        "event 1",
        "event 2",
    ]
    for envelope in sink.envelopes:
        assert envelope.headers["event_id"] == envelope.items[0].json()["event_id"]
        assert envelope.headers["dsn"] == "http://public@127.0.0.1:1/1"
        assert RFC3339_UTC.match(envelope.headers["sent_at"])
        assert envelope.items[0].type == "event"
    assert all(sink.sending_flags)  # integrations can tell errlink's own sends apart
    assert not SENDING.get()
    assert stats.snapshot().sent == 3


async def test_transient_faults_of_a_custom_transport_are_retried(make: Make) -> None:
    sink = MemoryTransport(failures=[TransportError("a"), TransportError("b")])
    pipeline, stats = make(transport=sink, retry_attempts=3, max_in_flight=1)
    pipeline.submit(new_event(0))
    assert await pipeline.flush(1.0)
    assert sink.calls == 3
    assert stats.snapshot().sent == 1


async def test_a_custom_transport_raising_anything_else_drops_as_send_error(
    make: Make, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="errlink")
    sink = MemoryTransport(failures=[ValueError("bug"), ValueError("bug"), KeyError("x")])
    pipeline, stats = make(transport=sink, max_in_flight=1)
    for i in range(4):
        pipeline.submit(new_event(i))
    assert await pipeline.flush(1.0)
    assert stats.snapshot().dropped == {"send_error": 3}
    assert stats.snapshot().sent == 1
    assert len(errlink_records(caplog)) == 2  # once per exception type


async def test_events_without_an_id_get_one_and_transactions_their_own_item(make: Make) -> None:
    sink = MemoryTransport()
    pipeline, _ = make(transport=sink, max_in_flight=1)
    pipeline.submit({"message": "no id"})
    pipeline.submit({"type": "transaction", "event_id": "b" * 32, "transaction": "/x"})
    assert await pipeline.flush(1.0)
    first, second = sink.envelopes
    assert re.fullmatch(r"[0-9a-f]{32}", first.headers["event_id"])
    assert first.items[0].json()["event_id"] == first.headers["event_id"]
    assert second.items[0].type == "transaction"


async def test_before_send_async_can_change_drop_or_fail(
    make: Make, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="errlink")

    async def hook(event: dict[str, Any]) -> dict[str, Any] | None:
        await asyncio.sleep(0)
        if event["message"] == "drop me":
            return None
        if event["message"] == "break me":
            raise RuntimeError("hook bug")
        return {**event, "tags": {"hooked": "yes"}}

    sink = MemoryTransport()
    pipeline, stats = make(transport=sink, before_send_async=hook, max_in_flight=1)
    for message in ("keep me", "drop me", "break me"):
        pipeline.submit({"event_id": uuid.uuid4().hex, "message": message})
    assert await pipeline.flush(1.0)

    sent = [e.items[0].json() for e in sink.envelopes]
    assert [e["message"] for e in sent] == ["keep me", "break me"]
    assert sent[0]["tags"] == {"hooked": "yes"}
    assert "tags" not in sent[1]
    assert stats.snapshot().dropped == {"before_send": 1}
    [record] = errlink_records(caplog)
    assert "before_send raised" in record.getMessage()
    assert getattr(record, "errlink_internal", False) is True
    assert_accounted(stats, pipeline, 3)


async def test_an_event_that_cannot_be_encoded_is_dropped_as_internal_error(
    make: Make, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="errlink")

    def broken(event: dict[str, Any], max_bytes: int) -> bytes:
        raise TypeError("cannot encode")

    monkeypatch.setattr(kinds_module, "fit_event", broken)
    pipeline, stats = make(transport=MemoryTransport())
    pipeline.submit(new_event(0))
    assert await pipeline.flush(1.0)
    assert stats.snapshot().dropped == {"internal_sdk_error": 1}
    assert_accounted(stats, pipeline, 1)


@pytest.mark.parametrize(
    "options",
    [
        {"queue_size": 0},
        {"max_in_flight": 0},
        {"retry_attempts": 0},
        {"retry_base_delay": 0},
        {"retry_base_delay": 2.0, "retry_max_delay": 1.0},
    ],
)
def test_rejects_bad_options(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(options))):
        Pipeline(transport=MemoryTransport(), stats=Stats(), sdk_info=SDK, **options)


async def test_events_over_the_size_cap_are_trimmed_to_fit(make: Make) -> None:
    sink = MemoryTransport()
    pipeline, stats = make(transport=sink, max_event_bytes=10_000)
    pipeline.submit(new_event(0, pad=50_000), size_hint=50_000)
    assert await pipeline.flush(1.0)
    [envelope] = sink.envelopes
    assert len(envelope.items[0].payload) <= 10_000
    assert envelope.items[0].json()["message"] == "event 0"
    assert stats.snapshot().sent == 1


async def test_aclose_does_not_wait_out_a_retry_backoff(make: Make, server: ScriptedServer) -> None:
    server.script.append(Answer(503))
    pipeline, stats = make(server.port, retry_base_delay=20.0, retry_max_delay=20.0)
    pipeline.start()
    pipeline.submit(new_event(1))
    # answered 503: a retry up to 20 s away
    await wait_until_async(lambda: len(server.received) == 1)
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await pipeline.aclose(30.0)
    assert loop.time() - started < 30 / 4  # against its own budget: the retry went out at once
    assert [event["message"] for event in server.events()] == ["event 1"]
    assert stats.snapshot().sent == 1


async def test_aclose_gives_up_once_a_send_fails_while_closing(make: Make) -> None:
    refused_port = free_port()
    pipeline, stats = make(refused_port, retry_base_delay=20.0, retry_max_delay=20.0)
    pipeline.start()
    for i in range(50):
        pipeline.submit(new_event(i))
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert not await pipeline.aclose(30.0)  # nothing was delivered
    assert loop.time() - started < 30 / 4
    snapshot = stats.snapshot()
    assert (snapshot.sent, snapshot.pending, dict(snapshot.dropped)) == (
        0,
        0,
        {"network_error": 50},
    )


async def test_a_hanging_server_holds_at_most_queue_max_bytes_and_hears_of_the_drops(
    server: ScriptedServer, make: Make
) -> None:
    server.script.extend([Answer(hang=True)] * 4)  # every sender stuck on its first request
    pipeline, stats = make(server.port, http_timeout=30.0, queue_max_bytes=1_000_000)
    pipeline.start()
    # 50 events of 100 KB each: 5 MB, far under queue_size but five times queue_max_bytes.
    accepted = sum(pipeline.submit(new_event(i, pad=100_000)) for i in range(50))
    # The first few events held are not measured (a server that keeps up costs no estimate).
    assert 5 <= accepted <= 10 + UNMEASURED_HEAD
    assert stats.snapshot().dropped_by_category == {("queue_overflow", "error"): 50 - accepted}
    assert_accounted(stats, pipeline, 50)

    server._release.set()  # the hung requests end (503) and later ones are answered 200
    assert await pipeline.flush(10.0)
    assert len({e["event_id"] for e in server.events()}) == accepted
    assert server.discarded() == Counter({("queue_overflow", "error"): 50 - accepted})
