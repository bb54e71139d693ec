"""The disk outbox's storage: one SQLite file in WAL mode, shared safely by many processes.

Why SQLite: every spill is one transaction however many events it holds, a transaction is
atomic (a process killed mid-write leaves the previous state, never a half-written record),
and `BEGIN IMMEDIATE` gives the cross-process lock that lets several processes (gunicorn
workers) claim disjoint rows. One file per event would need a write, an fsync-free rename and a
directory scan per event, and a claim protocol of its own; see `benchmarks/bench_outbox.py` for
the figures behind the choice.

Rows are leased before they are sent: a claim sets `lease_owner`, `lease_pid` and
`lease_until` in one transaction, so no other process takes them until the lease expires or its
holder is found dead (the pid no longer exists: a WAL database is only ever shared on one host).
A row is deleted after the server accepted it, by its claimer only.

Rows age by the outbox's own clock (`outbox_clock`), not by the wall clock: it advances only by
the monotonic time that live processes observe between operations on the file, so a wall-clock
step or a process whose clock is wrong never ages a row, and a row is never older by this clock
than the time it really spent in the outbox. Time while no process uses the file (or across a
reboot) is not counted. Leases still use the wall clock: a step there can at worst send a row
twice or hold it until its holder is found dead.

The store is used from one thread (the outbox's writer thread); it is not thread-safe.
`synchronous=NORMAL` in WAL mode survives the death of any process; only a power loss or an OS
crash may lose the last transactions, and even then the file stays consistent.
"""

from __future__ import annotations

import os
import random
import sqlite3
import time
import weakref
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path

from .clock import advance_clock, current_boot_id
from .files import create_private_file
from .records import Claim, OutboxUnavailable, Removal, SpillRecord, StoredEvent
from .schema import (
    APPLICATION_ID,
    MIGRATE_TO_2,
    MIGRATE_TO_3,
    MIGRATED_ROWS_BORN,
    OUR_TABLES,
    READABLE_VERSIONS,
    SCHEMA_STATEMENTS,
    SCHEMA_VERSION,
)

_COMPRESS_LEVEL = 1
# Each statement waits this long for another process's lock; callers retry above it, so a
# waiting writer never holds up a fork for long (see _outbox.py).
BUSY_TIMEOUT_MS = 50


class OutboxStore:
    """Append, claim, delete and release outbox rows for one target (a DSN or a transport).

    `max_bytes` bounds the stored (compressed) payload bytes of the whole file: beyond it the
    oldest rows nobody is sending are deleted ("cache_overflow"). Rows older than `max_age`
    seconds by the outbox's clock (see the module doc) are deleted when rows are appended or
    claimed ("network_error"). `clock` is the wall clock (leases, and the `created` column);
    `monotonic` and `boot_id` (this boot's identity; read from the system when None) drive the
    outbox's clock.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        target: str,
        max_bytes: int,
        max_age: float,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        boot_id: str | None = None,
        pid_alive: Callable[[int], bool] | None = None,
    ) -> None:
        self.path = Path(path)
        self.target = target
        self.max_bytes = max_bytes
        self.max_age = max_age
        # Random tokens: which rows this store wrote, and which leases it holds.
        self.origin = random.getrandbits(62)
        self.claimer = random.getrandbits(62)
        self._clock = clock
        self._monotonic = monotonic
        self._boot = boot_id if boot_id is not None else current_boot_id()
        self._pid_alive = pid_alive or _pid_alive
        self._pid = os.getpid()
        self._db: sqlite3.Connection | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def open(self) -> None:
        """Create or open the file (mode 0600, its directory created 0700 when missing)."""
        if self._db is not None:
            return
        try:
            create_private_file(self.path)
        except OSError as exc:
            raise OutboxUnavailable(f"cannot create {self.path}: {exc.strerror or exc}") from exc
        try:
            db = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        except sqlite3.Error as exc:
            raise OutboxUnavailable(f"cannot open {self.path}: {exc}") from exc
        try:
            db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise OutboxUnavailable(f"{self.path}: WAL mode unavailable (got {mode!r})")
            db.execute("PRAGMA synchronous = NORMAL")
            db.execute("PRAGMA journal_size_limit = 4194304")
            with _immediate(db):
                self._check_is_ours(db)
                columns = {row[1] for row in db.execute("PRAGMA table_info(outbox)")}
                migrating = bool(columns) and "born" not in columns
                if migrating:
                    db.execute(MIGRATE_TO_2)
                if columns and "extras" not in columns:
                    db.execute(MIGRATE_TO_3)
                for statement in SCHEMA_STATEMENTS:
                    db.execute(statement)
                if migrating:
                    db.execute(MIGRATED_ROWS_BORN, (self._elapsed(db),))
                db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.DatabaseError as exc:
            db.close()
            if is_busy(exc):
                raise  # another process is creating it: the caller retries
            raise OutboxUnavailable(f"{self.path} is not a usable outbox: {exc}") from exc
        except BaseException:
            db.close()
            raise
        self._db = db
        _open_stores.add(self)

    def _check_is_ours(self, db: sqlite3.Connection) -> None:
        """Refuse another application's database, or an outbox of another format."""
        application = db.execute("PRAGMA application_id").fetchone()[0]
        version = db.execute("PRAGMA user_version").fetchone()[0]
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if application not in (0, APPLICATION_ID) or not tables <= OUR_TABLES:
            raise OutboxUnavailable(f"{self.path} is a database of another application")
        if version not in READABLE_VERSIONS:
            raise OutboxUnavailable(
                f"{self.path} has outbox format {version}; this errlink reads "
                f"format {SCHEMA_VERSION}"
            )

    def close(self) -> None:
        db, self._db = self._db, None
        _open_stores.discard(self)
        if db is not None:
            db.close()

    @property
    def is_open(self) -> bool:
        return self._db is not None

    # -- writing ------------------------------------------------------------------------------

    def append(self, records: Iterable[SpillRecord]) -> list[Removal]:
        """Store `records` in one transaction, then enforce the age and size bounds.

        Returns what the bounds removed (possibly some of `records`, when they alone exceed
        the size bound).
        """
        db = self._conn()
        now = self._clock()
        blobs = [
            (record, zlib.compress(record.payload, _COMPRESS_LEVEL), _compressed(record.extras))
            for record in records
        ]
        with _immediate(db):
            elapsed = self._elapsed(db)
            db.executemany(
                "INSERT INTO outbox (created, born, target, origin, item_type, category,"
                " event_id, payload, extras, size) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        now,
                        elapsed,
                        self.target,
                        self.origin,
                        record.item_type,
                        record.category,
                        record.event_id,
                        blob,
                        extras,
                        len(blob) + (len(extras) if extras else 0),
                    )
                    for record, blob, extras in blobs
                ],
            )
            removals = self._expire(db, now, elapsed)
            removals += self._evict_over_size(db, now)
        return removals

    def remove(self, row_id: int) -> bool:
        """Delete a row this store claimed (after the server took it). False if it was gone."""
        db = self._conn()
        with _immediate(db):
            cursor = db.execute(
                "DELETE FROM outbox WHERE id = ? AND lease_owner = ?", (row_id, self.claimer)
            )
        return cursor.rowcount == 1

    def release(self, row_ids: Iterable[int] | None = None) -> None:
        """Give back leases this store holds (all of them when `row_ids` is None)."""
        db = self._conn()
        with _immediate(db):
            if row_ids is None:
                db.execute(
                    "UPDATE outbox SET lease_owner = NULL, lease_pid = NULL, lease_until = 0"
                    " WHERE lease_owner = ?",
                    (self.claimer,),
                )
            else:
                db.executemany(
                    "UPDATE outbox SET lease_owner = NULL, lease_pid = NULL, lease_until = 0"
                    " WHERE id = ? AND lease_owner = ?",
                    [(row_id, self.claimer) for row_id in row_ids],
                )

    # -- claiming -----------------------------------------------------------------------------

    def claim(self, limit: int, lease_seconds: float) -> Claim:
        """Lease up to `limit` of this target's oldest free rows for `lease_seconds`.

        Free: never leased, lease expired, or leased by a process that no longer exists.
        Expired rows are deleted on the way; unreadable rows are deleted and reported.
        """
        db = self._conn()
        now = self._clock()
        with _immediate(db):
            dead = self._dead_claimers(db, now)
            removals = self._expire(db, now, self._elapsed(db), dead)
            free, free_args = _free_clause(now, dead)
            rows = db.execute(
                "SELECT id, event_id, item_type, category, payload, origin, extras FROM outbox"
                f" WHERE target = ? AND {free} ORDER BY id LIMIT ?",
                (self.target, *free_args, limit),
            ).fetchall()
            events: list[StoredEvent] = []
            unreadable: dict[tuple[str, bool], int] = {}
            for row_id, event_id, item_type, category, blob, origin, extras_blob in rows:
                own = origin == self.origin
                try:
                    payload = zlib.decompress(blob)
                    extras = zlib.decompress(extras_blob) if extras_blob else None
                except (zlib.error, TypeError):
                    db.execute("DELETE FROM outbox WHERE id = ?", (row_id,))
                    key = (str(category), own)
                    unreadable[key] = unreadable.get(key, 0) + 1
                    continue
                events.append(
                    StoredEvent(
                        row_id, str(event_id), str(item_type), str(category), payload, own, extras
                    )
                )
            removals += [
                Removal("internal_sdk_error", category, own, n)
                for (category, own), n in unreadable.items()
            ]
            db.executemany(
                "UPDATE outbox SET lease_owner = ?, lease_pid = ?, lease_until = ? WHERE id = ?",
                [(self.claimer, self._pid, now + lease_seconds, e.row_id) for e in events],
            )
            leased_elsewhere = db.execute(
                "SELECT count(*) FROM outbox WHERE target = ? AND lease_until > ?"
                " AND (lease_owner IS NULL OR lease_owner != ?)",
                (self.target, now, self.claimer),
            ).fetchone()[0]
        return Claim(events, removals, int(leased_elsewhere))

    # -- reading ------------------------------------------------------------------------------

    def count(self) -> int:
        """Rows stored for this target."""
        row = (
            self._conn()
            .execute("SELECT count(*) FROM outbox WHERE target = ?", (self.target,))
            .fetchone()
        )
        return int(row[0])

    def totals(self) -> tuple[int, int]:
        """(rows, stored bytes) in the whole file, all targets."""
        rows, size = (
            self._conn().execute("SELECT rows, bytes FROM outbox_totals WHERE id = 0").fetchone()
        )
        return int(rows), int(size)

    # -- internals ----------------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise OutboxUnavailable("the outbox is not open")
        return self._db

    def _dead_claimers(self, db: sqlite3.Connection, now: float) -> list[int]:
        pids = db.execute(
            "SELECT DISTINCT lease_pid FROM outbox WHERE lease_until > ? AND lease_pid IS NOT NULL"
            " AND lease_pid != ?",
            (now, self._pid),
        ).fetchall()
        return [int(pid) for (pid,) in pids if not self._pid_alive(int(pid))]

    def _elapsed(self, db: sqlite3.Connection) -> float:
        return advance_clock(db, self._monotonic(), self._boot)

    def _expire(
        self, db: sqlite3.Connection, now: float, elapsed: float, dead: list[int] | None = None
    ) -> list[Removal]:
        cutoff = elapsed - self.max_age
        oldest = db.execute("SELECT min(born) FROM outbox").fetchone()
        if oldest is None or oldest[0] is None or oldest[0] >= cutoff:
            return []  # nothing is old enough yet (rows of a format-1 writer have no age)
        free, free_args = _free_clause(now, dead or [])
        where = f"born < ? AND {free}"
        args = (cutoff, *free_args)
        groups = db.execute(
            f"SELECT category, origin = ?, count(*) FROM outbox WHERE {where}"
            " GROUP BY category, origin = ?",
            (self.origin, *args, self.origin),
        ).fetchall()
        if not groups:
            return []
        db.execute(f"DELETE FROM outbox WHERE {where}", args)
        return [Removal("network_error", str(c), bool(own), int(n)) for c, own, n in groups]

    def _evict_over_size(self, db: sqlite3.Connection, now: float) -> list[Removal]:
        total = int(db.execute("SELECT bytes FROM outbox_totals WHERE id = 0").fetchone()[0])
        excess = total - self.max_bytes
        if excess <= 0:
            return []
        freed = 0
        last_id = None
        counts: dict[tuple[str, bool], int] = {}
        # Oldest first, skipping rows another process is sending right now.
        for row_id, size, category, origin in db.execute(
            "SELECT id, size, category, origin FROM outbox WHERE lease_until <= ? ORDER BY id",
            (now,),
        ):
            freed += size
            last_id = row_id
            key = (str(category), origin == self.origin)
            counts[key] = counts.get(key, 0) + 1
            if freed >= excess:
                break
        if last_id is None:
            return []
        db.execute("DELETE FROM outbox WHERE id <= ? AND lease_until <= ?", (last_id, now))
        return [Removal("cache_overflow", c, own, n) for (c, own), n in counts.items()]


class _immediate:
    """A `BEGIN IMMEDIATE` transaction: the write lock up front, so claims never interleave."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self._db.execute("COMMIT")
        elif self._db.in_transaction:
            self._db.execute("ROLLBACK")


def is_busy(exc: BaseException) -> bool:
    """True for SQLite's "another connection holds the lock" errors (worth retrying)."""
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _free_clause(now: float, dead: list[int]) -> tuple[str, tuple[float | int, ...]]:
    if not dead:
        return "lease_until <= ?", (now,)
    marks = ", ".join("?" * len(dead))
    return f"(lease_until <= ? OR lease_pid IN ({marks}))", (now, *dead)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


# A connection inherited through fork() must never be used or closed in the child: closing it
# could checkpoint or delete the WAL the parent is still using. The child keeps it referenced.
_open_stores: weakref.WeakSet[OutboxStore] = weakref.WeakSet()
_inherited: list[sqlite3.Connection] = []


def _keep_inherited_connections() -> None:
    for store in list(_open_stores):
        if store._db is not None:
            _inherited.append(store._db)
            store._db = None
    _open_stores.clear()


os.register_at_fork(after_in_child=_keep_inherited_connections)


def _compressed(extras: bytes | None) -> bytes | None:
    return zlib.compress(extras, _COMPRESS_LEVEL) if extras else None
