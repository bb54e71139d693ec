"""The outbox ages rows by a clock that survives wall-clock steps; its files are private."""

from __future__ import annotations

import os
import sqlite3
import stat
import zlib
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from errlink._outbox.records import Removal
from errlink._outbox.schema import SCHEMA_VERSION
from tests._support import FakeClock
from tests._support.outbox import TARGET, opened, record

DAY = 24 * 3600.0


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "outbox.sqlite3"


def test_a_wall_clock_step_of_two_days_expires_nothing(path: Path) -> None:
    wall, mono = FakeClock(), FakeClock(500.0)
    store = opened(path, clock=wall, monotonic=mono, boot_id="boot-a")
    store.append([record(1), record(2)])
    wall.advance(2 * DAY)
    mono.advance(1.0)
    claim = store.claim(10, lease_seconds=60)
    assert claim.removals == []
    assert [e.event_id for e in claim.events] == [f"{1:032x}", f"{2:032x}"]


def test_rows_of_a_producer_two_days_behind_are_not_expired(path: Path) -> None:
    mono = FakeClock(500.0)
    producer = opened(path, clock=FakeClock(1_000_000.0 - 2 * DAY), monotonic=mono, boot_id="b")
    consumer = opened(path, clock=FakeClock(1_000_000.0), monotonic=mono, boot_id="b")
    producer.append([record(1)])
    mono.advance(1.0)
    claim = consumer.claim(10, lease_seconds=60)
    assert claim.removals == []
    assert [e.event_id for e in claim.events] == [f"{1:032x}"]


def test_rows_expire_by_the_time_live_processes_saw_pass(path: Path) -> None:
    mono = FakeClock(500.0)
    first = opened(path, monotonic=mono, boot_id="b", max_age=60.0)
    second = opened(path, monotonic=mono, boot_id="b", max_age=60.0)
    first.append([record(1)])
    mono.advance(40)
    second.append([record(2)])  # another process advances the same clock
    mono.advance(25)
    claim = first.claim(10, lease_seconds=60)
    assert claim.removals == [Removal("network_error", "error", True, 1)]
    assert [e.event_id for e in claim.events] == [f"{2:032x}"]


def test_a_reboot_does_not_count_as_time_in_the_outbox(path: Path) -> None:
    before = opened(path, monotonic=FakeClock(9_000_000.0), boot_id="before", max_age=60.0)
    before.append([record(1)])
    before.close()
    # After a reboot the monotonic clock starts again: its reading says nothing about the gap.
    after = opened(path, monotonic=FakeClock(30.0), boot_id="after", max_age=60.0)
    claim = after.claim(10, lease_seconds=60)
    assert claim.removals == []
    assert [e.event_id for e in claim.events] == [f"{1:032x}"]


def _format_1_file(path: Path, created: float) -> None:
    with closing(sqlite3.connect(path)) as db, db:
        db.executescript(
            """
            CREATE TABLE outbox (
                id INTEGER PRIMARY KEY, created REAL NOT NULL, target TEXT NOT NULL,
                origin INTEGER NOT NULL, item_type TEXT NOT NULL, category TEXT NOT NULL,
                event_id TEXT NOT NULL, size INTEGER NOT NULL, payload BLOB NOT NULL,
                lease_owner INTEGER, lease_pid INTEGER, lease_until REAL NOT NULL DEFAULT 0);
            CREATE INDEX outbox_by_target ON outbox (target, id);
            CREATE INDEX outbox_by_lease ON outbox (lease_until);
            CREATE TABLE outbox_totals (
                id INTEGER PRIMARY KEY CHECK (id = 0), bytes INTEGER NOT NULL,
                rows INTEGER NOT NULL);
            INSERT INTO outbox_totals (id, bytes, rows) VALUES (0, 0, 0);
            CREATE TRIGGER outbox_added AFTER INSERT ON outbox BEGIN
                UPDATE outbox_totals SET bytes = bytes + NEW.size, rows = rows + 1 WHERE id = 0;
            END;
            CREATE TRIGGER outbox_removed AFTER DELETE ON outbox BEGIN
                UPDATE outbox_totals SET bytes = bytes - OLD.size, rows = rows - 1 WHERE id = 0;
            END;
            PRAGMA application_id = 1163021387;
            PRAGMA user_version = 1;
            """
        )
        for n in (1, 2):
            blob = zlib.compress(record(n).payload)
            db.execute(
                "INSERT INTO outbox (created, target, origin, item_type, category, event_id,"
                " size, payload) VALUES (?, ?, 7, 'event', 'error', ?, ?, ?)",
                (created, TARGET, f"{n:032x}", len(blob), blob),
            )


def test_rows_of_a_format_1_file_are_kept_and_age_from_the_upgrade(path: Path) -> None:
    _format_1_file(path, created=1.0)  # written by a clock far in the past
    mono = FakeClock(100.0)
    store = opened(path, monotonic=mono, boot_id="b", max_age=60.0)
    first = store.claim(1, lease_seconds=600)
    assert first.removals == []
    assert [e.payload for e in first.events] == [record(1).payload]
    mono.advance(61)
    rest = store.claim(10, lease_seconds=60)
    assert rest.removals == [Removal("network_error", "error", False, 1)]  # row 2; 1 is leased
    assert store.totals()[0] == 1
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


@pytest.fixture
def umask_0() -> Iterator[None]:
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def test_missing_parent_directories_are_created_private_under_umask_0(
    tmp_path: Path, umask_0: None
) -> None:
    path = tmp_path / "a" / "b" / "c" / "outbox.sqlite3"
    opened(path).close()
    for directory in (tmp_path / "a", tmp_path / "a" / "b", tmp_path / "a" / "b" / "c"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
