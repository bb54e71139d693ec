"""User feedback from the client to errlink's collector on 127.0.0.1, checked on what it stored.

`capture_feedback` sends the protocol's `feedback` item (an event payload with
``contexts.feedback``); the collector links it to its event and shows it on the event's page.
The older `user_report` item is accepted too.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

import errlink
from errlink import AsyncClient
from errlink._wire.envelope import Envelope
from errlink.collector import Collector, CollectorThread
from errlink.sync import Client


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as started:
        yield started


async def feedback_of(
    session: aiohttp.ClientSession, collector: Collector, event_id: str | None = None
) -> list[dict[str, Any]]:
    query = f"?event_id={event_id}" if event_id else ""
    async with session.get(f"{collector.url}/api/0/feedback/{query}") as answer:
        assert answer.status == 200
        return list((await answer.json())["feedback"])


async def test_feedback_is_linked_to_its_event_and_shown_on_its_page(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    async with AsyncClient(collector.dsn, environment="prod") as client:
        try:
            raise ValueError("checkout failed")
        except ValueError:
            event_id = await client.capture_exception()
        assert event_id is not None
        errlink.set_tag("page", "checkout")
        feedback_id = await client.capture_feedback(
            "The pay button did nothing",
            name="Ann Lee",
            email="ann@example.com",
            associated_event_id=event_id,
        )
        assert await client.flush(30)
    assert feedback_id is not None
    assert feedback_id != event_id
    [stored] = await feedback_of(session, collector, event_id)
    assert stored == {
        "id": stored["id"],
        "kind": "feedback",
        "feedback_id": feedback_id,
        "associated_event_id": event_id,
        "received_at": stored["received_at"],
        "message": "The pay button did nothing",
        "name": "Ann Lee",
        "contact_email": "ann@example.com",
    }
    # Feedback is not an error: the collector stores it apart from the events.
    assert [event["event_id"] for event in collector.events()] == [event_id]
    async with session.get(f"{collector.url}/events/{event_id}/") as page:
        html = await page.text()
    assert "User feedback" in html
    assert "The pay button did nothing" in html
    assert "ann@example.com" in html


async def test_the_feedback_item_carries_scope_data_and_the_trace(collector: Collector) -> None:
    sent: list[dict[str, Any]] = []

    def keep(feedback: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
        sent.append(feedback)
        return feedback

    async with AsyncClient(collector.dsn, release="1.2", before_send_feedback=keep) as client:
        errlink.set_user({"id": "42"})
        with errlink.continue_trace({"sentry-trace": "a" * 32 + "-" + "b" * 16 + "-1"}):
            feedback_id = await client.capture_feedback("hello")
        assert await client.flush(30)
    [payload] = sent
    assert payload["event_id"] == feedback_id
    assert payload["type"] == "feedback"
    assert payload["release"] == "1.2"
    assert payload["user"] == {"id": "42"}
    assert payload["contexts"]["feedback"] == {"message": "hello"}
    assert payload["contexts"]["trace"]["trace_id"] == "a" * 32


async def test_before_send_feedback_changes_or_drops_it(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    def hook(feedback: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any] | None:
        context = feedback["contexts"]["feedback"]
        if "spam" in context["message"]:
            return None
        context.pop("contact_email", None)  # keep no e-mail addresses
        return feedback

    async with AsyncClient(collector.dsn, before_send_feedback=hook) as client:
        dropped = await client.capture_feedback("buy spam", email="x@example.com")
        kept = await client.capture_feedback("real words", name="Bo", email="bo@example.com")
        assert await client.flush(30)
        stats = client.stats
    assert dropped is None
    assert kept is not None
    assert stats.dropped_by_category == {("before_send", "feedback"): 1}
    [stored] = await feedback_of(session, collector)
    assert (stored["message"], stored["name"], stored["contact_email"]) == (
        "real words",
        "Bo",
        None,
    )
    assert stored["associated_event_id"] is None
    assert collector.discarded_totals() == {("before_send", "feedback"): 1}


async def test_feedback_without_an_event_is_listed_on_the_feedback_page(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    async with AsyncClient(collector.dsn) as client:
        assert await client.capture_feedback("Love the new <b>dark mode</b>")
        assert await client.flush(30)
    async with session.get(f"{collector.url}/feedback/") as page:
        assert page.status == 200
        html = await page.text()
    assert "Love the new &lt;b&gt;dark mode&lt;/b&gt;" in html
    assert "anonymous" in html


async def test_bad_feedback_is_not_sent_and_never_raises(
    collector: Collector, caplog: pytest.LogCaptureFixture
) -> None:
    async with AsyncClient(collector.dsn) as client:
        assert await client.capture_feedback("") is None
        assert await client.capture_feedback(None) is None  # type: ignore[arg-type]
        sent = await client.capture_feedback("ok", associated_event_id="not an id")
        assert await client.flush(30)
    assert sent is not None
    assert "errlink.capture_feedback" in caplog.text
    async with AsyncClient() as disabled:
        assert await disabled.capture_feedback("nobody listens") is None


def test_the_sync_client_and_errlink_capture_feedback(collector_thread: CollectorThread) -> None:
    with Client(collector_thread.dsn) as client:
        event_id = client.capture_message("sync page failed")
        first = client.capture_feedback("sync words", associated_event_id=event_id)
        token = errlink._capture.binding.enter_client(client.core)
        try:
            second = errlink.capture_feedback("module words", name="Cy")
        finally:
            errlink._capture.binding.leave_client(token)
        assert client.flush(30)
    assert first is not None
    assert second is not None

    async def stored() -> list[dict[str, Any]]:
        async with aiohttp.ClientSession() as session:
            answer = await session.get(f"{collector_thread.url}/api/0/feedback/")
            return list((await answer.json())["feedback"])

    rows = asyncio.run(stored())
    assert [(r["message"], r["associated_event_id"]) for r in rows] == [
        ("module words", None),
        ("sync words", event_id),
    ]


async def test_the_collector_accepts_the_older_user_report_item(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    event_id = uuid.uuid4().hex
    envelope = Envelope({"event_id": event_id, "dsn": collector.dsn})
    envelope.add_json("event", {"event_id": event_id, "message": "old sdk"})
    envelope.add_json(
        "user_report",
        {"event_id": event_id, "name": "Di", "email": "di@example.com", "comments": "broken"},
    )
    url = f"{collector.url}/api/{collector.dsn.rsplit('/', 1)[1]}/envelope/"
    async with session.post(url, data=envelope.to_bytes()) as answer:
        assert answer.status == 200, await answer.text()
    [stored] = await feedback_of(session, collector, event_id)
    assert (stored["kind"], stored["message"], stored["name"], stored["contact_email"]) == (
        "user_report",
        "broken",
        "Di",
        "di@example.com",
    )
    async with session.get(f"{collector.url}/events/{event_id}/") as page:
        assert "broken" in await page.text()
    assert json.loads(json.dumps(stored))  # plain JSON all the way
