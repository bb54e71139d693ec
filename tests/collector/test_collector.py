"""The collector against real HTTP on 127.0.0.1: ingestion, refusals, limits, storage, reads."""

from __future__ import annotations

import asyncio
import base64
import collections
import gzip
import json
import logging
import struct
import threading
import time
import tracemalloc
import urllib.error
import urllib.request
import uuid
import zlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from errlink._wire.dsn import Dsn
from errlink._wire.envelope import Envelope
from errlink.collector import DEFAULT_MAX_DECOMPRESSED_BYTES, Collector, CollectorThread

MiB = 1024 * 1024
ENVELOPE_HEADERS = {"Content-Type": "application/x-sentry-envelope"}


# -- helpers ---------------------------------------------------------------------------------


def new_event(**fields: Any) -> dict[str, Any]:
    return {"event_id": uuid.uuid4().hex, "platform": "python", "level": "error", **fields}


def envelope(*items: tuple[str, Any], headers: dict[str, Any] | None = None) -> bytes:
    built = Envelope(dict(headers or {}))
    for item_type, payload in items:
        built.add_json(item_type, payload)
    return built.to_bytes()


def event_envelope(event: dict[str, Any], **headers: Any) -> bytes:
    return envelope(("event", event), headers={"event_id": event["event_id"], **headers})


def auth(collector: Collector | CollectorThread) -> dict[str, str]:
    return {"X-Sentry-Auth": Dsn.parse(collector.dsn).auth_header()}


def gzip_of_zeros(mebibytes: int) -> Iterator[bytes]:
    """A gzip stream of `mebibytes` MiB of zeros, produced piece by piece (~1 KiB per MiB)."""
    zeros = bytes(MiB)
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    yield compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    # A full flush resets the compressor, so every further MiB compresses to these same bytes.
    repeated = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    crc = zlib.crc32(zeros)
    for _ in range(mebibytes - 1):
        yield repeated
        crc = zlib.crc32(zeros, crc)
    yield b"\x03\x00"  # an empty final deflate block
    yield struct.pack("<II", crc, (mebibytes * MiB) & 0xFFFFFFFF)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


async def post(
    session: aiohttp.ClientSession,
    collector: Collector,
    body: bytes | AsyncIterator[bytes],
    *,
    endpoint: str = "envelope",
    headers: dict[str, str] | None = None,
    with_auth: bool = True,
    project: str = "1",
    query: str = "",
) -> tuple[int, dict[str, Any]]:
    all_headers = {**(auth(collector) if with_auth else {}), **(headers or {})}
    url = f"{collector.url}/api/{project}/{endpoint}/" + (f"?{query}" if query else "")
    async with session.post(url, data=body, headers=all_headers) as response:
        return response.status, await response.json()


async def get(session: aiohttp.ClientSession, collector: Collector, path: str) -> Any:
    async with session.get(f"{collector.url}{path}") as response:
        assert response.status == 200, await response.text()
        return await response.json()


# -- accepted data ---------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["identity", "gzip", "deflate-zlib", "deflate-raw"])
async def test_envelope_is_stored_with_its_fields(
    collector: Collector, session: aiohttp.ClientSession, encoding: str
) -> None:
    event = new_event(
        level="warning",
        environment="staging",
        release="app@1.2.3",
        exception={
            "values": [
                {"type": "KeyError", "value": "'cause'"},
                {"type": "ValueError", "value": "bad input", "module": "app.views"},
            ]
        },
    )
    body = event_envelope(event, sent_at="2024-01-01T00:00:00Z")
    headers = dict(ENVELOPE_HEADERS)
    if encoding == "gzip":
        body, headers["Content-Encoding"] = gzip.compress(body), "gzip"
    elif encoding == "deflate-zlib":
        body, headers["Content-Encoding"] = zlib.compress(body), "deflate"
    elif encoding == "deflate-raw":
        raw = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
        body, headers["Content-Encoding"] = raw.compress(body) + raw.flush(), "deflate"

    status, answer = await post(session, collector, body, headers=headers)

    assert (status, answer) == (200, {"id": event["event_id"]})
    assert collector.events() == [event]
    stored = await get(session, collector, f"/api/0/events/{event['event_id']}/")
    assert stored["payload"] == event
    assert stored["copies"] == 1
    assert {k: stored[k] for k in ("level", "environment", "release", "project_id")} == {
        "level": "warning",
        "environment": "staging",
        "release": "app@1.2.3",
        "project_id": "1",
    }
    # The chain is oldest first, so the last exception is the one the event is about.
    assert (stored["exception_type"], stored["exception_value"]) == ("ValueError", "bad input")
    assert stored["received_at"].endswith("Z")


async def test_multi_member_gzip_is_accepted(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    event = new_event(message="two members")
    body = event_envelope(event)
    half = len(body) // 2
    compressed = gzip.compress(body[:half]) + gzip.compress(body[half:])
    status, _ = await post(session, collector, compressed, headers={"Content-Encoding": "gzip"})
    assert status == 200
    assert collector.events() == [event]


async def test_store_endpoint_takes_json(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    event = new_event(logentry={"message": "user %s", "formatted": "user 42"})
    status, answer = await post(session, collector, json.dumps(event).encode(), endpoint="store")
    assert (status, answer) == (200, {"id": event["event_id"]})
    assert collector.events() == [event]
    listed = await get(session, collector, "/api/0/events/")
    assert listed["events"][0]["message"] == "user 42"


async def test_store_endpoint_takes_raven_base64_zlib(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    event = new_event(message="from raven", tags={"k": "v"})
    body = base64.b64encode(zlib.compress(json.dumps(event).encode()))
    raven_auth = (
        "Sentry sentry_version=6, sentry_client=raven-python/6.10.0, "
        f"sentry_timestamp=1700000000, sentry_key={Dsn.parse(collector.dsn).public_key}, "
        "sentry_secret=s3cret"
    )
    headers = {"X-Sentry-Auth": raven_auth, "Content-Type": "application/octet-stream"}
    status, answer = await post(
        session, collector, body, endpoint="store", headers=headers, with_auth=False
    )
    assert (status, answer) == (200, {"id": event["event_id"]})
    assert collector.events() == [event]


async def test_missing_event_id_is_assigned(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    status, answer = await post(
        session, collector, b'{"message": "no id"}', endpoint="store", with_auth=True
    )
    assert status == 200
    assert uuid.UUID(answer["id"]).hex == answer["id"]
    assert collector.events() == [{"message": "no id", "event_id": answer["id"]}]


async def test_same_event_twice_is_stored_twice(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    event = new_event(message="again")
    for _ in range(2):
        status, _ = await post(session, collector, event_envelope(event))
        assert status == 200
    assert collector.events() == [event, event]
    stored = await get(session, collector, f"/api/0/events/{uuid.UUID(event['event_id'])}/")
    assert stored["copies"] == 2


async def test_client_reports_are_summed(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    def report(*discards: tuple[str, str, int]) -> dict[str, Any]:
        return {
            "timestamp": 1700000000.5,
            "discarded_events": [
                {"reason": reason, "category": category, "quantity": quantity}
                for reason, category, quantity in discards
            ],
        }

    first = report(("queue_overflow", "error", 3), ("sample_rate", "error", 2))
    second = report(("queue_overflow", "error", 4), ("network_error", "transaction", 1))
    event = new_event(message="with a report")
    for body in (
        envelope(("client_report", first)),
        envelope(("event", event), ("client_report", second), headers={}),
    ):
        status, _ = await post(session, collector, body)
        assert status == 200

    assert collector.discarded_totals() == {
        ("queue_overflow", "error"): 7,
        ("sample_rate", "error"): 2,
        ("network_error", "transaction"): 1,
    }
    assert collector.client_reports() == [first, second]
    assert collector.events() == [event]
    stats = await get(session, collector, "/api/0/stats/")
    assert stats["discarded_total"] == 10
    assert stats["client_reports"] == 2
    assert {"reason": "queue_overflow", "category": "error", "quantity": 7} in stats["discarded"]


async def test_other_item_types_are_counted_not_stored(
    collector: Collector, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="errlink.collector")
    body = envelope(("profile", {"x": 1}), ("transaction", {"spans": []}), ("profile", {}))
    for _ in range(2):
        status, answer = await post(session, collector, body)
        assert (status, answer) == (200, {})
    event = new_event()
    status, _ = await post(session, collector, envelope(("event", event), ("replay_event", {})))
    assert status == 200

    assert collector.events() == [event]
    assert collector.ignored_items == {"profile": 4, "transaction": 2, "replay_event": 1}
    stats = await get(session, collector, "/api/0/stats/")
    assert stats["ignored_items"] == {"replay_event": 1, "profile": 4, "transaction": 2}
    assert (stats["events"], stats["groups"], stats["refusals"]) == (1, 1, {})
    # Each type is said once on the console (with -q it is not).
    not_stored = [r.getMessage() for r in caplog.records if "not storing" in r.getMessage()]
    assert not_stored == [
        "not storing 'profile' items: they are counted (ignored_items on /api/0/stats/)",
        "not storing 'transaction' items: they are counted (ignored_items on /api/0/stats/)",
        "not storing 'replay_event' items: they are counted (ignored_items on /api/0/stats/)",
    ]


async def test_the_count_of_ignored_item_types_is_bounded(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    names = [f"made_up_{n}" for n in range(60)] + ["x" * 65]
    status, _ = await post(session, collector, envelope(*((name, {}) for name in names)))
    assert status == 200
    assert len(collector.ignored_items) == 51
    assert collector.ignored_items["(other types)"] == 11
    assert collector.ignored_items["made_up_0"] == 1


# -- authentication and routing --------------------------------------------------------------


async def test_key_may_come_from_query_or_envelope_dsn(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    by_query, by_dsn = new_event(), new_event()
    status, _ = await post(
        session,
        collector,
        event_envelope(by_query),
        query=f"sentry_key={Dsn.parse(collector.dsn).public_key}",
        with_auth=False,
    )
    assert status == 200
    status, _ = await post(
        session, collector, event_envelope(by_dsn, dsn=collector.dsn), with_auth=False
    )
    assert status == 200
    assert collector.events() == [by_query, by_dsn]


@pytest.mark.parametrize(
    ("headers", "envelope_dsn", "endpoint"),
    [
        ({"X-Sentry-Auth": "Sentry sentry_version=7, sentry_key=wrong"}, None, "envelope"),
        ({}, None, "envelope"),
        ({}, "http://wrong@127.0.0.1:1/1", "envelope"),
        ({}, "not a dsn", "envelope"),
        ({"X-Sentry-Auth": "Sentry sentry_version=7, sentry_key=wrong"}, None, "store"),
        ({}, None, "store"),
    ],
    ids=["wrong-header-key", "no-key", "wrong-dsn-key", "bad-dsn", "store-wrong", "store-none"],
)
async def test_wrong_or_missing_key_is_refused(
    collector: Collector,
    session: aiohttp.ClientSession,
    headers: dict[str, str],
    envelope_dsn: str | None,
    endpoint: str,
) -> None:
    event = new_event()
    extra = {"dsn": envelope_dsn} if envelope_dsn else {}
    body = event_envelope(event, **extra) if endpoint == "envelope" else json.dumps(event).encode()
    status, answer = await post(
        session, collector, body, endpoint=endpoint, headers=headers, with_auth=False
    )
    assert status == 401
    assert answer["detail"]
    assert collector.events() == []
    assert collector.request_statuses == {401: 1}


@pytest.mark.parametrize("endpoint", ["envelope", "store"])
async def test_unknown_project_is_refused(
    collector: Collector, session: aiohttp.ClientSession, endpoint: str
) -> None:
    status, answer = await post(
        session, collector, event_envelope(new_event()), endpoint=endpoint, project="2"
    )
    assert status == 404
    assert "project" in answer["detail"]


# -- malformed input -------------------------------------------------------------------------

_VALID = event_envelope(new_event())
_MALFORMED: dict[str, tuple[bytes, dict[str, str], str, int]] = {
    # name: (body, headers, endpoint, expected status)
    "bad header json": (b"{not json\n", {}, "envelope", 400),
    "header not an object": (b"[1, 2]\n", {}, "envelope", 400),
    "length beyond body": (b'{}\n{"type":"event","length":999}\n{}\n', {}, "envelope", 400),
    "missing item type": (b'{}\n{"length":2}\n{}\n', {}, "envelope", 400),
    "event not json": (b'{}\n{"type":"event"}\nnope\n', {}, "envelope", 400),
    "event not an object": (envelope(("event", [1, 2])), {}, "envelope", 400),
    "invalid event id": (envelope(("event", {"event_id": "xyz"})), {}, "envelope", 400),
    "invalid header event id": (b'{"event_id": 7}\n', {}, "envelope", 400),
    "bad client report": (
        envelope(("client_report", {"discarded_events": [{"reason": "x", "quantity": -1}]})),
        {},
        "envelope",
        400,
    ),
    "deeply nested json": (b'{}\n{"type":"event"}\n' + b"[" * 100_000 + b"\n", {}, "envelope", 400),
    "bad gzip": (b"certainly not gzip", {"Content-Encoding": "gzip"}, "envelope", 400),
    "truncated gzip": (gzip.compress(_VALID)[:-12], {"Content-Encoding": "gzip"}, "envelope", 400),
    "garbage after gzip": (
        gzip.compress(_VALID) + b"junk",
        {"Content-Encoding": "gzip"},
        "envelope",
        400,
    ),
    "unsupported encoding": (_VALID, {"Content-Encoding": "compress"}, "envelope", 415),
    "store not json": (b"{this is not json", {}, "store", 400),
    "store empty": (b"", {}, "store", 400),
    "store json array": (b"[1, 2, 3]", {}, "store", 400),
    "store bad base64": (b"!!not-base64!!", {}, "store", 400),
    "store bad zlib": (base64.b64encode(b"not zlib at all"), {}, "store", 400),
}


@pytest.mark.parametrize("case", list(_MALFORMED))
async def test_malformed_input_is_refused_and_the_next_request_served(
    collector: Collector, session: aiohttp.ClientSession, case: str
) -> None:
    body, headers, endpoint, expected = _MALFORMED[case]
    status, answer = await post(session, collector, body, endpoint=endpoint, headers=headers)
    assert status == expected
    assert isinstance(answer["detail"], str)
    assert answer["detail"]
    assert collector.events() == []

    event = new_event(message="after a bad one")
    status, _ = await post(session, collector, event_envelope(event))
    assert status == 200
    assert collector.events() == [event]
    assert collector.request_statuses == {expected: 1, 200: 1}


async def test_gzip_bomb_is_stopped_while_inflating(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    assert gzip.decompress(b"".join(gzip_of_zeros(3))) == bytes(3 * MiB)  # the generator is sound

    async def one_gib_of_zeros() -> AsyncIterator[bytes]:
        for piece in gzip_of_zeros(1024):
            yield piece

    tracemalloc.start()
    try:
        started = time.perf_counter()
        status, answer = await post(
            session, collector, one_gib_of_zeros(), headers={"Content-Encoding": "gzip"}
        )
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert status == 413
    assert "decompressed" in answer["detail"]
    # The default cap is 100 MiB (an envelope with attachments); inflating the whole GiB would
    # have shown up here.
    assert peak < 3 * DEFAULT_MAX_DECOMPRESSED_BYTES, f"peak traced memory {peak / MiB:.0f} MiB"
    print(f"gzip bomb refused in {elapsed:.2f}s, peak traced memory {peak / MiB:.0f} MiB")
    status, _ = await post(session, collector, event_envelope(new_event()))
    assert status == 200


async def test_body_and_decompressed_size_limits(tmp_path: Path) -> None:
    small = 4096
    async with (
        Collector(
            db_path=tmp_path / "c.db", max_body_bytes=small, max_decompressed_bytes=small
        ) as collector,
        aiohttp.ClientSession() as session,
    ):
        too_big = event_envelope(new_event(message="x" * small))

        async def streamed() -> AsyncIterator[bytes]:  # no Content-Length: chunked upload
            yield too_big

        attempts: list[tuple[bytes | AsyncIterator[bytes], dict[str, str]]] = [
            (too_big, {}),
            (streamed(), {}),
            (gzip.compress(too_big), {"Content-Encoding": "gzip"}),  # small once compressed
        ]
        for body, headers in attempts:
            status, answer = await post(session, collector, body, headers=headers)
            assert status == 413, answer
        assert collector.request_statuses == {413: 3}
        status, _ = await post(session, collector, event_envelope(new_event()))
        assert status == 200


# -- load ------------------------------------------------------------------------------------


async def test_burst_of_envelopes_is_stored_exactly_once(
    collector: Collector, record_property: Any
) -> None:
    count, connections = 2000, 8
    events = [new_event(message=f"burst {i}", extra={"i": i}) for i in range(count)]
    bodies = [event_envelope(event) for event in events]
    headers = {**auth(collector), **ENVELOPE_HEADERS}
    url = Dsn.parse(collector.dsn).envelope_url
    statuses: collections.Counter[int] = collections.Counter()

    async def sender(session: aiohttp.ClientSession, first: int) -> None:
        for index in range(first, count, connections):
            async with session.post(url, data=bodies[index], headers=headers) as response:
                statuses[response.status] += 1

    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(sender(session, k) for k in range(connections)))
        elapsed = time.perf_counter() - started

    assert statuses == {200: count}
    arrived = collections.Counter(event["event_id"] for event in collector.events())
    assert arrived == {event["event_id"]: 1 for event in events}
    rate = count / elapsed
    record_property("envelopes_per_second", round(rate))
    print(f"{count} envelopes over {connections} connections in {elapsed:.2f}s ({rate:.0f}/s)")


# -- read API --------------------------------------------------------------------------------


async def test_read_api_pages_newest_first_and_counts(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    events = [new_event(message=f"m{i}") for i in range(5)]
    for event in events:
        await post(session, collector, event_envelope(event))
    await post(session, collector, b"broken\n")

    page = await get(session, collector, "/api/0/events/?limit=2&offset=1")
    assert (page["count"], page["limit"], page["offset"]) == (5, 2, 1)
    assert [e["payload"]["message"] for e in page["events"]] == ["m3", "m2"]

    stats = await get(session, collector, "/api/0/stats/")
    assert stats["events"] == 5
    assert stats["requests"] == {"200": 5, "400": 1}
    assert stats["discarded"] == []

    for path, status in [
        ("/api/0/events/?limit=0", 400),
        ("/api/0/events/?offset=minus", 400),
        (f"/api/0/events/{uuid.uuid4().hex}/", 404),
        ("/api/0/events/not-an-id/", 404),
        ("/nowhere", 404),
        ("/api/1/envelope/", 405),
    ]:
        async with session.get(f"{collector.url}{path}") as response:
            assert response.status == status, path
            assert (await response.json())["detail"]


async def test_wait_for_events_times_out_with_what_arrived(collector: Collector) -> None:
    with pytest.raises(TimeoutError, match="expected at least 1 events, 0 arrived"):
        await collector.wait_for_events(1, timeout=0.05)


async def test_events_persist_across_restarts_and_after_stop(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    event = new_event(message="kept")
    db_path = tmp_path / "kept.db"
    async with Collector(db_path=db_path) as first:
        await post(session, first, event_envelope(event))
    assert first.events() == [event]  # reads still work once stopped
    async with Collector(db_path=db_path) as second:
        assert second.events() == [event]


def test_options_are_validated() -> None:
    for options in [{"port": 70000}, {"public_key": "a@b"}, {"project_id": "1/2"}]:
        with pytest.raises(ValueError):
            Collector(**options)  # type: ignore[arg-type]


# -- CollectorThread -------------------------------------------------------------------------


def test_collector_thread_serves_sync_code_from_many_threads(
    collector_thread: CollectorThread,
) -> None:
    url = Dsn.parse(collector_thread.dsn).envelope_url
    headers = {**auth(collector_thread), **ENVELOPE_HEADERS}
    sent: list[str] = []
    errors: list[BaseException] = []

    def send(thread_index: int) -> None:
        try:
            for i in range(10):
                event = new_event(message=f"thread {thread_index} #{i}")
                sent.append(event["event_id"])
                request = urllib.request.Request(url, event_envelope(event), headers)
                with urllib.request.urlopen(request, timeout=10) as response:
                    assert response.status == 200
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []

    assert sorted(e["event_id"] for e in collector_thread.wait_for_events(40)) == sorted(sent)
    assert collector_thread.request_statuses == {200: 40}

    bad = urllib.request.Request(url, b"{}\n{}\n{}\n", headers)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(bad, timeout=10)
    assert refused.value.code == 400
    refused.value.close()
    assert collector_thread.event_count() == 40


def test_collector_thread_reports_startup_failure(tmp_path: Path) -> None:
    not_a_database = tmp_path / "garbage.db"
    not_a_database.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(RuntimeError, match="not a database"):
        CollectorThread(db_path=not_a_database).start()
