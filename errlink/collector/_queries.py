"""The read queries behind the web UI and the read API, each one an indexed lookup.

Every list is a keyset page (newest first, "after this row"), so the cost of a page does not
grow with the number of stored events or with how far back the page is. The functions take a
connection so tests can inspect exactly the SQL the collector runs.
"""

from __future__ import annotations

import json
import math
import sqlite3
from dataclasses import dataclass
from typing import Any

# How many distinct environments the filter offers at most.
MAX_ENVIRONMENTS = 200

SUMMARY_COLUMNS = (
    "id, received_at, project_id, event_id, level, environment, release, "
    "exception_type, exception_value, message, group_id, trace_id"
)
_EVENT_COLUMNS = SUMMARY_COLUMNS + ", payload"
# The largest row id SQLite stores (a signed 64-bit integer).
MAX_ROW_ID = 2**63 - 1


@dataclass(frozen=True)
class EventSummary:
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
    group_id: int | None
    trace_id: str | None  # contexts.trace.trace_id when valid (`_trace_queries`)


@dataclass(frozen=True)
class StoredEvent(EventSummary):
    payload: dict[str, Any]


@dataclass(frozen=True)
class StoredGroup:
    id: int
    project_id: str
    title: str
    culprit: str | None
    level: str
    count: int  # within the environment when the list was filtered by one
    first_seen: float
    last_seen: float  # likewise
    latest_event_id: int | None


@dataclass(frozen=True)
class GroupFilter:
    environment: str | None = None  # NO_ENVIRONMENT ("") selects events sent without one
    level: str | None = None
    text: str | None = None  # a substring of the title or culprit


@dataclass(frozen=True)
class GroupCursor:
    """Where a page of the group list ends: the next page starts after this group."""

    last_seen: float
    group_id: int

    def encode(self) -> str:
        return f"{self.last_seen!r}:{self.group_id}"

    @classmethod
    def parse(cls, text: str) -> GroupCursor | None:
        seen, sep, group_id = text.partition(":")
        try:
            cursor = cls(float(seen), int(group_id))
        except ValueError:
            return None
        if not sep or not math.isfinite(cursor.last_seen):
            return None
        # A larger id would not fit SQLite's integers (and no group has one).
        return cursor if 0 <= cursor.group_id <= MAX_ROW_ID else None


# -- groups ---------------------------------------------------------------------------------

_GROUP_COLUMNS = (
    "g.id, g.project_id, g.title, g.culprit, g.level, {count}, g.first_seen, {last_seen}, "
    "g.latest_event_id"
)


def list_groups(
    db: sqlite3.Connection, where: GroupFilter, after: GroupCursor | None, limit: int
) -> list[StoredGroup]:
    """A page of groups, most recently seen first."""
    conditions: list[str] = []
    params: list[object] = []
    if where.environment is not None:
        # CROSS JOIN keeps group_environments the outer loop, walked in index order.
        columns = _GROUP_COLUMNS.format(count="ge.count", last_seen="ge.last_seen")
        source = "group_environments ge CROSS JOIN groups g ON g.id = ge.group_id"
        order_key = "(ge.last_seen, ge.group_id)"
        order = "ge.last_seen DESC, ge.group_id DESC"
        conditions.append("ge.environment = ?")
        params.append(where.environment)
    else:
        columns = _GROUP_COLUMNS.format(count="g.count", last_seen="g.last_seen")
        source = "groups g"
        order_key = "(g.last_seen, g.id)"
        order = "g.last_seen DESC, g.id DESC"
    if where.level is not None:
        conditions.append("g.level = ?")
        params.append(where.level)
    if where.text:
        pattern = "%" + _escape_like(where.text) + "%"
        conditions.append("(g.title LIKE ? ESCAPE '\\' OR g.culprit LIKE ? ESCAPE '\\')")
        params += [pattern, pattern]
    if after is not None:
        conditions.append(f"{order_key} < (?, ?)")
        params += [after.last_seen, after.group_id]
    sql = f"SELECT {columns} FROM {source}"
    if conditions:
        sql += " WHERE " + " AND ".join(conditions)
    sql += f" ORDER BY {order} LIMIT ?"
    params.append(limit)
    return [StoredGroup(*row) for row in db.execute(sql, params)]


def get_group(db: sqlite3.Connection, group_id: int) -> StoredGroup | None:
    columns = _GROUP_COLUMNS.format(count="g.count", last_seen="g.last_seen")
    row = db.execute(f"SELECT {columns} FROM groups g WHERE g.id = ?", (group_id,)).fetchone()
    return StoredGroup(*row) if row else None


def all_groups(db: sqlite3.Connection) -> list[StoredGroup]:
    """Every group, oldest first (for tests and small databases)."""
    columns = _GROUP_COLUMNS.format(count="g.count", last_seen="g.last_seen")
    return [StoredGroup(*row) for row in db.execute(f"SELECT {columns} FROM groups g ORDER BY id")]


def group_environments(db: sqlite3.Connection, group_id: int) -> list[tuple[str, int, float]]:
    """(environment, count, last_seen) of one group, busiest first."""
    rows = db.execute(
        "SELECT environment, count, last_seen FROM group_environments WHERE group_id = ?",
        (group_id,),
    ).fetchall()
    found = [(environment, int(count), last_seen) for environment, count, last_seen in rows]
    return sorted(found, key=lambda row: (-row[1], row[0]))


def environments(db: sqlite3.Connection) -> list[str]:
    """The distinct environments seen, in order; one index probe each."""
    found: list[str] = []
    current: str | None = None
    while len(found) < MAX_ENVIRONMENTS:
        if current is None:
            row = db.execute("SELECT min(environment) FROM group_environments").fetchone()
        else:
            row = db.execute(
                "SELECT min(environment) FROM group_environments WHERE environment > ?",
                (current,),
            ).fetchone()
        if row is None or row[0] is None:
            break
        current = row[0]
        found.append(current)
    return found


# -- events ---------------------------------------------------------------------------------


def group_events(
    db: sqlite3.Connection, group_id: int, before_row: int | None, limit: int
) -> list[EventSummary]:
    """A page of one group's stored events, newest first, older than `before_row`."""
    if before_row is None:
        rows = db.execute(
            f"SELECT {SUMMARY_COLUMNS} FROM events WHERE group_id = ? ORDER BY id DESC LIMIT ?",
            (group_id, limit),
        )
    else:
        rows = db.execute(
            f"SELECT {SUMMARY_COLUMNS} FROM events WHERE group_id = ? AND id < ? "
            "ORDER BY id DESC LIMIT ?",
            (group_id, before_row, limit),
        )
    return [EventSummary(*row) for row in rows]


def event_neighbours(
    db: sqlite3.Connection, group_id: int, row_id: int
) -> tuple[str | None, str | None]:
    """The event ids of the previous (older) and next (newer) events of the same group."""
    older = db.execute(
        "SELECT event_id FROM events WHERE group_id = ? AND id < ? ORDER BY id DESC LIMIT 1",
        (group_id, row_id),
    ).fetchone()
    newer = db.execute(
        "SELECT event_id FROM events WHERE group_id = ? AND id > ? ORDER BY id LIMIT 1",
        (group_id, row_id),
    ).fetchone()
    return (older[0] if older else None, newer[0] if newer else None)


def find_event(db: sqlite3.Connection, event_id: str) -> list[StoredEvent]:
    """Every stored copy of the event, newest first (duplicates are kept, not merged)."""
    rows = db.execute(
        f"SELECT {_EVENT_COLUMNS} FROM events WHERE event_id = ? ORDER BY id DESC", (event_id,)
    ).fetchall()
    return [_stored_event(row) for row in rows]


def event_by_row(db: sqlite3.Connection, row_id: int) -> StoredEvent | None:
    row = db.execute(f"SELECT {_EVENT_COLUMNS} FROM events WHERE id = ?", (row_id,)).fetchone()
    return _stored_event(row) if row else None


def list_events(db: sqlite3.Connection, *, limit: int, offset: int) -> list[StoredEvent]:
    """A page of stored events, newest first."""
    rows = db.execute(
        f"SELECT {_EVENT_COLUMNS} FROM events ORDER BY id DESC LIMIT ? OFFSET ?", (limit, offset)
    ).fetchall()
    return [_stored_event(row) for row in rows]


def _stored_event(row: tuple[Any, ...]) -> StoredEvent:
    (row_id, received_at, project_id, event_id, level, environment, release) = row[:7]
    exception_type, exception_value, message, group_id, trace_id, payload = row[7:]
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
        group_id=group_id,
        trace_id=trace_id,
        payload=stored_json(payload),
    )


@dataclass(frozen=True)
class TagSource:
    """What an issue's tag breakdown counts of one event."""

    environment: str | None
    release: str | None
    server_name: object
    tags: object  # an object, or Sentry's list of [name, value] pairs


def recent_tag_sources(db: sqlite3.Connection, group_id: int, limit: int) -> list[TagSource]:
    """The environment, release, server name and tags of a group's newest `limit` events.

    SQLite's JSON functions read just those two fields out of each payload. A payload they
    cannot read (NaN written by an older collector) makes the query fall back to Python.
    """
    try:
        rows = db.execute(
            "SELECT environment, release, json_extract(payload, '$.server_name', '$.tags') "
            "FROM events WHERE group_id = ? ORDER BY id DESC LIMIT ?",
            (group_id, limit),
        ).fetchall()
    except sqlite3.OperationalError:  # malformed JSON, or an SQLite without JSON functions
        rows = db.execute(
            "SELECT environment, release, payload FROM events WHERE group_id = ? "
            "ORDER BY id DESC LIMIT ?",
            (group_id, limit),
        ).fetchall()
        return [_tag_source(env, release, stored_json(payload)) for env, release, payload in rows]
    sources = []
    for environment, release, fields in rows:
        server_name, tags = stored_json(fields) if fields else (None, None)
        sources.append(TagSource(environment, release, server_name, tags))
    return sources


def _tag_source(environment: str | None, release: str | None, payload: object) -> TagSource:
    fields = payload if isinstance(payload, dict) else {}
    return TagSource(environment, release, fields.get("server_name"), fields.get("tags"))


# -- counts ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredCounts:
    events: int
    groups: int
    client_reports: int
    discarded: dict[tuple[str, str], int]  # reported dropped by clients, per (reason, category)


def stored_counts(db: sqlite3.Connection) -> StoredCounts:
    def count(table: str) -> int:
        return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])

    return StoredCounts(
        events=count("events"),
        groups=count("groups"),
        client_reports=count("client_reports"),
        discarded=discarded_totals(db),
    )


def discarded_totals(db: sqlite3.Connection) -> dict[tuple[str, str], int]:
    """Quantities reported dropped by clients, summed per (reason, category)."""
    rows = db.execute(
        "SELECT reason, category, sum(quantity) FROM discarded_events "
        "GROUP BY reason, category ORDER BY reason, category"
    ).fetchall()
    return {(reason, category): int(total) for reason, category, total in rows}


def stored_json(text: str) -> Any:
    """A stored payload. NaN and Infinity are stored as strings since ingestion normalises them
    (`_records`); older files may still hold them as numbers: they are read as strings too, so
    what the read API sends is valid JSON."""
    return json.loads(text, parse_constant=str)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
