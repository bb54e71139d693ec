"""SQLite storage for received events and client reports.

Writes go through one writer thread that commits whatever has queued up in a single transaction
(group commit): a burst costs few commits, a lone event is committed at once, and the event loop
only waits on a future. `write()` returns once the rows are committed, so anything acknowledged
to a client is visible to every reader. Every event is filed into its group in the same
transaction; retention prunes the oldest events after the commit, in its own transactions.
Reads open their own short-lived connection (WAL lets them run beside the writer), so they work
from any thread, even after the store is closed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from . import _queries
from ._group_index import GroupIndex
from ._queries import EventSummary, GroupCursor, GroupFilter, StoredEvent, StoredGroup
from ._records import ClientReportRecord, EventRecord, WriteBatch
from ._retention import Retention
from ._schema import SchemaError, prepare_schema

logger = logging.getLogger("errlink.collector")

_T = TypeVar("_T")

# Upper bound on requests folded into one transaction, so a flood still commits regularly.
_MAX_REQUESTS_PER_COMMIT = 1000


class StoreError(RuntimeError):
    """The database cannot be opened or used."""


@dataclass(frozen=True)
class _Submission:
    batch: WriteBatch
    received_at: float
    loop: asyncio.AbstractEventLoop
    done: asyncio.Future[None]


_STOP = object()


class EventStore:
    def __init__(self, path: Path, *, max_events: int | None = None) -> None:
        self.path = path
        self._read_uri = path.absolute().as_uri() + "?mode=rw"
        self._queue: queue.SimpleQueue[_Submission | object] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._connection: sqlite3.Connection | None = None
        self._closed = False
        # Makes "not closed, so queue it" atomic with closing: nothing is queued after _STOP.
        self._closing_lock = threading.Lock()
        self._groups = GroupIndex()
        self._retention = Retention(max_events)

    @property
    def max_events(self) -> int | None:
        return self._retention.max_events

    # -- lifecycle -------------------------------------------------------------------------

    def open(self) -> None:
        """Create, check or migrate the schema and start the writer thread (blocking)."""
        try:
            connection = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open event database {self.path}: {exc}") from None
        try:
            _prepare(connection)
            self._retention.start(connection)
        except (sqlite3.Error, SchemaError) as exc:
            connection.close()
            raise StoreError(f"cannot use event database {self.path}: {exc}") from None
        except StoreError:
            connection.close()
            raise
        self._connection = connection
        self._writer = threading.Thread(
            target=self._write_loop, name="errlink-collector-writer", daemon=True
        )
        self._writer.start()

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

    # -- writing ---------------------------------------------------------------------------

    async def write(self, batch: WriteBatch) -> None:
        """Store the batch; returns once it is committed (raises StoreError if it was not)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        with self._closing_lock:
            if self._closed or self._writer is None:
                raise StoreError("the event store is not open")
            self._queue.put(_Submission(batch, time.time(), loop, done))
        await done

    def _write_loop(self) -> None:
        assert self._connection is not None
        stopping = False
        while not stopping:
            pending: list[_Submission] = []
            item = self._queue.get()
            while True:
                if isinstance(item, _Submission):
                    pending.append(item)
                else:
                    stopping = True
                    break
                if len(pending) >= _MAX_REQUESTS_PER_COMMIT:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if pending:
                outcomes = self._commit(pending)
                # Before answering, so a client never sees more than max_events stored.
                self._prune()
                _settle(pending, outcomes)

    def _commit(self, pending: list[_Submission]) -> list[BaseException | None]:
        connection = self._connection
        assert connection is not None
        try:
            with _transaction(connection):
                inserted = sum(_insert(connection, self._groups, s) for s in pending)
                self._groups.flush(connection)
            self._retention.added(inserted)
            return [None] * len(pending)
        except Exception:
            self._groups.discard()
            if len(pending) == 1:
                logger.exception("storing a batch failed")
                return [StoreError("the event could not be stored")]
        # One bad batch must not sink the others that shared its transaction: retry alone.
        return [self._commit([submission])[0] for submission in pending]

    def _prune(self) -> None:
        assert self._connection is not None
        try:
            self._retention.prune(self._connection)
        except Exception:  # the events are stored; pruning is tried again after the next write
            logger.exception("pruning old events failed")

    # -- reading (any thread) --------------------------------------------------------------

    @contextmanager
    def _reader(self) -> Iterator[sqlite3.Connection]:
        try:
            connection = sqlite3.connect(self._read_uri, uri=True, timeout=30)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read event database {self.path}: {exc}") from None
        with closing(connection):
            try:
                yield connection
            except sqlite3.Error as exc:
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
        return [json.loads(payload) for (payload,) in rows]

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
        return [json.loads(payload) for (payload,) in rows]

    def count_client_reports(self) -> int:
        with self._reader() as db:
            return int(db.execute("SELECT count(*) FROM client_reports").fetchone()[0])

    def discarded_totals(self) -> dict[tuple[str, str], int]:
        """Quantities reported dropped by clients, summed per (reason, category)."""
        with self._reader() as db:
            rows = db.execute(
                "SELECT reason, category, sum(quantity) FROM discarded_events "
                "GROUP BY reason, category ORDER BY reason, category"
            ).fetchall()
        return {(reason, category): int(total) for reason, category, total in rows}


def _prepare(connection: sqlite3.Connection) -> None:
    mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise StoreError(f"the event database cannot use WAL mode (got {mode!r})")
    # Committed data survives a crash of the process; only a power cut may lose the last commits.
    connection.execute("PRAGMA synchronous=NORMAL")
    prepare_schema(connection)


@contextmanager
def _transaction(connection: sqlite3.Connection) -> Iterator[None]:
    connection.execute("BEGIN")
    try:
        yield
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def _insert(connection: sqlite3.Connection, groups: GroupIndex, submission: _Submission) -> int:
    """Insert the submission's rows; returns how many events it stored."""
    received_at = submission.received_at
    for event in submission.batch.events:
        group_id = groups.group_id(
            connection, event.project_id, event.group, event.level, received_at
        )
        cursor = connection.execute(
            "INSERT INTO events (received_at, project_id, event_id, level, environment, release, "
            "exception_type, exception_value, message, payload, group_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*_event_row(received_at, event), group_id),
        )
        assert cursor.lastrowid is not None
        groups.add_event(
            group_id,
            cursor.lastrowid,
            seen_at=received_at,
            level=event.level,
            environment=event.environment,
            key=event.group,
        )
    for report in submission.batch.client_reports:
        _insert_client_report(connection, received_at, report)
    return len(submission.batch.events)


def _event_row(received_at: float, event: EventRecord) -> tuple[object, ...]:
    return (
        received_at,
        event.project_id,
        event.event_id,
        event.level,
        event.environment,
        event.release,
        event.exception_type,
        event.exception_value,
        event.message,
        event.payload_json,
    )


def _insert_client_report(
    connection: sqlite3.Connection, received_at: float, report: ClientReportRecord
) -> None:
    cursor = connection.execute(
        "INSERT INTO client_reports (received_at, project_id, payload) VALUES (?, ?, ?)",
        (received_at, report.project_id, report.payload_json),
    )
    connection.executemany(
        "INSERT INTO discarded_events (report_id, reason, category, quantity) VALUES (?, ?, ?, ?)",
        [(cursor.lastrowid, d.reason, d.category, d.quantity) for d in report.discards],
    )


def _settle(pending: list[_Submission], outcomes: list[BaseException | None]) -> None:
    """Resolve the waiting futures on their loops, one wake-up per loop."""
    by_loop: dict[
        asyncio.AbstractEventLoop, list[tuple[asyncio.Future[None], BaseException | None]]
    ]
    by_loop = {}
    for submission, outcome in zip(pending, outcomes, strict=True):
        by_loop.setdefault(submission.loop, []).append((submission.done, outcome))
    for loop, results in by_loop.items():
        _call_soon(loop, results)


def _call_soon(
    loop: asyncio.AbstractEventLoop,
    results: list[tuple[asyncio.Future[None], BaseException | None]],
) -> None:
    try:
        loop.call_soon_threadsafe(_resolve, results)
    except RuntimeError:  # the loop is closed: nobody is waiting any more
        pass


def _resolve(results: list[tuple[asyncio.Future[None], BaseException | None]]) -> None:
    for future, error in results:
        if future.done():  # the request was cancelled while its batch was being committed
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)
