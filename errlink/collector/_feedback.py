"""Stored user feedback, from the `feedback` item and from the older `user_report` item.

A `feedback` item is an event payload whose ``contexts.feedback`` holds ``message`` and,
optionally, ``name``, ``contact_email`` and ``associated_event_id``. A `user_report` item (the
form Sentry took before) is ``{"event_id", "name", "email", "comments"}``, its `event_id`
naming the event it is about. Both are stored as one kind of row, linked to their event when
they name one; feedback that names none is listed on its own page.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from dataclasses import dataclass
from typing import Any

from ._errors import Rejected

_MAX_MESSAGE_CHARS = 64 * 1024
_MAX_FIELD_CHARS = 1000

SCHEMA = [
    """
    CREATE TABLE IF NOT EXISTS feedback (
        id INTEGER PRIMARY KEY,
        received_at REAL NOT NULL,
        project_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        feedback_id TEXT,
        associated_event_id TEXT,
        message TEXT NOT NULL,
        name TEXT,
        contact_email TEXT,
        payload TEXT NOT NULL
    )
    """,
    "CREATE INDEX IF NOT EXISTS feedback_event ON feedback (associated_event_id, id)",
]


@dataclass(frozen=True)
class FeedbackRecord:
    project_id: str
    kind: str  # "feedback" or "user_report"
    feedback_id: str | None
    associated_event_id: str | None
    message: str
    name: str | None
    contact_email: str | None
    payload_json: str


@dataclass(frozen=True)
class StoredFeedback:
    id: int
    received_at: float
    kind: str
    feedback_id: str | None
    associated_event_id: str | None
    message: str
    name: str | None
    contact_email: str | None


def create_tables(db: sqlite3.Connection) -> None:
    for statement in SCHEMA:
        db.execute(statement)


def feedback_record(
    payload: object, *, project_id: str, fallback_id: str | None, where: str
) -> FeedbackRecord:
    if not isinstance(payload, dict):
        raise Rejected(400, f"{where} is not a JSON object")
    contexts = payload.get("contexts")
    feedback = contexts.get("feedback") if isinstance(contexts, dict) else None
    if not isinstance(feedback, dict):
        raise Rejected(400, f"{where} has no contexts.feedback object")
    message = feedback.get("message")
    if not isinstance(message, str) or not message:
        raise Rejected(400, f"{where} contexts.feedback.message must be a non-empty string")
    raw_id = payload.get("event_id")
    feedback_id = normalize_event_id(raw_id, where) if raw_id is not None else fallback_id
    linked = feedback.get("associated_event_id")
    return FeedbackRecord(
        project_id=project_id,
        kind="feedback",
        feedback_id=feedback_id,
        associated_event_id=None if linked is None else normalize_event_id(linked, where),
        message=_text(message, _MAX_MESSAGE_CHARS) or "",
        name=_text(feedback.get("name"), _MAX_FIELD_CHARS),
        contact_email=_text(feedback.get("contact_email"), _MAX_FIELD_CHARS),
        payload_json=_json(payload, where),
    )


def user_report_record(payload: object, *, project_id: str, where: str) -> FeedbackRecord:
    if not isinstance(payload, dict):
        raise Rejected(400, f"{where} is not a JSON object")
    comments = payload.get("comments")
    if not isinstance(comments, str):
        raise Rejected(400, f"{where} needs string 'comments'")
    return FeedbackRecord(
        project_id=project_id,
        kind="user_report",
        feedback_id=None,
        associated_event_id=normalize_event_id(payload.get("event_id"), where),
        message=_text(comments, _MAX_MESSAGE_CHARS) or "",
        name=_text(payload.get("name"), _MAX_FIELD_CHARS),
        contact_email=_text(payload.get("email"), _MAX_FIELD_CHARS),
        payload_json=_json(payload, where),
    )


def insert(db: sqlite3.Connection, received_at: float, records: list[FeedbackRecord]) -> None:
    db.executemany(
        "INSERT INTO feedback (received_at, project_id, kind, feedback_id, associated_event_id, "
        "message, name, contact_email, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                received_at,
                r.project_id,
                r.kind,
                r.feedback_id,
                r.associated_event_id,
                r.message,
                r.name,
                r.contact_email,
                r.payload_json,
            )
            for r in records
        ],
    )


_COLUMNS = "id, received_at, kind, feedback_id, associated_event_id, message, name, contact_email"


def of_event(db: sqlite3.Connection, event_id: str) -> list[StoredFeedback]:
    """What people said about the event, oldest first."""
    rows = db.execute(
        f"SELECT {_COLUMNS} FROM feedback WHERE associated_event_id = ? ORDER BY id",
        (event_id,),
    ).fetchall()
    return [StoredFeedback(*row) for row in rows]


def newest(db: sqlite3.Connection, *, limit: int, offset: int) -> list[StoredFeedback]:
    rows = db.execute(
        f"SELECT {_COLUMNS} FROM feedback ORDER BY id DESC LIMIT ? OFFSET ?", (limit, offset)
    ).fetchall()
    return [StoredFeedback(*row) for row in rows]


def count(db: sqlite3.Connection) -> int:
    return int(db.execute("SELECT count(*) FROM feedback").fetchone()[0])


def normalize_event_id(value: object, where: str) -> str:
    """As `_records.normalize_event_id` (which imports this module's records)."""
    if isinstance(value, str):
        try:
            return uuid.UUID(value).hex
        except ValueError:
            pass
    raise Rejected(400, f"{where} event_id {value!r:.60} is not a valid UUID")


def _text(value: object, limit: int) -> str | None:
    if not isinstance(value, str):
        return None
    return value[:limit].encode("utf-8", "replace").decode("utf-8")


def _json(payload: dict[str, Any], where: str) -> str:
    try:
        return json.dumps(payload, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    except (ValueError, TypeError, RecursionError):
        raise Rejected(400, f"{where} cannot be stored as JSON") from None
