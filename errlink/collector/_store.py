"""SQLite storage for received events and client reports.

Writes go through one writer thread that commits whatever has queued up in a single transaction
(group commit): a burst costs few commits, a lone event is committed at once, and the event loop
only waits on a future. `write()` returns once the rows are committed, so anything acknowledged
to a client is visible to every reader. Reads open their own short-lived connection (WAL lets
them run beside the writer), so they work from any thread, even after the store is closed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._records import ClientReportRecord, EventRecord, WriteBatch

logger = logging.getLogger("errlink.collector")

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    received_at REAL NOT NULL,
    project_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    level TEXT NOT NULL,
    environment TEXT,
    release TEXT,
    exception_type TEXT,
    exception_value TEXT,
    message TEXT,
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_received_at ON events (received_at);
CREATE INDEX IF NOT EXISTS events_event_id ON events (event_id);
CREATE INDEX IF NOT EXISTS events_project_id ON events (project_id);
CREATE INDEX IF NOT EXISTS events_level ON events (level);
CREATE INDEX IF NOT EXISTS events_environment ON events (environment);
CREATE INDEX IF NOT EXISTS events_exception_type ON events (exception_type);
CREATE INDEX IF NOT EXISTS events_exception_value ON events (exception_value);
CREATE INDEX IF NOT EXISTS events_message ON events (message);
CREATE TABLE IF NOT EXISTS client_reports (
    id INTEGER PRIMARY KEY,
    received_at REAL NOT NULL,
    project_id TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS discarded_events (
    report_id INTEGER NOT NULL REFERENCES client_reports (id),
    reason TEXT NOT NULL,
    category TEXT NOT NULL,
    quantity INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS discarded_events_reason ON discarded_events (reason, category);
"""
_EVENT_COLUMNS = (
    "id, received_at, project_id, event_id, level, environment, release, "
    "exception_type, exception_value, message, payload"
)
# Upper bound on requests folded into one transaction, so a flood still commits regularly.
_MAX_REQUESTS_PER_COMMIT = 1000


class StoreError(RuntimeError):
    """The database cannot be opened or used."""


@dataclass(frozen=True)
class StoredEvent:
    row_id: int
    received_at: float
    project_id: str
    event_id: str
    level: str
    environment: str | None
    release: str | None
    exception_type: str | None
    exception_value: str | None
    message: str | None
    payload: dict[str, Any]


@dataclass(frozen=True)
class _Submission:
    batch: WriteBatch
    received_at: float
    loop: asyncio.AbstractEventLoop
    done: asyncio.Future[None]


_STOP = object()


class EventStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._read_uri = path.absolute().as_uri() + "?mode=rw"
        self._queue: queue.SimpleQueue[_Submission | object] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._connection: sqlite3.Connection | None = None
        self._closed = False
        # Makes "not closed, so queue it" atomic with closing: nothing is queued after _STOP.
        self._closing_lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------------

    def open(self) -> None:
        """Create or check the schema and start the writer thread (blocking; call off-loop)."""
        try:
            connection = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open event database {self.path}: {exc}") from None
        try:
            _prepare(connection)
        except sqlite3.Error as exc:
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
                _settle(pending, self._commit(pending))

    def _commit(self, pending: list[_Submission]) -> list[BaseException | None]:
        connection = self._connection
        assert connection is not None
        try:
            with _transaction(connection):
                for submission in pending:
                    _insert(connection, submission)
            return [None] * len(pending)
        except Exception:
            if len(pending) == 1:
                logger.exception("storing a batch failed")
                return [StoreError("the event could not be stored")]
        # One bad batch must not sink the others that shared its transaction: retry alone.
        return [self._commit([submission])[0] for submission in pending]

    # -- reading (any thread) --------------------------------------------------------------

    @contextmanager
    def _reader(self) -> Iterator[sqlite3.Connection]:
        try:
            connection = sqlite3.connect(self._read_uri, uri=True, timeout=30)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read event database {self.path}: {exc}") from None
        with closing(connection):
            yield connection

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
            rows = db.execute(
                f"SELECT {_EVENT_COLUMNS} FROM events ORDER BY id DESC LIMIT ? OFFSET ?",
                (limit, offset),
            ).fetchall()
        return [_stored_event(row) for row in rows]

    def find_event(self, event_id: str) -> list[StoredEvent]:
        """Every stored copy of the event, newest first (duplicates are kept, not merged)."""
        with self._reader() as db:
            rows = db.execute(
                f"SELECT {_EVENT_COLUMNS} FROM events WHERE event_id = ? ORDER BY id DESC",
                (event_id,),
            ).fetchall()
        return [_stored_event(row) for row in rows]

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
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    if version not in (0, SCHEMA_VERSION):
        raise StoreError(
            f"the event database has schema version {version}, "
            f"this errlink expects {SCHEMA_VERSION}"
        )
    connection.executescript(_SCHEMA + f"PRAGMA user_version = {SCHEMA_VERSION};")


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


def _insert(connection: sqlite3.Connection, submission: _Submission) -> None:
    received_at = submission.received_at
    connection.executemany(
        "INSERT INTO events (received_at, project_id, event_id, level, environment, release, "
        "exception_type, exception_value, message, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [_event_row(received_at, event) for event in submission.batch.events],
    )
    for report in submission.batch.client_reports:
        _insert_client_report(connection, received_at, report)


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


def _stored_event(row: tuple[Any, ...]) -> StoredEvent:
    (row_id, received_at, project_id, event_id, level, environment, release) = row[:7]
    exception_type, exception_value, message, payload = row[7:]
    return StoredEvent(
        row_id=row_id,
        received_at=received_at,
        project_id=project_id,
        event_id=event_id,
        level=level,
        environment=environment,
        release=release,
        exception_type=exception_type,
        exception_value=exception_value,
        message=message,
        payload=json.loads(payload),
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
