"""Attachments from the client to errlink's collector on 127.0.0.1, checked on what it stored.

Blobs and files travel as `attachment` items of their event's envelope; what is over a limit,
beyond the queue's attachment budget, or rate limited is dropped and counted in the client
report (category `attachment`, in bytes) while its event still arrives.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import errlink
from errlink import AsyncClient, Attachment
from errlink.collector import Collector, CollectorThread
from errlink.sync import Client
from tests._support import wait_until_async
from tests.faults._proxy import FORWARD, FaultProxy, Respond

MiB = 1024 * 1024
FAST = {"http_timeout": 2.0, "outbox_drain_rate": 1000.0}


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as started:
        yield started


async def stored_attachments(
    session: aiohttp.ClientSession, base_url: str, event_id: str
) -> list[dict[str, Any]]:
    async with session.get(f"{base_url}/api/0/events/{event_id}/attachments/") as answer:
        assert answer.status == 200
        body = await answer.json()
    return list(body["attachments"])


async def download(session: aiohttp.ClientSession, base_url: str, link: str) -> bytes:
    async with session.get(base_url + link) as answer:
        assert answer.status == 200
        return await answer.read()


def raise_and_capture() -> BaseException:
    try:
        raise RuntimeError("with attachments")
    except RuntimeError as exc:
        return exc


async def test_a_5_mib_attachment_arrives_byte_for_byte(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    blob = os.urandom(5 * MiB)
    async with AsyncClient(collector.dsn) as client:
        event_id = await client.capture_exception(
            raise_and_capture(),
            attachments=[Attachment(blob, filename="dump.bin", content_type="application/x-dump")],
        )
        assert event_id is not None
        assert await client.flush(30)
    [stored] = await stored_attachments(session, collector.url, event_id)
    assert (stored["filename"], stored["content_type"], stored["size"]) == (
        "dump.bin",
        "application/x-dump",
        5 * MiB,
    )
    assert stored["attachment_type"] == "event.attachment"
    assert await download(session, collector.url, stored["download"]) == blob
    assert [event["event_id"] for event in collector.events()] == [event_id]


async def test_a_30_mib_attachment_is_dropped_and_counted_while_its_event_arrives(
    collector: Collector, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    too_big = bytes(30 * MiB)
    big_file = tmp_path / "huge.log"
    big_file.write_bytes(b"x" * (30 * MiB))
    async with AsyncClient(collector.dsn) as client:
        first = await client.capture_message(
            "blob too big", attachments=[{"bytes": too_big, "filename": "big.bin"}]
        )
        second = await client.capture_message(
            "file too big", attachments=[Attachment(path=big_file), Attachment(b"small")]
        )
        assert await client.flush(30)
        assert client.stats.discarded == {("send_error", "attachment"): 60 * MiB}
        assert client.stats.dropped == {}
    assert first is not None
    assert second is not None
    assert {event["event_id"] for event in collector.events()} == {first, second}
    assert await stored_attachments(session, collector.url, first) == []
    [small] = await stored_attachments(session, collector.url, second)
    assert small["filename"] == "attachment"
    assert small["size"] == 5
    # The client report reached the collector: attachments are counted in bytes, as Sentry does.
    assert collector.discarded_totals() == {("send_error", "attachment"): 60 * MiB}


async def test_a_path_is_read_by_the_sender_not_by_the_caller(
    collector: Collector, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    later = tmp_path / "written-after-capture.txt"
    missing = tmp_path / "never-written.txt"
    async with AsyncClient(collector.dsn) as client:
        errlink.add_attachment(path=later, content_type="text/plain")
        # Nothing here suspends, so the sender has not run when capture returns.
        event_id = await client.capture_message(
            "read later", attachments=[Attachment(path=str(missing))]
        )
        later.write_text("written after the capture returned")
        assert await client.flush(30)
        assert client.stats.discarded == {("internal_sdk_error", "attachment"): 1}
    assert event_id is not None
    [stored] = await stored_attachments(session, collector.url, event_id)
    assert stored["filename"] == "written-after-capture.txt"
    content = await download(session, collector.url, stored["download"])
    assert content == b"written after the capture returned"
    assert collector.discarded_totals() == {("internal_sdk_error", "attachment"): 1}


async def test_the_queue_holds_at_most_its_attachment_budget_and_every_event_goes_on(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    async with AsyncClient(collector.dsn, queue_max_attachment_bytes=3 * MiB) as client:
        ids = []
        for n in range(6):  # no suspension in between: all six are queued at once
            ids.append(
                await client.capture_message(
                    f"burst {n}", attachments=[Attachment(bytes(MiB), filename=f"{n}.bin")]
                )
            )
        assert await client.flush(30)
        assert client.stats.discarded == {("queue_overflow", "attachment"): 3 * MiB}
    assert {event["event_id"] for event in collector.events()} == set(ids)
    kept = [len(await stored_attachments(session, collector.url, str(i))) for i in ids]
    assert kept == [1, 1, 1, 0, 0, 0]


async def test_scope_attachments_and_call_site_ones_and_before_send(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    seen: list[list[str]] = []

    def before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
        names = [attachment.filename for attachment in hint.get("attachments", [])]
        seen.append(names)
        if "secret.txt" in names:  # a hook may take some out
            hint["attachments"] = [a for a in hint["attachments"] if a.filename != "secret.txt"]
        return event

    async with AsyncClient(collector.dsn, before_send=before_send) as client:
        with errlink.new_scope():
            errlink.add_attachment(bytes=b"config", filename="config.json")
            inside = await client.capture_message(
                "inside", attachments=[Attachment(b"s", filename="secret.txt")]
            )
        outside = await client.capture_message("outside")
        assert await client.flush(30)
    assert seen == [["config.json", "secret.txt"], []]
    assert inside is not None
    assert outside is not None
    [config] = await stored_attachments(session, collector.url, inside)
    assert (config["filename"], config["content_type"]) == ("config.json", "application/json")
    assert await stored_attachments(session, collector.url, outside) == []


async def test_bad_attachment_arguments_are_ignored_never_raised(
    collector: Collector, caplog: pytest.LogCaptureFixture
) -> None:
    async with AsyncClient(collector.dsn) as client:
        errlink.add_attachment()  # neither bytes nor path
        errlink.add_attachment(bytes=b"x", path="/tmp/x")  # both
        event_id = await client.capture_message("still sent", attachments=[42, {"nope": 1}])
        assert await client.flush(30)
    assert event_id is not None
    assert [event["event_id"] for event in collector.events()] == [event_id]
    assert "errlink.add_attachment" in caplog.text
    assert "errlink.attachments" in caplog.text
    with pytest.raises(TypeError, match="bytes= or path="):
        Attachment()


def test_the_sync_client_and_the_module_functions_send_attachments(
    collector_thread: CollectorThread,
) -> None:
    with Client(collector_thread.dsn) as client:
        first = client.capture_message("sync", attachments=[Attachment(b"one", filename="1.txt")])
        token = errlink._capture.binding.enter_client(client.core)  # as an integration does
        try:
            second = errlink.capture_exception(
                raise_and_capture(), attachments=[Attachment(b"two", filename="2.txt")]
            )
        finally:
            errlink._capture.binding.leave_client(token)
        assert client.flush(30)
    assert first is not None
    assert second is not None
    collector_thread.wait_for_events(2, timeout=30)

    async def names(event_id: str) -> list[str]:
        async with aiohttp.ClientSession() as session:
            found = await stored_attachments(session, collector_thread.url, event_id)
        return [a["filename"] for a in found]

    assert asyncio.run(names(first)) == ["1.txt"]
    assert asyncio.run(names(second)) == ["2.txt"]


# -- rate limits and the outbox, behind the loopback fault proxy ------------------------------


@pytest.fixture
async def proxy(collector: Collector) -> AsyncIterator[FaultProxy]:
    started = await FaultProxy(collector.url).start()
    yield started
    await started.stop()


async def test_a_rate_limit_on_attachments_drops_them_and_keeps_the_events(
    collector: Collector, proxy: FaultProxy, session: aiohttp.ClientSession
) -> None:
    limit = Respond(429, {"X-Sentry-Rate-Limits": "60:attachment:organization"})
    proxy.policy = lambda n: limit if n == 0 else FORWARD
    async with AsyncClient(proxy.dsn(), **FAST) as client:
        refused = await client.capture_message("answered 429", attachments=[Attachment(b"a")])
        assert await client.flush(30)
        assert client.stats.dropped == {"ratelimit_backoff": 1}
        ids = [
            await client.capture_message(f"kept {n}", attachments=[Attachment(b"12345")])
            for n in range(3)
        ]
        assert await client.flush(30)
        stats = client.stats
    assert refused is not None
    assert {event["event_id"] for event in collector.events()} == set(ids)
    for event_id in ids:
        assert await stored_attachments(session, collector.url, str(event_id)) == []
    assert stats.discarded == {("ratelimit_backoff", "attachment"): 1 + 3 * 5}
    await wait_until_async(
        lambda: collector.discarded_totals().get(("ratelimit_backoff", "attachment")) == 16
    )
    assert collector.discarded_totals()[("ratelimit_backoff", "error")] == 1


async def test_attachments_spill_to_the_outbox_with_their_event(
    collector: Collector, proxy: FaultProxy, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    outbox = tmp_path / "outbox.sqlite3"
    blob = os.urandom(256 * 1024)
    path = tmp_path / "state.txt"
    path.write_text("state at the time")
    await proxy.go_down()
    first = AsyncClient(proxy.dsn(), outbox=outbox, **FAST)
    event_id = await first.capture_message(
        "while down", attachments=[Attachment(blob, filename="blob.bin"), Attachment(path=path)]
    )
    assert await first.aclose(10)
    assert (first.stats.in_outbox, first.stats.dropped) == (1, {})
    path.unlink()  # read when it was spilled: not needed any more

    await proxy.come_back()
    async with AsyncClient(proxy.dsn(), outbox=outbox, **FAST):
        await collector.wait_for_events(1, timeout=30)
    assert event_id is not None
    stored = await stored_attachments(session, collector.url, event_id)
    assert [a["filename"] for a in stored] == ["blob.bin", "state.txt"]
    assert await download(session, collector.url, stored[0]["download"]) == blob
    assert await download(session, collector.url, stored[1]["download"]) == b"state at the time"
