"""The collector's side of attachments and feedback: ingestion and its limits, the stored rows,
the download's headers, the JSON API and the pages, over HTTP on 127.0.0.1."""

from __future__ import annotations

import io
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from errlink._wire.envelope import Envelope, Item
from errlink.collector import DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_DECOMPRESSED_BYTES, Collector
from errlink.collector._attachments import MAX_ATTACHMENT_BYTES
from errlink.collector._download import DOWNLOAD_SECURITY_POLICY, content_disposition

MiB = 1024 * 1024
HTML = b"<!doctype html><script>document.title = 'ran'</script><p>hello</p>"


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as started:
        yield started


def envelope_url(collector: Collector) -> str:
    return f"{collector.url}/api/1/envelope/"


def envelope_with(
    collector: Collector, event_id: str | None, *items: Item, event: bool = True
) -> Envelope:
    headers: dict[str, Any] = {"dsn": collector.dsn}
    if event_id is not None:
        headers["event_id"] = event_id
    built = Envelope(headers)
    if event:
        built.add_json("event", {"event_id": event_id, "message": "with extras"})
    built.items.extend(items)
    return built


def attachment(data: bytes, filename: str, content_type: str = "text/plain") -> Item:
    return Item("attachment", data, {"filename": filename, "content_type": content_type})


async def post(session: aiohttp.ClientSession, collector: Collector, body: Any) -> tuple[int, Any]:
    if isinstance(body, bytes):
        body = io.BytesIO(body)  # aiohttp warns of large raw bodies
    async with session.post(envelope_url(collector), data=body) as answer:
        return answer.status, await answer.json()


async def get_json(session: aiohttp.ClientSession, url: str) -> Any:
    async with session.get(url) as answer:
        assert answer.status == 200, await answer.text()
        return await answer.json()


# -- the download's headers, unit by unit ----------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("report.txt", "attachment; filename=\"report.txt\"; filename*=UTF-8''report.txt"),
        (
            "<script>.html",
            "attachment; filename=\"_script_.html\"; filename*=UTF-8''%3Cscript%3E.html",
        ),
        (
            'a"b\\c;\r\n.txt',
            "attachment; filename=\"a_b_c;__.txt\"; filename*=UTF-8''a%22b%5Cc%3B%0D%0A.txt",
        ),
        (
            "résumé 1.pdf",
            "attachment; filename=\"r_sum_ 1.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9%201.pdf",
        ),
    ],
)
def test_content_disposition_is_always_an_attachment_and_encodes_the_name(
    name: str, expected: str
) -> None:
    assert content_disposition(name) == expected


def test_the_limits_are_sentrys() -> None:
    assert 20 * MiB == MAX_ATTACHMENT_BYTES
    assert DEFAULT_MAX_BODY_BYTES == DEFAULT_MAX_DECOMPRESSED_BYTES == 100 * MiB


# -- ingestion --------------------------------------------------------------------------------


async def test_attachments_and_feedback_are_stored_and_served(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    event_id = uuid.uuid4().hex
    feedback = {
        "event_id": uuid.uuid4().hex,
        "type": "feedback",
        "contexts": {"feedback": {"message": "it hurt", "associated_event_id": event_id}},
    }
    body = envelope_with(
        collector,
        event_id,
        attachment(HTML, "../../etc/<script>.html", "text/html"),
        attachment(b"\x00\x01", "raw.bin", "not a type\r\nX-Evil: 1"),
        Item("feedback", Envelope({}).add_json("x", feedback).payload, {}),
    ).to_bytes()
    status, answer = await post(session, collector, body)
    assert (status, answer) == (200, {"id": event_id})

    listed = await get_json(session, f"{collector.url}/api/0/events/{event_id}/attachments/")
    first, second = listed["attachments"]
    # Only the last part of a path is kept; a content type that is not one is not passed on.
    assert (first["filename"], first["content_type"], first["size"]) == (
        "<script>.html",
        "text/html",
        len(HTML),
    )
    assert (second["filename"], second["content_type"]) == ("raw.bin", "application/octet-stream")

    async with session.get(collector.url + first["download"]) as download:
        assert download.status == 200
        assert await download.read() == HTML
        assert download.headers["Content-Type"] == "text/html"
        assert download.headers["Content-Disposition"] == content_disposition("<script>.html")
        assert download.headers["X-Content-Type-Options"] == "nosniff"
        assert download.headers["Content-Security-Policy"] == DOWNLOAD_SECURITY_POLICY

    [stored] = (await get_json(session, f"{collector.url}/api/0/feedback/"))["feedback"]
    assert (stored["message"], stored["associated_event_id"]) == ("it hurt", event_id)

    async with session.get(f"{collector.url}/events/{event_id}/") as page:
        html = await page.text()
    assert "&lt;script&gt;.html" in html
    assert "<script>" not in html
    assert f'href="{first["download"]}"' in html
    assert "it hurt" in html


async def test_an_attachment_over_20_mib_is_refused_with_413(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    event_id = uuid.uuid4().hex
    too_big = attachment(bytes(MAX_ATTACHMENT_BYTES + 1), "big.bin")
    status, answer = await post(
        session, collector, envelope_with(collector, event_id, too_big).to_bytes()
    )
    assert status == 413
    assert "more than the limit" in answer["detail"]
    assert collector.event_count() == 0  # nothing of the envelope is stored
    just_fits = attachment(bytes(MAX_ATTACHMENT_BYTES), "fits.bin")
    status, _ = await post(
        session, collector, envelope_with(collector, event_id, just_fits).to_bytes()
    )
    assert status == 200
    [stored] = (await get_json(session, f"{collector.url}/api/0/events/{event_id}/attachments/"))[
        "attachments"
    ]
    assert stored["size"] == MAX_ATTACHMENT_BYTES


async def test_an_envelope_over_100_mib_is_refused_with_413(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield envelope_with(collector, uuid.uuid4().hex).to_bytes()
        chunk = bytes(MiB)
        for _ in range(101):
            yield chunk

    status, _answer = await post(session, collector, body())
    assert status == 413
    assert collector.event_count() == 0


async def test_malformed_attachment_and_feedback_items_are_refused(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    no_event_id = envelope_with(collector, None, attachment(b"x", "x.txt"), event=False)
    status, answer = await post(session, collector, no_event_id.to_bytes())
    assert status == 400
    assert "event_id" in answer["detail"]

    no_message = envelope_with(collector, uuid.uuid4().hex, event=False)
    no_message.add_json("feedback", {"contexts": {"feedback": {"name": "x"}}})
    status, answer = await post(session, collector, no_message.to_bytes())
    assert status == 400
    assert "message" in answer["detail"]

    bad_report = envelope_with(collector, uuid.uuid4().hex, event=False)
    bad_report.add_json("user_report", {"event_id": "nope", "comments": "x"})
    status, _ = await post(session, collector, bad_report.to_bytes())
    assert status == 400


async def test_the_api_answers_404_for_what_is_not_there(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    for path in (
        "/api/0/attachments/999/download/",
        "/api/0/attachments/abc/download/",
        "/api/0/events/not-an-id/attachments/",
    ):
        async with session.get(collector.url + path) as answer:
            assert answer.status == 404, path
    empty = await get_json(session, f"{collector.url}/api/0/events/{uuid.uuid4().hex}/attachments/")
    assert empty == {"attachments": []}
    async with session.get(f"{collector.url}/feedback/") as page:
        assert "No feedback yet" in await page.text()


async def test_a_pruned_event_takes_its_attachments_with_it(tmp_path: Any) -> None:
    async with (
        Collector(db_path=tmp_path / "r.db", max_events=2) as collector,
        aiohttp.ClientSession() as session,
    ):
        ids = [uuid.uuid4().hex for _ in range(4)]
        for number, event_id in enumerate(ids):
            envelope = envelope_with(collector, event_id, attachment(b"%d" % number, "n.txt"))
            assert (await post(session, collector, envelope.to_bytes()))[0] == 200

        async def kept(event_id: str) -> int:
            url = f"{collector.url}/api/0/events/{event_id}/attachments/"
            return len((await get_json(session, url))["attachments"])

        # One group ("with extras"): its latest event and the one before it stay.
        assert [await kept(event_id) for event_id in ids] == [0, 0, 1, 1]
