"""SQLite storage for received events and client reports.

Writes go through one writer thread that commits whatever has queued up in a single transaction
(group commit): a burst costs few commits, a lone event is committed at once, and the event loop
only waits on a future. A large batch is written in slices: when requests arrive meanwhile, the
slices so far are committed and those requests go next (so such a batch is not atomic: if a
later slice fails, the earlier ones stay stored). `write()` returns once the rows are committed, so
anything acknowledged to a client is visible to every reader. Every event is filed into its
group in the same transaction; retention prunes the oldest events after the commit, in its own
transactions. Reads open their own short-lived connection (WAL lets them run beside the writer),
so they work from any thread, even after the store is closed.

Once the file is found deleted, replaced or damaged (`_integrity`), the store is unusable: every
write and read raises StoreError saying so, and ingestion answers 503 until a restart.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, TypeVar

from . import _attachments, _feedback, _logs, _monitors, _queries, _release_health
from ._group_index import GroupIndex
from ._integrity import (
    FileIdentity,
    StoreError,
    WriterLock,
    change_of,
    damage,
    damaged_message,
    is_damage,
    vanished_message,
)
from ._queries import (
    EventSummary,
    GroupCursor,
    GroupFilter,
    StoredCounts,
    StoredEvent,
    StoredGroup,
)
from ._records import WriteBatch
from ._retention import Retention
from ._schema import SchemaError, prepare_schema
from ._writes import SLICE_ROWS, Part, Submission, batch_slices, insert_batch, settle, transaction

__all__ = ["EventStore", "StoreError"]

logger = logging.getLogger("errlink.collector")

_T = TypeVar("_T")

# Upper bound on requests folded into one transaction, so a flood still commits regularly.
_MAX_REQUESTS_PER_COMMIT = 1000


_STOP = object()


class EventStore:
    def __init__(self, path: Path, *, max_events: int | None = None) -> None:
        self.path = path
        self._absolute = path.absolute()
        self._read_uri = self._absolute.as_uri() + "?mode=rw"
        self._queue: queue.SimpleQueue[Submission | object] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._connection: sqlite3.Connection | None = None
        self._lock = WriterLock(self._absolute)
        self._identity: FileIdentity | None = None
        self._failure: str | None = None  # why the database cannot be used any more
        self._failure_lock = threading.Lock()
        self._closed = False
        # Makes "not closed, so queue it" atomic with closing: nothing is queued after _STOP.
        self._closing_lock = threading.Lock()
        self._groups = GroupIndex()
        self._retention = Retention(max_events)

    @property
    def max_events(self) -> int | None:
        return self._retention.max_events

    @property
    def failure(self) -> str | None:
        """Why the database cannot be used any more (deleted, replaced, damaged), or None."""
        return self._failure

    # -- lifecycle -------------------------------------------------------------------------

    def open(self) -> None:
        """Lock, check, create or migrate the database and start the writer thread (blocking).

        Raises StoreError when another collector uses the file, or when it is damaged.
        """
        self._lock.acquire()
        try:
            connection = self._connect()
        except BaseException:
            self._lock.release()
            raise
        self._connection = connection
        self._writer = threading.Thread(
            target=self._write_loop, name="errlink-collector-writer", daemon=True
        )
        self._writer.start()

    def _connect(self) -> sqlite3.Connection:
        try:
            connection = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open event database {self.path}: {exc}") from None
        try:
            problems = damage(connection)
            if problems is not None:
                raise StoreError(damaged_message(self.path, problems, running=False))
            _prepare(connection)
            self._retention.start(connection)
            self._identity = FileIdentity.of(self._absolute)
        except (sqlite3.Error, SchemaError, OSError) as exc:
            connection.close()
            if isinstance(exc, sqlite3.Error) and is_damage(exc):
                raise StoreError(damaged_message(self.path, str(exc), running=False)) from None
            raise StoreError(f"cannot use event database {self.path}: {exc}") from None
        except BaseException:
            connection.close()
            raise
        return connection

    def close(self) -> None:
        """Commit what is queued, stop the writer thread and close its connection (blocking)."""
        with self._closing_lock:
            if self._closed:
                return
            self._closed = True
            if self._writer is not None:
                self._queue.put(_STOP)
        if self._writer is not None:
            self._writer.join()
        if self._connection is not None:
            self._connection.close()
        self._lock.release()

    # -- the file's health -----------------------------------------------------------------

    def _fail(self, message: str) -> str:
        """Make the store unusable for `message`, logged once; returns the first failure."""
        with self._failure_lock:
            if self._failure is None:
                self._failure = message
                logger.error("%s", message)
            return self._failure

    def _usable(self) -> str | None:
        """Why the store cannot be used (checking the file is still the one opened), or None."""
        if self._failure is None and self._identity is not None:
            change = change_of(self._absolute, self._identity)
            if change is not None:
                self._fail(vanished_message(self.path, change))
        return self._failure

    def _damaged(self, connection: sqlite3.Connection, exc: Exception) -> str | None:
        """After an error: the failure when the file turns out damaged, else None."""
        if not isinstance(exc, sqlite3.DatabaseError) or not is_damage(exc):
            return None
        try:
            problems = damage(connection)
        except sqlite3.Error as check_error:
            problems = str(check_error)
        if problems is None:
            return None
        return self._fail(damaged_message(self.path, problems, running=True))

    # -- writing ---------------------------------------------------------------------------

    async def write(self, batch: WriteBatch) -> None:
        """Store the batch; returns once it is committed (raises StoreError if it was not)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        with self._closing_lock:
            if self._closed or self._writer is None:
                raise StoreError("the event store is not open")
            if self._failure is not None:
                raise StoreError(self._failure)
            self._queue.put(Submission(batch, time.time(), loop, done))
        await done

    def _write_loop(self) -> None:
        backlog: collections.deque[Part] = collections.deque()  # slices of large batches
        stopping = False
        while not stopping or backlog:
            parts, stopping = self._queued_parts(backlog, stopping)
            if parts or backlog:
                self._write(parts, backlog)

    def _queued_parts(
        self, backlog: collections.deque[Part], stopping: bool
    ) -> tuple[list[Part], bool]:
        """The requests queued meanwhile: whole when small, else as slices into `backlog`."""
        parts: list[Part] = []
        rows = 0
        wait = not backlog
        while not stopping and len(parts) < _MAX_REQUESTS_PER_COMMIT and rows < SLICE_ROWS:
            try:
                item = self._queue.get() if wait else self._queue.get_nowait()
            except queue.Empty:
                break
            wait = False
            if not isinstance(item, Submission):
                stopping = True
                break
            slices = batch_slices(item.batch)
            item.parts_left = len(slices)
            if len(slices) == 1:
                parts.append(Part(item, item.batch))
                rows += len(item.batch.events) + len(item.batch.client_reports)
            else:
                backlog.extend(Part(item, piece) for piece in slices)
        return parts, stopping

    def _write(self, parts: list[Part], backlog: collections.deque[Part]) -> None:
        failure = self._usable()
        if failure is None:
            parts, outcomes = self._commit(parts, backlog)
            # Rows committed into a file that was deleted meanwhile are lost: refuse them too.
            failure = self._usable()
            if failure is None:
                # Before answering, so a client never sees more than max_events stored.
                self._prune()
        if failure is not None:
            parts += backlog
            backlog.clear()
            outcomes = [StoreError(failure) for _ in parts]
        settle(parts, outcomes)

    def _commit(
        self, parts: list[Part], backlog: collections.deque[Part] | None = None
    ) -> tuple[list[Part], list[BaseException | None]]:
        """Commit `parts` and slices from `backlog`: one at least, more while no other request
        waits (a commit per slice would make a large batch twice as slow when it is alone).
        Returns what it wrote, with the outcome of each."""
        connection = self._connection
        assert connection is not None
        # Slices are added one after the other only while no request waits for this commit.
        greedy = not parts
        parts = list(parts)
        try:
            with transaction(connection):
                inserted = sum(self._insert(part) for part in parts)
                sliced = False
                while backlog and (not sliced or (greedy and self._queue.empty())):
                    part = backlog.popleft()
                    if part.submission.failed:
                        continue
                    parts.append(part)
                    inserted += self._insert(part)
                    sliced = True
                self._groups.flush(connection)
            self._retention.added(inserted)
            return parts, [None] * len(parts)
        except Exception as exc:
            self._groups.discard()
            failure = self._damaged(connection, exc)
            if failure is not None:
                return parts, [StoreError(failure) for _ in parts]
            if len(parts) == 1:
                logger.exception("storing a batch failed")
                return parts, [StoreError("the event could not be stored")]
        # One bad batch must not sink the others that shared its transaction: retry alone.
        return parts, [self._commit([part])[1][0] for part in parts]

    def _insert(self, part: Part) -> int:
        assert self._connection is not None
        received_at = part.submission.received_at
        return insert_batch(self._connection, self._groups, part.batch, received_at)

    def _prune(self) -> None:
        assert self._connection is not None
        try:
            self._retention.prune(self._connection)
        except Exception:  # the events are stored; pruning is tried again after the next write
            logger.exception("pruning old events failed")

    # -- reading (any thread) --------------------------------------------------------------

    @contextmanager
    def _reader(self) -> Iterator[sqlite3.Connection]:
        failure = self._usable()
        if failure is not None:
            raise StoreError(failure)
        try:
            connection = sqlite3.connect(self._read_uri, uri=True, timeout=30)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read event database {self.path}: {exc}") from None
        with closing(connection):
            try:
                yield connection
            except sqlite3.Error as exc:
                failure = self._damaged(connection, exc)
                if failure is not None:
                    raise StoreError(failure) from None
                raise StoreError(f"cannot read event database {self.path}: {exc}") from None

    def read(self, query: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run several queries (functions of `_queries`) on one short-lived connection."""
        with self._reader() as db:
            return query(db)

    def count_events(self) -> int:
        with self._reader() as db:
            return int(db.execute("SELECT count(*) FROM events").fetchone()[0])

    def event_payloads(self) -> list[dict[str, Any]]:
        """Every stored event payload, oldest first."""
        with self._reader() as db:
            rows = db.execute("SELECT payload FROM events ORDER BY id").fetchall()
        return [_queries.stored_json(payload) for (payload,) in rows]

    def list_events(self, *, limit: int, offset: int) -> list[StoredEvent]:
        """A page of stored events, newest first."""
        with self._reader() as db:
            return _queries.list_events(db, limit=limit, offset=offset)

    def find_event(self, event_id: str) -> list[StoredEvent]:
        """Every stored copy of the event, newest first (duplicates are kept, not merged)."""
        with self._reader() as db:
            return _queries.find_event(db, event_id)

    def event_by_row(self, row_id: int) -> StoredEvent | None:
        with self._reader() as db:
            return _queries.event_by_row(db, row_id)

    def event_neighbours(self, group_id: int, row_id: int) -> tuple[str | None, str | None]:
        with self._reader() as db:
            return _queries.event_neighbours(db, group_id, row_id)

    def list_groups(
        self, where: GroupFilter, after: GroupCursor | None, limit: int
    ) -> list[StoredGroup]:
        with self._reader() as db:
            return _queries.list_groups(db, where, after, limit)

    def get_group(self, group_id: int) -> StoredGroup | None:
        with self._reader() as db:
            return _queries.get_group(db, group_id)

    def all_groups(self) -> list[StoredGroup]:
        with self._reader() as db:
            return _queries.all_groups(db)

    def group_environments(self, group_id: int) -> list[tuple[str, int, float]]:
        with self._reader() as db:
            return _queries.group_environments(db, group_id)

    def group_events(self, group_id: int, before_row: int | None, limit: int) -> list[EventSummary]:
        with self._reader() as db:
            return _queries.group_events(db, group_id, before_row, limit)

    def environments(self) -> list[str]:
        with self._reader() as db:
            return _queries.environments(db)

    def client_reports(self) -> list[dict[str, Any]]:
        """Every stored client report payload, oldest first."""
        with self._reader() as db:
            rows = db.execute("SELECT payload FROM client_reports ORDER BY id").fetchall()
        return [_queries.stored_json(payload) for (payload,) in rows]

    def count_client_reports(self) -> int:
        with self._reader() as db:
            return int(db.execute("SELECT count(*) FROM client_reports").fetchone()[0])

    def discarded_totals(self) -> dict[tuple[str, str], int]:
        """Quantities reported dropped by clients, summed per (reason, category)."""
        with self._reader() as db:
            return _queries.discarded_totals(db)

    def stored_counts(self) -> StoredCounts:
        """How many events, groups and client reports are stored, and the drops reported."""
        with self._reader() as db:
            return _queries.stored_counts(db)


def _prepare(connection: sqlite3.Connection) -> None:
    mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise StoreError(f"the event database cannot use WAL mode (got {mode!r})")
    # Committed data survives a crash of the process; only a power cut may lose the last commits.
    connection.execute("PRAGMA synchronous=NORMAL")
    prepare_schema(connection)
    # Tables of their own, beside the events' schema (whatever its version).
    _attachments.create_tables(connection)
    _feedback.create_tables(connection)
    _release_health.create_tables(connection)
    _monitors.create_tables(connection)
    _logs.create_tables(connection)
