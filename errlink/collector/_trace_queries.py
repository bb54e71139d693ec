"""Events by trace: the trace id an event carries, and the indexed reads that list a trace.

An event's trace id is its `contexts.trace.trace_id` when that is 32 hex characters (stored in
lower case, as the protocol writes it); anything else counts as no trace. The `events_trace`
index on (trace_id, id) makes every list here a keyset walk, newest first.
"""

from __future__ import annotations

import re
import sqlite3

from ._queries import SUMMARY_COLUMNS, EventSummary

_TRACE_ID = re.compile(r"[0-9a-fA-F]{32}")


def parse_trace_id(value: object) -> str | None:
    """`value` as a trace id (32 lowercase hex characters), or None when it is not one."""
    if isinstance(value, str) and _TRACE_ID.fullmatch(value):
        return value.lower()
    return None


def trace_id_of(payload: object) -> str | None:
    """The trace id of an event payload, or None when it carries no valid one."""
    contexts = payload.get("contexts") if isinstance(payload, dict) else None
    trace = contexts.get("trace") if isinstance(contexts, dict) else None
    return parse_trace_id(trace.get("trace_id")) if isinstance(trace, dict) else None


def trace_events(
    db: sqlite3.Connection, trace_id: str, before_row: int | None, limit: int
) -> list[EventSummary]:
    """A page of the trace's stored events (any project), newest first, older than
    `before_row`."""
    if before_row is None:
        rows = db.execute(
            f"SELECT {SUMMARY_COLUMNS} FROM events WHERE trace_id = ? ORDER BY id DESC LIMIT ?",
            (trace_id, limit),
        )
    else:
        rows = db.execute(
            f"SELECT {SUMMARY_COLUMNS} FROM events WHERE trace_id = ? AND id < ? "
            "ORDER BY id DESC LIMIT ?",
            (trace_id, before_row, limit),
        )
    return [EventSummary(*row) for row in rows]


def other_trace_events(
    db: sqlite3.Connection, trace_id: str, event_id: str, limit: int
) -> list[EventSummary]:
    """The trace's newest `limit` events other than `event_id` (and its stored copies)."""
    rows = db.execute(
        f"SELECT {SUMMARY_COLUMNS} FROM events WHERE trace_id = ? AND event_id != ? "
        "ORDER BY id DESC LIMIT ?",
        (trace_id, event_id, limit),
    )
    return [EventSummary(*row) for row in rows]
