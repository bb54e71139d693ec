"""The collector's structured logs: ingestion of `log` items, bounded storage, the JSON API, the
logs page and the event page's link to it, over real HTTP."""

from __future__ import annotations

import html
import json
import sqlite3
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from errlink._wire.envelope import Envelope, Item
from errlink.collector import CollectorThread, _logs

TRACE_A = "a" * 32
TRACE_B = "b" * 32


def record(body: str, level: str = "info", trace_id: str = TRACE_A, **attrs: Any) -> dict[str, Any]:
    return {
        "timestamp": 1_700_000_000.5,
        "trace_id": trace_id,
        "level": level,
        "severity_number": {"info": 9, "error": 17, "warn": 13, "debug": 5}.get(level, 9),
        "body": body,
        "attributes": {k: {"value": v, "type": "string"} for k, v in attrs.items()},
    }


def post(server: CollectorThread, items: list[Item]) -> int:
    body = Envelope({}, items).to_bytes()
    request = urllib.request.Request(
        f"{server.url}/api/1/envelope/?sentry_key=errlink", data=body, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def log_item(records: list[dict[str, Any]], count: int | None = None) -> Item:
    headers: dict[str, Any] = {"content_type": "application/vnd.sentry.items.log+json"}
    headers["item_count"] = len(records) if count is None else count
    return Item("log", json.dumps({"items": records}).encode(), headers)


def get(server: CollectorThread, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(server.url + path, timeout=10) as answer:
            return int(answer.status), answer.read().decode()
    except urllib.error.HTTPError as error:
        return int(error.code), error.read().decode()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorThread]:
    db = tmp_path_factory.mktemp("collector-logs") / "collector.db"
    with CollectorThread(db_path=db, public_key="errlink") as started:
        status = post(
            started,
            [
                log_item(
                    [
                        record("cache warmed", "debug", TRACE_B),
                        record("payment 7 failed", "error", TRACE_A, order="7"),
                        record("payment 8 done", "info", TRACE_A),
                        record('<script>alert("x")</script>', "warn", TRACE_B),
                    ]
                ),
                log_item([record("second item", "info", TRACE_B)]),
            ],
        )
        assert status == 200
        yield started


def api(server: CollectorThread, query: str = "") -> dict[str, Any]:
    status, text = get(server, f"/api/0/logs/?{query}")
    assert status == 200, text
    return dict(json.loads(text))


def test_records_are_stored_one_row_each_grouped_by_item(server: CollectorThread) -> None:
    logs = api(server)["logs"]
    assert [log["body"] for log in logs] == [
        "second item",
        '<script>alert("x")</script>',
        "payment 8 done",
        "payment 7 failed",
        "cache warmed",
    ]
    items = {log["item_id"] for log in logs}
    assert len(items) == 2
    failed = next(log for log in logs if log["body"] == "payment 7 failed")
    assert failed["attributes"] == {"order": "7"}
    assert failed["level"] == "error"
    assert failed["severity_number"] == 17
    assert failed["trace_id"] == TRACE_A


def test_the_api_filters_by_level_text_and_trace_and_pages(server: CollectorThread) -> None:
    assert [log["body"] for log in api(server, "level=error")["logs"]] == ["payment 7 failed"]
    assert [log["body"] for log in api(server, "level=warning")["logs"]] == [
        '<script>alert("x")</script>'
    ]
    assert [log["body"] for log in api(server, "q=payment")["logs"]] == [
        "payment 8 done",
        "payment 7 failed",
    ]
    assert {log["body"] for log in api(server, f"trace={TRACE_A}")["logs"]} == {
        "payment 8 done",
        "payment 7 failed",
    }
    assert api(server, "q=100%25")["logs"] == []  # LIKE wildcards are searched as text
    first = api(server, "limit=2")
    second = api(server, f"limit=2&before={first['next']}")
    assert [log["body"] for log in second["logs"]] == ["payment 8 done", "payment 7 failed"]
    assert get(server, "/api/0/logs/?level=loud")[0] == 400
    assert get(server, "/api/0/logs/?trace=nope")[0] == 400


def test_malformed_log_items_are_refused(server: CollectorThread) -> None:
    assert post(server, [log_item([record("x")], count=3)]) == 400
    assert post(server, [Item("log", b'{"items": 5}', {})]) == 400
    assert post(server, [log_item([{"level": "info"}])]) == 400
    too_many = [record(f"r{n}") for n in range(_logs.MAX_RECORDS_PER_ITEM + 1)]
    assert post(server, [log_item(too_many)]) == 413
    assert all(log["body"] != "x" for log in api(server, "limit=1000")["logs"])


def test_storage_keeps_only_the_newest_rows() -> None:
    db = sqlite3.connect(":memory:")
    _logs.create_tables(db)
    rows = _logs.log_records(
        {"items": [record(f"r{n}") for n in range(25)]},
        {},
        project_id="1",
        item_index=0,
        where="item 0",
    )
    for start in range(0, 25, 5):
        _logs.insert(db, 0.0, rows[start : start + 5], max_rows=10)
    kept = _logs.newest(db, _logs.LogFilter(), before=None, limit=100)
    assert [log.body for log in kept] == [f"r{n}" for n in range(24, 14, -1)]


def test_the_logs_page_lists_filters_and_escapes(server: CollectorThread) -> None:
    status, page = get(server, "/logs/")
    assert status == 200
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "<script>alert" not in page
    assert page.index("second item") < page.index("cache warmed")  # newest first
    status, page = get(server, f"/logs/?level=error&trace={TRACE_A}")
    assert "payment 7 failed" in page
    assert "payment 8 done" not in page
    status, page = get(server, "/logs/?q=warmed&level=bogus&trace=bogus")
    assert status == 200
    assert "cache warmed" in page
    assert "second item" not in page


def test_the_event_page_links_to_the_logs_of_its_trace(server: CollectorThread) -> None:
    event_id = uuid.uuid4().hex
    event = {
        "event_id": event_id,
        "level": "error",
        "message": "boom",
        "contexts": {"trace": {"trace_id": TRACE_A, "span_id": "1" * 16}},
    }
    assert post(server, [Item("event", json.dumps(event).encode(), {})]) == 200
    status, page = get(server, f"/events/{event_id}/")
    assert status == 200
    link = f'href="/logs/?trace={TRACE_A}"'
    assert link in page
    assert "logs in this trace" in html.unescape(page)
