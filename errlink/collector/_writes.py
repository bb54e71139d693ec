"""The writer thread's work: what is queued, cutting a batch in slices, one transaction, the
rows of a batch, and answering the waiting requests."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from . import _attachments, _feedback, _logs, _monitors, _release_health
from ._group_index import GroupIndex
from ._records import ClientReportRecord, EventRecord, WriteBatch

# A batch with more rows than this is committed in slices of this many, so the requests that
# arrive meanwhile are committed between two slices instead of after the whole batch.
SLICE_ROWS = 500


@dataclass(eq=False)
class Submission:
    batch: WriteBatch
    received_at: float
    loop: asyncio.AbstractEventLoop
    done: asyncio.Future[None]
    parts_left: int = 1
    failed: bool = False


@dataclass(frozen=True)
class Part:
    """A submission's batch, or one slice of it."""

    submission: Submission
    batch: WriteBatch


def batch_slices(batch: WriteBatch, rows: int = SLICE_ROWS) -> list[WriteBatch]:
    """The batch itself when it is small, else consecutive slices of at most `rows` rows."""
    if len(batch.events) + len(batch.client_reports) <= rows:
        return [batch]
    slices = [
        WriteBatch(events=batch.events[start : start + rows])
        for start in range(0, len(batch.events), rows)
    ]
    slices += [
        WriteBatch(client_reports=batch.client_reports[start : start + rows])
        for start in range(0, len(batch.client_reports), rows)
    ]
    if batch.attachments or batch.feedback:
        slices.append(WriteBatch(attachments=batch.attachments, feedback=batch.feedback))
    if batch.session_updates or batch.session_aggregates or batch.check_ins:
        slices.append(
            WriteBatch(
                session_updates=batch.session_updates,
                session_aggregates=batch.session_aggregates,
                check_ins=batch.check_ins,
            )
        )
    if batch.logs:
        slices.append(WriteBatch(logs=batch.logs))
    return slices


@contextmanager
def transaction(connection: sqlite3.Connection) -> Iterator[None]:
    # IMMEDIATE takes the write lock at once, waiting for it within the busy timeout; a deferred
    # transaction that reads first fails at once with "database is locked" when it must upgrade.
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def insert_batch(
    connection: sqlite3.Connection, groups: GroupIndex, batch: WriteBatch, received_at: float
) -> int:
    """Insert the batch's rows (inside a transaction); returns how many events it stored."""
    for event in batch.events:
        group_id = groups.group_id(
            connection, event.project_id, event.group, event.level, received_at
        )
        cursor = connection.execute(
            "INSERT INTO events (received_at, project_id, event_id, level, environment, release, "
            "exception_type, exception_value, message, payload, group_id, trace_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*_event_row(received_at, event), group_id, event.trace_id),
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
    for report in batch.client_reports:
        _insert_client_report(connection, received_at, report)
    if batch.attachments:
        _attachments.insert(connection, received_at, batch.attachments)
    if batch.feedback:
        _feedback.insert(connection, received_at, batch.feedback)
    if batch.session_updates or batch.session_aggregates:
        _release_health.insert(
            connection, received_at, batch.session_updates, batch.session_aggregates
        )
    if batch.check_ins:
        _monitors.insert(connection, received_at, batch.check_ins)
    if batch.logs:
        _logs.insert(connection, received_at, batch.logs)
    return len(batch.events)


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


def settle(parts: list[Part], outcomes: list[BaseException | None]) -> None:
    """Resolve the futures of the submissions now complete or failed, one wake-up per loop."""
    by_loop: dict[
        asyncio.AbstractEventLoop, list[tuple[asyncio.Future[None], BaseException | None]]
    ]
    by_loop = {}
    for part, outcome in zip(parts, outcomes, strict=True):
        submission = part.submission
        if submission.failed:  # an earlier slice failed, and was answered already
            continue
        if outcome is not None:
            submission.failed = True
        else:
            submission.parts_left -= 1
            if submission.parts_left > 0:
                continue
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
