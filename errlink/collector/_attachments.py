"""Stored attachments: the `attachment` items that arrive in an event's envelope.

Each is kept whole, as a BLOB, under the envelope's `event_id` (so one is found from its event,
whichever item arrived first). Ingestion refuses with 413 an attachment over
`MAX_ATTACHMENT_BYTES`, as Sentry refuses what is over its limits; the envelope as a whole is
bounded by the collector's body limit. The table lives beside the events' schema (created if
missing whatever the schema's version), so it needs no migration of its own.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass

from .._wire.envelope import Item
from ._errors import Rejected

MiB = 1024 * 1024
MAX_ATTACHMENT_BYTES = 20 * MiB
_MAX_NAME_CHARS = 255
_OCTET_STREAM = "application/octet-stream"
# type/subtype, then parameters; anything else is stored as a plain octet stream.
_CONTENT_TYPE = re.compile(r"[A-Za-z0-9!#$&^_.+-]{1,64}/[A-Za-z0-9!#$&^_.+-]{1,64}(\s*;[ -~]*)?")

SCHEMA = [
    """
    CREATE TABLE IF NOT EXISTS attachments (
        id INTEGER PRIMARY KEY,
        received_at REAL NOT NULL,
        project_id TEXT NOT NULL,
        event_id TEXT NOT NULL,
        filename TEXT NOT NULL,
        content_type TEXT NOT NULL,
        attachment_type TEXT NOT NULL,
        size INTEGER NOT NULL,
        data BLOB NOT NULL
    )
    """,
    "CREATE INDEX IF NOT EXISTS attachments_event ON attachments (event_id, id)",
]


@dataclass(frozen=True)
class AttachmentRecord:
    project_id: str
    event_id: str
    filename: str
    content_type: str
    attachment_type: str
    data: bytes


@dataclass(frozen=True)
class StoredAttachment:
    id: int
    received_at: float
    event_id: str
    filename: str
    content_type: str
    attachment_type: str
    size: int


def create_tables(db: sqlite3.Connection) -> None:
    for statement in SCHEMA:
        db.execute(statement)


def attachment_record(
    item: Item, *, project_id: str, event_id: str | None, where: str
) -> AttachmentRecord:
    """Validate an attachment item: 400 without an event to belong to, 413 when too large."""
    if event_id is None:
        raise Rejected(400, f"{where} needs the envelope header's event_id")
    size = len(item.payload)
    if size > MAX_ATTACHMENT_BYTES:
        raise Rejected(
            413, f"{where} has {size} bytes, more than the limit of {MAX_ATTACHMENT_BYTES}"
        )
    headers = item.headers
    return AttachmentRecord(
        project_id=project_id,
        event_id=event_id,
        filename=_filename(headers.get("filename")),
        content_type=_content_type(headers.get("content_type")),
        attachment_type=_text(headers.get("attachment_type")) or "event.attachment",
        data=item.payload,
    )


def insert(db: sqlite3.Connection, received_at: float, records: list[AttachmentRecord]) -> None:
    db.executemany(
        "INSERT INTO attachments (received_at, project_id, event_id, filename, content_type, "
        "attachment_type, size, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                received_at,
                r.project_id,
                r.event_id,
                r.filename,
                r.content_type,
                r.attachment_type,
                len(r.data),
                r.data,
            )
            for r in records
        ],
    )


_COLUMNS = "id, received_at, event_id, filename, content_type, attachment_type, size"


def of_event(db: sqlite3.Connection, event_id: str) -> list[StoredAttachment]:
    """The event's attachments, in the order they arrived."""
    rows = db.execute(
        f"SELECT {_COLUMNS} FROM attachments WHERE event_id = ? ORDER BY id", (event_id,)
    ).fetchall()
    return [StoredAttachment(*row) for row in rows]


def with_data(db: sqlite3.Connection, attachment_id: int) -> tuple[StoredAttachment, bytes] | None:
    row = db.execute(
        f"SELECT {_COLUMNS}, data FROM attachments WHERE id = ?", (attachment_id,)
    ).fetchone()
    if row is None:
        return None
    return StoredAttachment(*row[:-1]), bytes(row[-1])


def _filename(value: object) -> str:
    text = _text(value)
    if not text:
        return "attachment"
    # Only the last part of a path: a name, never a place to write to.
    name = re.split(r"[\\/]", text)[-1].strip() or "attachment"
    return name[:_MAX_NAME_CHARS]


def _content_type(value: object) -> str:
    text = _text(value)
    if text and _CONTENT_TYPE.fullmatch(text):
        return text
    return _OCTET_STREAM


def _text(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    return value.encode("utf-8", "replace").decode("utf-8")
