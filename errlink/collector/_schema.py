"""The event database's schema, and the migration of databases written by older collectors.

Version 1 stored events only. Version 2 files every event into a group (`events.group_id`,
the `groups` and `group_environments` tables) and drops version 1's indexes that no query used.
Version 3 stores each event's trace id (`events.trace_id`, indexed with the row id).
An older file is migrated in one transaction when it is opened, one version after the other:
version 1's events are grouped as if they had just arrived, and every event's trace id is read
from its stored payload, so a crash mid-way leaves the old file untouched.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable

from ._group_index import GroupIndex
from ._grouping import group_key
from ._trace_queries import trace_id_of

SCHEMA_VERSION = 3

_EVENTS = """
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
    payload TEXT NOT NULL,
    group_id INTEGER REFERENCES groups (id),
    trace_id TEXT
)
"""
_EVENT_ID_INDEX = "CREATE INDEX IF NOT EXISTS events_event_id ON events (event_id)"
# A group's events, newest first; also what finds a group's neighbouring events.
_EVENTS_BY_GROUP = "CREATE INDEX IF NOT EXISTS events_group ON events (group_id, id)"
# A trace's events, newest first (`_trace_queries`).
_EVENTS_BY_TRACE = "CREATE INDEX IF NOT EXISTS events_trace ON events (trace_id, id)"
_GROUPS = [
    """
    CREATE TABLE IF NOT EXISTS groups (
        id INTEGER PRIMARY KEY,
        project_id TEXT NOT NULL,
        hash TEXT NOT NULL,
        title TEXT NOT NULL,
        culprit TEXT,
        level TEXT NOT NULL,
        count INTEGER NOT NULL,
        first_seen REAL NOT NULL,
        last_seen REAL NOT NULL,
        latest_event_id INTEGER,
        UNIQUE (project_id, hash)
    )
    """,
    # The group list, newest first, unfiltered and by level. Keyset pages on (last_seen, id).
    "CREATE INDEX IF NOT EXISTS groups_recent ON groups (last_seen)",
    "CREATE INDEX IF NOT EXISTS groups_level_recent ON groups (level, last_seen)",
    """
    CREATE TABLE IF NOT EXISTS group_environments (
        group_id INTEGER NOT NULL REFERENCES groups (id),
        environment TEXT NOT NULL,
        count INTEGER NOT NULL,
        last_seen REAL NOT NULL,
        PRIMARY KEY (group_id, environment)
    ) WITHOUT ROWID
    """,
    # The group list filtered by environment, newest first.
    """
    CREATE INDEX IF NOT EXISTS group_environments_recent
    ON group_environments (environment, last_seen, group_id)
    """,
]
_REPORTS = [
    """
    CREATE TABLE IF NOT EXISTS client_reports (
        id INTEGER PRIMARY KEY,
        received_at REAL NOT NULL,
        project_id TEXT NOT NULL,
        payload TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS discarded_events (
        report_id INTEGER NOT NULL REFERENCES client_reports (id),
        reason TEXT NOT NULL,
        category TEXT NOT NULL,
        quantity INTEGER NOT NULL
    )
    """,
    "CREATE INDEX IF NOT EXISTS discarded_events_reason ON discarded_events (reason, category)",
]
_VERSION_1_UNUSED_INDEXES = [
    "events_received_at",
    "events_project_id",
    "events_level",
    "events_environment",
    "events_exception_type",
    "events_exception_value",
    "events_message",
]
_BACKFILL_CHUNK = 1000


class SchemaError(Exception):
    """The file holds a schema this errlink cannot use."""


def prepare_schema(db: sqlite3.Connection) -> None:
    """Create the schema in a new file, or migrate an older one (autocommit connection)."""
    if db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
        return
    # Read the version again under the write lock: another process may have migrated meanwhile.
    db.execute("BEGIN IMMEDIATE")
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version == 0:
            _create(db)
        elif not 1 <= version <= SCHEMA_VERSION:
            raise SchemaError(
                f"the event database has schema version {version}, "
                f"this errlink expects {SCHEMA_VERSION} or older"
            )
        else:
            for step in _MIGRATIONS[version - 1 :]:
                step(db)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _create(db: sqlite3.Connection) -> None:
    statements = [*_GROUPS, _EVENTS, _EVENT_ID_INDEX, _EVENTS_BY_GROUP, _EVENTS_BY_TRACE]
    for statement in [*statements, *_REPORTS]:
        db.execute(statement)


def _migrate_from_1(db: sqlite3.Connection) -> None:
    db.execute("ALTER TABLE events ADD COLUMN group_id INTEGER REFERENCES groups (id)")
    for name in _VERSION_1_UNUSED_INDEXES:
        db.execute(f"DROP INDEX IF EXISTS {name}")
    for statement in [*_GROUPS, _EVENT_ID_INDEX, _EVENTS_BY_GROUP, *_REPORTS]:
        db.execute(statement)
    _group_existing_events(db)


def _group_existing_events(db: sqlite3.Connection) -> None:
    index = GroupIndex()
    last_id = 0
    while True:
        rows = db.execute(
            "SELECT id, received_at, project_id, level, environment, payload FROM events "
            "WHERE id > ? ORDER BY id LIMIT ?",
            (last_id, _BACKFILL_CHUNK),
        ).fetchall()
        if not rows:
            return
        assignments = []
        for row_id, received_at, project_id, level, environment, payload in rows:
            key = group_key(_payload(payload))
            group_id = index.group_id(db, project_id, key, level, received_at)
            index.add_event(
                group_id,
                row_id,
                seen_at=received_at,
                level=level,
                environment=environment,
                key=key,
            )
            assignments.append((group_id, row_id))
        db.executemany("UPDATE events SET group_id = ? WHERE id = ?", assignments)
        index.flush(db)
        last_id = rows[-1][0]


def _migrate_from_2(db: sqlite3.Connection) -> None:
    db.execute("ALTER TABLE events ADD COLUMN trace_id TEXT")
    last_id = 0
    while True:
        rows = db.execute(
            "SELECT id, payload FROM events WHERE id > ? ORDER BY id LIMIT ?",
            (last_id, _BACKFILL_CHUNK),
        ).fetchall()
        if not rows:
            break
        found = [(trace_id_of(_payload(payload)), row_id) for row_id, payload in rows]
        db.executemany(
            "UPDATE events SET trace_id = ? WHERE id = ?",
            [(trace_id, row_id) for trace_id, row_id in found if trace_id is not None],
        )
        last_id = rows[-1][0]
    # After the backfill: one index build instead of an update per row.
    db.execute(_EVENTS_BY_TRACE)


# The step from version N to N + 1 is _MIGRATIONS[N - 1]; each runs in the opening transaction.
_MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_migrate_from_1, _migrate_from_2]


def _payload(text: str) -> dict[str, object]:
    try:
        payload = json.loads(text)
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}
