"""The collector's database: a deleted, replaced or damaged file, a second collector on the same
file, large batches, and what the read API makes of odd stored values."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from errlink._wire.dsn import Dsn
from errlink._wire.envelope import Envelope
from errlink.collector import Collector, StoreError
from errlink.collector._records import WriteBatch, event_record
from errlink.collector._store import EventStore
from errlink.collector._writes import SLICE_ROWS
from tests._support.collector import REPO_ROOT

ENVELOPE_HEADERS = {"Content-Type": "application/x-sentry-envelope"}


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


def new_event(**fields: Any) -> dict[str, Any]:
    return {"event_id": uuid.uuid4().hex, "level": "error", **fields}


def event_envelope(event: dict[str, Any]) -> bytes:
    built = Envelope({"event_id": event["event_id"]})
    built.add_json("event", event)
    return built.to_bytes()


async def send(
    session: aiohttp.ClientSession, collector: Collector, body: bytes
) -> tuple[int, Any]:
    headers = {"X-Sentry-Auth": Dsn.parse(collector.dsn).auth_header(), **ENVELOPE_HEADERS}
    async with session.post(
        f"{collector.url}/api/1/envelope/", data=body, headers=headers
    ) as response:
        return response.status, await response.json()


async def fetch(session: aiohttp.ClientSession, collector: Collector, path: str) -> tuple[int, str]:
    async with session.get(f"{collector.url}{path}") as response:
        return response.status, await response.text()


def strict_json(text: str) -> Any:
    def refuse(constant: str) -> Any:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def damage_the_middle(path: Path) -> None:
    """Overwrite a few pages in the middle of a database file with garbage."""
    size = path.stat().st_size
    page = 4096
    assert size >= 20 * page, f"the database is too small to damage its middle: {size} bytes"
    with path.open("r+b") as file:
        file.seek((size // page // 2) * page)
        file.write(b"\xa5" * (3 * page))


async def serve_until_exit(path: Path) -> subprocess.CompletedProcess[str]:
    """`errlink serve --db path`, expected to refuse to start (bounded, in case it does not)."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "errlink", "serve", "--port", "0", "-q", "--db", str(path)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=30,
    )


async def fill(session: aiohttp.ClientSession, collector: Collector, events: int) -> None:
    for i in range(events):
        status, _ = await send(
            session,
            collector,
            event_envelope(new_event(message=f"e{i}", extra={"pad": "x" * 1500})),
        )
        assert status == 200


# -- a deleted or replaced file -------------------------------------------------------------


async def test_a_deleted_database_file_is_answered_503_and_said_in_the_log_and_the_ui(
    tmp_path: Path, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="errlink.collector")
    path = tmp_path / "events.db"
    async with Collector(db_path=path) as collector:
        status, _ = await send(session, collector, event_envelope(new_event(message="kept")))
        assert status == 200
        path.unlink()  # SQLite would go on writing into the unlinked file

        status, answer = await send(session, collector, event_envelope(new_event(message="lost")))
        assert status == 503  # the client keeps the event and retries
        assert "was deleted" in answer["detail"]
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1
        assert f"the event database {path} was deleted" in errors[0]
        assert "restart the collector" in errors[0]

        status, page = await fetch(session, collector, "/")
        assert status == 503
        assert "was deleted" in page
        status, _ = await fetch(session, collector, "/api/0/events/")
        assert status == 503
        status, _ = await send(session, collector, event_envelope(new_event(message="lost too")))
        assert status == 503
    assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 1  # said once


async def test_a_database_file_replaced_under_the_collector_is_answered_503(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    path = tmp_path / "events.db"
    async with Collector(db_path=path) as collector:
        assert (await send(session, collector, event_envelope(new_event())))[0] == 200
        path.rename(tmp_path / "moved.db")
        with sqlite3.connect(path) as other:
            other.execute("CREATE TABLE unrelated (x)")
        status, answer = await send(session, collector, event_envelope(new_event()))
        assert status == 503
        assert "was replaced by another file" in answer["detail"]


# -- a damaged file ---------------------------------------------------------------------------


async def test_a_damaged_file_is_refused_at_start_saying_what_to_do(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    path = tmp_path / "events.db"
    async with Collector(db_path=path) as collector:
        await fill(session, collector, 60)
    damage_the_middle(path)

    with pytest.raises(StoreError) as refused:
        async with Collector(db_path=path):
            pass
    message = str(refused.value)
    assert f"the event database {path} is damaged" in message
    assert "move it away" in message

    serve = await serve_until_exit(path)
    assert serve.returncode == 1
    assert f"the event database {path} is damaged" in serve.stderr
    assert "move it away" in serve.stderr


async def test_damage_found_while_running_is_answered_503(
    tmp_path: Path, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="errlink.collector")
    path = tmp_path / "events.db"
    async with Collector(db_path=path) as collector:
        await fill(session, collector, 60)
        with sqlite3.connect(path) as db:  # move the events from the WAL into the file
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        damage_the_middle(path)

        status, page = await fetch(session, collector, "/api/0/events/?limit=1000")
        assert status == 503
        assert "is damaged" in page
        status, answer = await send(session, collector, event_envelope(new_event()))
        assert status == 503
        assert "is damaged" in answer["detail"]
        status, page = await fetch(session, collector, "/")
        assert status == 503
        assert "move it away" in page
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert f"{path} is damaged" in errors[0]


# -- one collector per file -------------------------------------------------------------------


async def test_a_second_collector_on_the_same_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    async with Collector(db_path=path):
        with pytest.raises(
            StoreError, match=r"another errlink collector \(process \d+\) is already using"
        ):
            async with Collector(db_path=path):
                pass
        serve = await serve_until_exit(path)
        assert serve.returncode == 1
        assert "another errlink collector" in serve.stderr
        assert str(path) in serve.stderr
    async with Collector(db_path=path):  # the first one let go of the file
        pass


# -- large batches ----------------------------------------------------------------------------


async def test_a_request_arriving_during_a_large_batch_is_committed_before_it(
    tmp_path: Path,
) -> None:
    store = EventStore(tmp_path / "events.db")
    await asyncio.to_thread(store.open)
    try:

        def batch(events: int) -> WriteBatch:
            return WriteBatch(
                events=[
                    event_record(
                        new_event(message=f"m{i % 7}"),
                        project_id="1",
                        fallback_event_id=None,
                        where="event",
                    )
                    for i in range(events)
                ]
            )

        large, small = batch(20 * SLICE_ROWS), batch(1)
        large_write = asyncio.ensure_future(store.write(large))
        await asyncio.sleep(0)  # queued first
        await store.write(small)
        assert not large_write.done()
        await large_write
        assert store.count_events() == 20 * SLICE_ROWS + 1
    finally:
        await asyncio.to_thread(store.close)


# -- what the read API sends -------------------------------------------------------------------


async def test_an_oversized_page_cursor_is_refused_400(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    async with Collector(db_path=tmp_path / "events.db") as collector:
        await send(session, collector, event_envelope(new_event()))
        for cursor in ["1:99999999999999999999999", "1:-99999999999999999999999", "inf:1"]:
            status, body = await fetch(session, collector, f"/api/0/groups/?after={cursor}")
            assert status == 400, body
            assert "after is not a valid page position" in body
            status, _ = await fetch(session, collector, f"/?after={cursor}")
            assert status == 400


async def test_nan_and_infinity_are_stored_as_strings_and_the_read_api_is_strict_json(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    event_id = uuid.uuid4().hex
    payload = (
        f'{{"event_id": "{event_id}", "message": "odd numbers", '
        '"extra": {"a": NaN, "b": Infinity, "c": [-Infinity, 1.5]}}'
    ).encode()
    body = b'{"event_id": "%s"}\n{"type": "event"}\n%s\n' % (event_id.encode(), payload)
    async with Collector(db_path=tmp_path / "events.db") as collector:
        status, _ = await send(session, collector, body)
        assert status == 200
        for path in ["/api/0/events/", f"/api/0/events/{event_id}/"]:
            status, text = await fetch(session, collector, path)
            assert status == 200
            answer = strict_json(text)
        assert answer["payload"]["extra"] == {"a": "NaN", "b": "Infinity", "c": ["-Infinity", 1.5]}
        assert collector.events()[0]["extra"]["a"] == "NaN"
        status, page = await fetch(session, collector, f"/events/{event_id}/")
        assert status == 200
        assert "Infinity" in page


async def test_nan_stored_by_an_older_collector_is_read_as_a_string(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    path = tmp_path / "events.db"
    async with Collector(db_path=path) as collector:
        event = new_event(message="old")
        await send(session, collector, event_envelope(event))
    with sqlite3.connect(path) as db:
        db.execute("UPDATE events SET payload = ?", (json.dumps({**event, "x": float("nan")}),))
    async with Collector(db_path=path) as collector:
        status, text = await fetch(session, collector, f"/api/0/events/{event['event_id']}/")
        assert status == 200
        assert strict_json(text)["payload"]["x"] == "NaN"
