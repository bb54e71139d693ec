"""Stored structured logs, from `log` items: ``{"items": [record, ...]}``.

A record is ``{timestamp, level, body, trace_id?, severity_number?, attributes?}``, each
attribute ``{"value": ..., "type": ...}``. Every record is one row; the rows of one item share
`item_id` (the row id of its first record), so what arrived together stays visible. Storage is
bounded: beyond `MAX_LOGS` rows the oldest go, in the transaction that added the new ones (row
ids only grow, so that is one indexed delete).
"""

from __future__ import annotations

import json
import math
import sqlite3
from dataclasses import dataclass
from typing import Any

from ._errors import Rejected
from ._trace_queries import parse_trace_id

MAX_LOGS = 100_000
MAX_RECORDS_PER_ITEM = 1000
LEVELS = ("trace", "debug", "info", "warn", "error", "fatal")
_LEVEL_ALIASES = {"warning": "warn", "critical": "fatal"}
_MAX_BODY_CHARS = 64 * 1024

SCHEMA = [
    """
    CREATE TABLE IF NOT EXISTS logs (
        id INTEGER PRIMARY KEY,
        received_at REAL NOT NULL,
        project_id TEXT NOT NULL,
        item_id INTEGER,
        timestamp REAL NOT NULL,
        level TEXT NOT NULL,
        severity_number INTEGER,
        trace_id TEXT,
        body TEXT NOT NULL,
        attributes TEXT NOT NULL
    )
    """,
    # A trace's logs and a level's logs, newest first.
    "CREATE INDEX IF NOT EXISTS logs_trace ON logs (trace_id, id)",
    "CREATE INDEX IF NOT EXISTS logs_level ON logs (level, id)",
]


@dataclass(frozen=True)
class LogRecord:
    project_id: str
    item_index: int  # which `log` item of the envelope it came in
    timestamp: float
    level: str
    severity_number: int | None
    trace_id: str | None
    body: str
    attributes_json: str


@dataclass(frozen=True)
class StoredLog:
    id: int
    received_at: float
    item_id: int | None
    timestamp: float
    level: str
    severity_number: int | None
    trace_id: str | None
    body: str
    attributes: dict[str, Any]


@dataclass(frozen=True)
class LogFilter:
    level: str | None = None
    text: str | None = None
    trace_id: str | None = None


def create_tables(db: sqlite3.Connection) -> None:
    for statement in SCHEMA:
        db.execute(statement)


def log_records(
    payload: object, headers: dict[str, Any], *, project_id: str, item_index: int, where: str
) -> list[LogRecord]:
    """The records of one `log` item; 400 when it is not one, 413 beyond the record limit."""
    items = payload.get("items") if isinstance(payload, dict) else None
    if not isinstance(items, list):
        raise Rejected(400, f"{where} must be an object with an 'items' list")
    if len(items) > MAX_RECORDS_PER_ITEM:
        raise Rejected(413, f"{where} holds {len(items)} records, more than {MAX_RECORDS_PER_ITEM}")
    declared = headers.get("item_count")
    if declared is not None and declared != len(items):
        raise Rejected(400, f"{where} says item_count {declared!r} but holds {len(items)} records")
    return [
        _record(record, project_id, item_index, f"{where} record {n}")
        for n, record in enumerate(items)
    ]


def _record(record: object, project_id: str, item_index: int, where: str) -> LogRecord:
    if not isinstance(record, dict):
        raise Rejected(400, f"{where} is not a JSON object")
    body = record.get("body")
    if not isinstance(body, str):
        raise Rejected(400, f"{where} needs a string 'body'")
    level = record.get("level")
    level = _LEVEL_ALIASES.get(level, level) if isinstance(level, str) else None
    severity = record.get("severity_number")
    timestamp = record.get("timestamp")
    attributes = record.get("attributes")
    return LogRecord(
        project_id=project_id,
        item_index=item_index,
        timestamp=float(timestamp)
        if isinstance(timestamp, int | float) and _is_finite(timestamp)
        else 0.0,
        level=level if level in LEVELS else "info",
        severity_number=severity if type(severity) is int and 0 <= severity <= 24 else None,
        trace_id=parse_trace_id(record.get("trace_id")),
        body=body[:_MAX_BODY_CHARS],
        attributes_json=json.dumps(attributes if isinstance(attributes, dict) else {}),
    )


def _is_finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def insert(
    db: sqlite3.Connection,
    received_at: float,
    records: list[LogRecord],
    *,
    max_rows: int = MAX_LOGS,
) -> None:
    """Store `records` (inside the caller's transaction), then forget the oldest beyond
    `max_rows`."""
    first_of_item: dict[int, int] = {}
    for record in records:
        cursor = db.execute(
            "INSERT INTO logs (received_at, project_id, item_id, timestamp, level, "
            "severity_number, trace_id, body, attributes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                received_at,
                record.project_id,
                first_of_item.get(record.item_index),
                record.timestamp,
                record.level,
                record.severity_number,
                record.trace_id,
                record.body,
                record.attributes_json,
            ),
        )
        row_id = cursor.lastrowid
        if record.item_index not in first_of_item and row_id is not None:
            first_of_item[record.item_index] = row_id
            db.execute("UPDATE logs SET item_id = ? WHERE id = ?", (row_id, row_id))
    db.execute(
        "DELETE FROM logs WHERE id <= (SELECT max(id) FROM logs) - ?",
        (max_rows,),
    )


_COLUMNS = "id, received_at, item_id, timestamp, level, severity_number, trace_id, body, attributes"


def newest(
    db: sqlite3.Connection, where: LogFilter, *, before: int | None, limit: int
) -> list[StoredLog]:
    """Logs matching `where`, newest first, with row ids below `before`."""
    clauses: list[str] = []
    values: list[object] = []
    if where.trace_id is not None:
        clauses.append("trace_id = ?")
        values.append(where.trace_id)
    if where.level is not None:
        clauses.append("level = ?")
        values.append(where.level)
    if where.text:
        clauses.append("body LIKE ? ESCAPE '\\'")
        values.append("%" + _like_escaped(where.text) + "%")
    if before is not None:
        clauses.append("id < ?")
        values.append(before)
    condition = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = db.execute(
        f"SELECT {_COLUMNS} FROM logs {condition} ORDER BY id DESC LIMIT ?",
        (*values, limit),
    ).fetchall()
    return [_stored(row) for row in rows]


def count(db: sqlite3.Connection) -> int:
    return int(db.execute("SELECT count(*) FROM logs").fetchone()[0])


def _stored(row: tuple[Any, ...]) -> StoredLog:
    try:
        attributes = json.loads(row[8])
    except ValueError:
        attributes = {}
    row_id, received_at, item_id, timestamp, level, severity, trace_id, body = row[:8]
    return StoredLog(
        id=row_id,
        received_at=received_at,
        item_id=item_id,
        timestamp=timestamp,
        level=level,
        severity_number=severity,
        trace_id=trace_id,
        body=body,
        attributes=attributes if isinstance(attributes, dict) else {},
    )


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def plain_attributes(log: StoredLog) -> dict[str, Any]:
    """Attribute names and their values, without the wire's type tags."""
    return {
        name: attribute.get("value") if isinstance(attribute, dict) else attribute
        for name, attribute in log.attributes.items()
    }


def log_json(log: StoredLog) -> dict[str, Any]:
    return {
        "id": log.id,
        "item_id": log.item_id,
        "received_at": log.received_at,
        "timestamp": log.timestamp,
        "level": log.level,
        "severity_number": log.severity_number,
        "trace_id": log.trace_id,
        "body": log.body,
        "attributes": plain_attributes(log),
    }
