"""The outbox's SQLite store on its own: order, leases between claimers, bounds, bad files."""

from __future__ import annotations

import os
import sqlite3
import stat
from contextlib import closing
from pathlib import Path

import pytest

from errlink._outbox.records import OutboxUnavailable, Removal, SpillRecord, outbox_target
from errlink._outbox.schema import SCHEMA_VERSION
from tests._support import FakeClock
from tests._support.outbox import opened, record


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "outbox.sqlite3"


def test_rows_come_back_oldest_first_with_their_payload(path: Path) -> None:
    store = opened(path)
    assert store.append([record(n) for n in range(5)]) == []
    claim = store.claim(10, lease_seconds=60)
    assert [e.event_id for e in claim.events] == [f"{n:032x}" for n in range(5)]
    assert claim.events[2].payload == record(2).payload
    assert all(e.own and e.item_type == "event" and e.category == "error" for e in claim.events)
    assert store.remove(claim.events[0].row_id) is True
    assert store.remove(claim.events[0].row_id) is False  # already gone
    assert store.count() == 4
    assert store.totals()[0] == 4


def test_a_leased_row_is_invisible_to_other_claimers_until_released_or_expired(path: Path) -> None:
    clock = FakeClock()
    first, second = opened(path, clock=clock), opened(path, clock=clock)
    first.append([record(n) for n in range(4)])
    taken = first.claim(2, lease_seconds=30)
    rest = second.claim(10, lease_seconds=3600)
    assert [e.event_id for e in taken.events] + [e.event_id for e in rest.events] == [
        f"{n:032x}" for n in range(4)
    ]
    assert rest.leased_elsewhere == 2
    assert second.claim(10, lease_seconds=3600).events == []
    # The second claimer cannot delete what the first holds.
    assert second.remove(taken.events[0].row_id) is False

    first.release([taken.events[0].row_id])
    again = second.claim(10, lease_seconds=3600)
    assert [e.row_id for e in again.events] == [taken.events[0].row_id]
    assert again.events[0].own is False  # written by `first`

    clock.now += 31  # the first claimer's remaining lease runs out
    expired = second.claim(10, lease_seconds=30)
    assert [e.row_id for e in expired.events] == [taken.events[1].row_id]


def test_rows_leased_by_a_dead_process_are_claimable_at_once(path: Path) -> None:
    alive = {os.getpid(): True}
    claimer = opened(path)
    claimer.append([record(1)])
    claimed = claimer.claim(1, lease_seconds=3600)
    with (
        closing(sqlite3.connect(path)) as db,
        db,
    ):  # as if another process (pid 999999) held the lease
        db.execute("UPDATE outbox SET lease_pid = 999999")
    other = opened(path, pid_alive=lambda pid: alive.get(pid, False))
    assert [e.row_id for e in other.claim(5, 60).events] == [claimed.events[0].row_id]


def test_size_bound_evicts_the_oldest_free_rows_and_reports_them(path: Path) -> None:
    store = opened(path, max_bytes=450)
    # Incompressible payloads of ~100 bytes each.
    big = [SpillRecord(f"{n:032x}", "event", "error", os.urandom(100)) for n in range(3)]
    assert store.append(big) == []
    held = store.claim(1, lease_seconds=60)  # the oldest is being sent: never evicted
    removals = store.append(
        [SpillRecord(f"{n:032x}", "event", "error", os.urandom(100)) for n in range(3, 6)]
    )
    assert removals == [Removal("cache_overflow", "error", True, 2)]
    rows, size = store.totals()
    assert size <= 450
    remaining = [e.event_id for e in opened(path).claim(10, 60).events]
    assert remaining == [f"{n:032x}" for n in (3, 4, 5)]
    assert store.remove(held.events[0].row_id) is True
    assert rows == 4


def test_rows_older_than_max_age_expire_as_network_error(path: Path) -> None:
    clock = FakeClock()
    store = opened(path, monotonic=clock, max_age=60.0)
    store.append([record(1), record(2, category="transaction")])
    clock.now += 30
    store.append([record(3)])
    clock.now += 31
    claim = store.claim(10, lease_seconds=10)
    assert sorted(claim.removals, key=lambda r: r.category) == [
        Removal("network_error", "error", True, 1),
        Removal("network_error", "transaction", True, 1),
    ]
    assert [e.event_id for e in claim.events] == [f"{3:032x}"]


def test_an_unreadable_row_is_dropped_without_blocking_the_others(path: Path) -> None:
    store = opened(path)
    store.append([record(1), record(2), record(3)])
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("UPDATE outbox SET payload = x'00ff00ff' WHERE event_id = ?", (f"{2:032x}",))
    claim = store.claim(10, 60)
    assert [e.event_id for e in claim.events] == [f"{1:032x}", f"{3:032x}"]
    assert claim.removals == [Removal("internal_sdk_error", "error", True, 1)]
    assert store.count() == 2


def test_targets_never_see_each_others_rows(path: Path) -> None:
    one, two = opened(path, target="one"), opened(path, target="two")
    one.append([record(1)])
    two.append([record(2)])
    assert [e.event_id for e in one.claim(10, 60).events] == [f"{1:032x}"]
    assert [e.event_id for e in two.claim(10, 60).events] == [f"{2:032x}"]


def test_targets_differ_by_endpoint_and_key_but_not_by_secret() -> None:
    from errlink import Dsn

    base = outbox_target(Dsn.parse("https://k@example.com/1"), None)
    assert outbox_target(Dsn.parse("https://k:secret@example.com/1"), None) == base
    assert outbox_target(Dsn.parse("https://other@example.com/1"), None) != base
    assert outbox_target(Dsn.parse("https://k@example.com/2"), None) != base
    assert "secret" not in outbox_target(Dsn.parse("https://k:secret@example.com/1"), None)


def test_the_file_and_its_directory_are_private(tmp_path: Path) -> None:
    path = tmp_path / "new-dir" / "outbox.sqlite3"
    store = opened(path)
    store.append([record(1)])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    wal = path.with_name(path.name + "-wal")
    assert wal.exists()
    assert stat.S_IMODE(wal.stat().st_mode) == 0o600


def test_a_file_that_is_not_an_outbox_is_refused_and_left_alone(path: Path) -> None:
    path.write_bytes(b"my precious notes\n" * 100)
    with pytest.raises(OutboxUnavailable, match="not a usable outbox"):
        opened(path)
    assert path.read_bytes() == b"my precious notes\n" * 100


def test_another_applications_database_is_refused_and_left_alone(path: Path) -> None:
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
        db.execute("INSERT INTO invoices (total) VALUES (9.5)")
    with pytest.raises(OutboxUnavailable, match="another application"):
        opened(path)
    with closing(sqlite3.connect(path)) as db, db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        assert tables == {"invoices"}


def test_another_format_version_is_refused(path: Path) -> None:
    opened(path).close()
    with closing(sqlite3.connect(path)) as db, db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(OutboxUnavailable, match="format"):
        opened(path)


def test_the_store_uses_wal_mode_and_survives_reopening(path: Path) -> None:
    store = opened(path)
    store.append([record(n) for n in range(3)])
    store.close()
    with closing(sqlite3.connect(path)) as db, db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert opened(path).count() == 3


def test_what_travels_with_an_item_comes_back_with_it(path: Path) -> None:
    store = opened(path)
    extras = b'{"trace":{"trace_id":"' + b"a" * 32 + b'"}}\n'
    store.append([SpillRecord("e" * 32, "event", "error", b"{}", extras), record(1)])
    claim = store.claim(10, lease_seconds=60)
    assert [e.extras for e in claim.events] == [extras, None]


def test_a_format_2_file_is_upgraded_and_keeps_its_rows(path: Path) -> None:
    opened(path).append([record(n) for n in range(2)])
    with closing(sqlite3.connect(path)) as db:
        db.execute("ALTER TABLE outbox DROP COLUMN extras")
        db.execute("PRAGMA user_version = 2")
        db.commit()
    claim = opened(path).claim(10, lease_seconds=60)
    assert [(e.payload, e.extras) for e in claim.events] == [
        (record(0).payload, None),
        (record(1).payload, None),
    ]
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
