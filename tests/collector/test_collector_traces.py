"""Traces in the collector: events sent by errlink's own client inside `continue_trace` are
stored with their trace id, an event page links the other events of its trace (and only those),
`/traces/<id>/` and `/api/0/traces/<id>/events/` list a trace, and a version 2 database gets
the trace ids of the events it already holds."""

from __future__ import annotations

import asyncio
import html
import json
import re
import sqlite3
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import errlink
from errlink import AsyncClient
from errlink._wire.dsn import Dsn
from errlink._wire.envelope import Envelope
from errlink.collector import Collector, CollectorThread

TRACE_A = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACE_B = "0af7651916cd43dd8448eb211c80319c"
TRACE_BUSY = "5b8efff798038103d269b633813fc60c"
BUSY_EVENTS = 52  # more than an event page lists (50)


@dataclass(frozen=True)
class Sent:
    collector: CollectorThread
    first: str  # trace A, a message
    second: str  # trace A, an exception
    other: str  # trace B
    untraced: str  # contexts.trace.trace_id is not a trace id
    busy: list[str]  # trace BUSY, oldest first


async def _send_through_errlink(dsn: str) -> tuple[str, str, str]:
    async with AsyncClient(dsn, environment="shop") as client:
        # Flushed one by one, so the collector stores them in this order.
        with errlink.continue_trace({"sentry-trace": f"{TRACE_A}-{'1' * 16}-1"}):
            first = await client.capture_message("checkout started")
            assert await client.flush(timeout=10)
            try:
                raise KeyError("basket")
            except KeyError:
                second = await client.capture_exception()
            assert await client.flush(timeout=10)
        with errlink.continue_trace({"traceparent": f"00-{TRACE_B}-{'2' * 16}-01"}):
            other = await client.capture_message("nightly report")
            assert await client.flush(timeout=10)
    assert first is not None
    assert second is not None
    assert other is not None
    return first, second, other


def _send_raw(collector: CollectorThread, *events: dict[str, Any]) -> None:
    envelope = Envelope({})
    for event in events:
        envelope.add_json("event", event)
    dsn = Dsn.parse(collector.dsn)
    request = urllib.request.Request(
        dsn.envelope_url,
        data=envelope.to_bytes(),
        headers={"X-Sentry-Auth": dsn.auth_header()},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def _event(text: str, trace_id: object = None) -> dict[str, Any]:
    event: dict[str, Any] = {"event_id": uuid.uuid4().hex, "level": "error", "message": text}
    if trace_id is not None:
        event["contexts"] = {"trace": {"trace_id": trace_id, "span_id": "3" * 16}}
    return event


@pytest.fixture(scope="module")
def sent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sent]:
    db = tmp_path_factory.mktemp("traces") / "events.db"
    with CollectorThread(db_path=db) as collector:
        first, second, other = asyncio.run(_send_through_errlink(collector.dsn))
        untraced = _event("no trace here", trace_id="not-a-trace")
        busy = [_event(f"busy {n}", trace_id=TRACE_BUSY) for n in range(BUSY_EVENTS)]
        _send_raw(collector, untraced, *busy)
        collector.wait_for_events(3 + 1 + BUSY_EVENTS, timeout=10)
        yield Sent(
            collector, first, second, other, untraced["event_id"], [e["event_id"] for e in busy]
        )


def get(collector: CollectorThread | Collector, path: str) -> tuple[int, str, dict[str, str]]:
    """Status, body and headers of a GET, redirects not followed."""

    class _NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(collector.url + path, timeout=10) as response:
            return response.status, response.read().decode(), dict(response.headers)
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read().decode(), dict(error.headers)


def get_json(collector: CollectorThread | Collector, path: str, status: int = 200) -> Any:
    code, body, _ = get(collector, path)
    assert code == status, body
    return json.loads(body)


def trace_section(page: str) -> str:
    found = re.search(r'<section class="trace" id="trace">(.*?)</section>', page, re.S)
    assert found, "the page has no trace section"
    return found.group(1)


def event_links(markup: str) -> list[str]:
    """The event ids linked from `markup`, in order."""
    return re.findall(r'href="/events/([0-9a-f]{32})/"', markup)


def text_of(markup: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", markup)).split())


# -- storing ----------------------------------------------------------------------------------


def test_events_are_stored_with_the_trace_id_they_carry(sent: Sent) -> None:
    listed = get_json(sent.collector, "/api/0/events/?limit=500")["events"]
    trace_of = {event["event_id"]: event["trace_id"] for event in listed}
    assert trace_of[sent.first] == TRACE_A
    assert trace_of[sent.second] == TRACE_A
    assert trace_of[sent.other] == TRACE_B
    assert trace_of[sent.untraced] is None
    one = get_json(sent.collector, f"/api/0/events/{sent.second}/")
    assert one["trace_id"] == TRACE_A == one["payload"]["contexts"]["trace"]["trace_id"]


# -- the event page ---------------------------------------------------------------------------


def test_an_event_page_links_the_other_event_of_its_trace_and_not_the_unrelated_one(
    sent: Sent,
) -> None:
    status, page, _ = get(sent.collector, f"/events/{sent.first}/")
    assert status == 200
    section = trace_section(page)
    assert "Other events in this trace" in section
    assert event_links(section) == [sent.second]
    assert sent.other not in page
    assert "KeyError" in text_of(section)
    assert f'href="/traces/{TRACE_A}/"' in section
    # The meta line names the trace too, linked to its page.
    assert f'trace <a href="/traces/{TRACE_A}/">{TRACE_A}</a>' in page


def test_an_event_alone_in_its_trace_says_so(sent: Sent) -> None:
    _, page, _ = get(sent.collector, f"/events/{sent.other}/")
    section = trace_section(page)
    assert event_links(section) == []
    assert "No other stored event is in this trace." in text_of(section)
    assert f'href="/traces/{TRACE_B}/"' in section


def test_an_event_without_a_valid_trace_id_has_no_trace_section(sent: Sent) -> None:
    status, page, _ = get(sent.collector, f"/events/{sent.untraced}/")
    assert status == 200
    assert 'id="trace"' not in page
    assert "/traces/" not in page


def test_an_event_page_lists_the_newest_50_others_of_a_busy_trace(sent: Sent) -> None:
    _, page, _ = get(sent.collector, f"/events/{sent.busy[0]}/")
    section = trace_section(page)
    assert event_links(section) == list(reversed(sent.busy[-50:]))
    assert "every event of this trace" in text_of(section)


# -- the trace page ---------------------------------------------------------------------------


def test_the_trace_page_lists_every_event_of_the_trace_newest_first(sent: Sent) -> None:
    status, page, _ = get(sent.collector, f"/traces/{TRACE_A}/")
    assert status == 200
    assert event_links(page) == [sent.second, sent.first]
    assert sent.other not in page
    assert "checkout started" in text_of(page)
    # Upper case is the same trace.
    _, upper, _ = get(sent.collector, f"/traces/{TRACE_A.upper()}/")
    assert event_links(upper) == [sent.second, sent.first]


def test_the_trace_page_pages_back_with_older_links(sent: Sent) -> None:
    _, page, _ = get(sent.collector, f"/traces/{TRACE_BUSY}/?limit=30")
    assert event_links(page) == list(reversed(sent.busy))[:30]
    older = re.search(r'href="([^"]+)">older events', page)
    assert older
    _, rest, _ = get(sent.collector, html.unescape(older.group(1)))
    assert event_links(rest) == list(reversed(sent.busy))[30:]
    assert "older events" not in rest


def test_a_malformed_trace_id_is_a_400_page_and_an_unknown_one_a_404(sent: Sent) -> None:
    for bad in ("xyz", "4bf92f3577b34da6a3ce929d0e0e473", "g" * 32, TRACE_A + "0"):
        status, page, _ = get(sent.collector, f"/traces/{bad}/")
        assert status == 400, bad
        assert "Not a trace id" in page
    status, page, _ = get(sent.collector, f"/traces/{'e' * 32}/")
    assert status == 404
    assert "No stored event carries this trace id" in text_of(page)


def test_searching_a_trace_id_opens_its_page(sent: Sent) -> None:
    status, _, headers = get(sent.collector, f"/?q={TRACE_B}")
    assert status == 302
    assert headers["Location"] == f"/traces/{TRACE_B}/"
    # An event id still wins, and an unknown id is searched as text.
    status, _, headers = get(sent.collector, f"/?q={sent.first}")
    assert (status, headers["Location"]) == (302, f"/events/{sent.first}/")
    status, _, _ = get(sent.collector, f"/?q={'e' * 32}")
    assert status == 200


# -- the API ----------------------------------------------------------------------------------


def test_the_api_lists_a_trace_newest_first_without_payloads(sent: Sent) -> None:
    answer = get_json(sent.collector, f"/api/0/traces/{TRACE_A}/events/")
    assert answer["trace_id"] == TRACE_A
    assert [e["event_id"] for e in answer["events"]] == [sent.second, sent.first]
    assert {e["trace_id"] for e in answer["events"]} == {TRACE_A}
    assert answer["events"][0]["exception_type"] == "KeyError"
    assert "payload" not in answer["events"][0]
    empty = get_json(sent.collector, f"/api/0/traces/{'e' * 32}/events/")
    assert empty == {"trace_id": "e" * 32, "events": []}


def test_the_api_pages_a_trace_with_before(sent: Sent) -> None:
    first = get_json(sent.collector, f"/api/0/traces/{TRACE_BUSY}/events/?limit=40")["events"]
    assert [e["event_id"] for e in first] == list(reversed(sent.busy))[:40]
    rest = get_json(sent.collector, f"/api/0/traces/{TRACE_BUSY}/events/?before={first[-1]['id']}")[
        "events"
    ]
    assert [e["event_id"] for e in rest] == list(reversed(sent.busy))[40:]


def test_the_api_refuses_a_malformed_trace_id_with_400(sent: Sent) -> None:
    answer = get_json(sent.collector, "/api/0/traces/nope/events/", status=400)
    assert "32 hexadecimal characters" in answer["detail"]
    answer = get_json(sent.collector, f"/api/0/traces/{TRACE_A}/events/?before=x", status=400)
    assert "before" in answer["detail"]


# -- migrating a version 2 database -----------------------------------------------------------

# The schema as errlink's version 2 collector created it.
VERSION_2_SCHEMA = """
PRAGMA journal_mode=WAL;
CREATE TABLE groups (id INTEGER PRIMARY KEY, project_id TEXT NOT NULL, hash TEXT NOT NULL,
    title TEXT NOT NULL, culprit TEXT, level TEXT NOT NULL, count INTEGER NOT NULL,
    first_seen REAL NOT NULL, last_seen REAL NOT NULL, latest_event_id INTEGER,
    UNIQUE (project_id, hash));
CREATE INDEX groups_recent ON groups (last_seen);
CREATE INDEX groups_level_recent ON groups (level, last_seen);
CREATE TABLE group_environments (group_id INTEGER NOT NULL REFERENCES groups (id),
    environment TEXT NOT NULL, count INTEGER NOT NULL, last_seen REAL NOT NULL,
    PRIMARY KEY (group_id, environment)) WITHOUT ROWID;
CREATE INDEX group_environments_recent ON group_environments (environment, last_seen, group_id);
CREATE TABLE events (id INTEGER PRIMARY KEY, received_at REAL NOT NULL,
    project_id TEXT NOT NULL, event_id TEXT NOT NULL, level TEXT NOT NULL, environment TEXT,
    release TEXT, exception_type TEXT, exception_value TEXT, message TEXT,
    payload TEXT NOT NULL, group_id INTEGER REFERENCES groups (id));
CREATE INDEX events_event_id ON events (event_id);
CREATE INDEX events_group ON events (group_id, id);
CREATE TABLE client_reports (id INTEGER PRIMARY KEY, received_at REAL NOT NULL,
    project_id TEXT NOT NULL, payload TEXT NOT NULL);
CREATE TABLE discarded_events (report_id INTEGER NOT NULL REFERENCES client_reports (id),
    reason TEXT NOT NULL, category TEXT NOT NULL, quantity INTEGER NOT NULL);
CREATE INDEX discarded_events_reason ON discarded_events (reason, category);
PRAGMA user_version = 2;
"""


def write_version_2_database(path: Path, payloads: list[str]) -> None:
    """A version 2 file holding `payloads` (stored JSON texts) in one group."""
    with sqlite3.connect(path) as db:
        db.executescript(VERSION_2_SCHEMA)
        db.execute(
            "INSERT INTO groups VALUES (1, '1', 'h', 'legacy', NULL, 'error', ?, 1.0, ?, ?)",
            (len(payloads), float(len(payloads)), len(payloads)),
        )
        db.executemany(
            "INSERT INTO events (id, received_at, project_id, event_id, level, message, "
            "payload, group_id) VALUES (?, ?, '1', ?, 'error', 'legacy', ?, 1)",
            [(n, float(n), f"{n:032x}", payload) for n, payload in enumerate(payloads, 1)],
        )
    db.close()


async def _send_in_trace(dsn: str, trace_id: str) -> str | None:
    async with AsyncClient(dsn) as client:
        with errlink.continue_trace({"sentry-trace": f"{trace_id}-{'4' * 16}"}):
            event_id = await client.capture_message("after the migration")
        assert await client.flush(timeout=10)
    return event_id


def test_a_version_2_database_keeps_its_events_and_gets_their_trace_ids(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    payloads = [
        json.dumps(_event("legacy", TRACE_A)),
        json.dumps(_event("legacy", TRACE_A.upper())),
        json.dumps(_event("legacy", TRACE_B)),
        json.dumps(_event("legacy")),  # no trace context
        json.dumps(_event("legacy", 12345)),  # not a string
        '{"message": "legacy", "extra": {"ratio": NaN}, "contexts": {"trace": {"trace_id": "'
        + TRACE_B
        + '"}}}',  # NaN, as version 1 stored it
        "[1, 2]",  # not an object
    ]
    write_version_2_database(path, payloads)
    with CollectorThread(db_path=path) as collector:
        assert len(collector.events()) == len(payloads)
        assert [g.count for g in collector.groups()] == [len(payloads)]
        a = get_json(collector, f"/api/0/traces/{TRACE_A}/events/")["events"]
        assert [e["id"] for e in a] == [2, 1]
        b = get_json(collector, f"/api/0/traces/{TRACE_B}/events/")["events"]
        assert [e["id"] for e in b] == [6, 3]
        status, page, _ = get(collector, f"/events/{1:032x}/")
        assert status == 200
        assert event_links(trace_section(page)) == [f"{2:032x}"]
        new = asyncio.run(_send_in_trace(collector.dsn, TRACE_A))
        a = get_json(collector, f"/api/0/traces/{TRACE_A}/events/")["events"]
        assert [e["event_id"] for e in a] == [new, f"{2:032x}", f"{1:032x}"]
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 3
        stored = dict(db.execute("SELECT id, trace_id FROM events WHERE id <= 7").fetchall())
        assert stored == {1: TRACE_A, 2: TRACE_A, 3: TRACE_B, 4: None, 5: None, 6: TRACE_B, 7: None}
        plan = db.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM events WHERE trace_id = ? ORDER BY id DESC",
            (TRACE_A,),
        ).fetchall()
        assert "events_trace" in str(plan)
        assert db.execute("PRAGMA quick_check").fetchone()[0] == "ok"
    db.close()


def test_a_migration_that_fails_leaves_the_version_2_file_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    write_version_2_database(path, [json.dumps(_event("legacy", TRACE_A))])
    with sqlite3.connect(path) as db:
        # Stands for a crash mid-way: the backfill fails after the column was added.
        db.execute(
            "CREATE TRIGGER interrupt BEFORE UPDATE ON events "
            "BEGIN SELECT RAISE(ABORT, 'interrupted'); END"
        )
    db.close()
    with pytest.raises(Exception, match="interrupted"), CollectorThread(db_path=path):
        pass
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 2
        columns = [row[1] for row in db.execute("PRAGMA table_info(events)")]
        assert "trace_id" not in columns
        assert db.execute("SELECT count(*) FROM events").fetchone()[0] == 1
    db.close()
