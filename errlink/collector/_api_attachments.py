"""The read API's attachments and feedback, under `/api/0/`, and the attachment download.

- ``GET /api/0/events/<event_id>/attachments/``: ``{"attachments": [...]}`` with each one's
  name, content type, size and ``download`` link, in the order they arrived;
- ``GET /api/0/attachments/<id>/download/``: the bytes, as a download (`_download.py`);
- ``GET /api/0/feedback/``: ``{"count", "limit", "offset", "feedback": [...]}``, newest first;
  ``?event_id=`` gives what was said about one event (oldest first).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web

from . import _attachments, _feedback
from ._api import API_PREFIX, DEFAULT_PAGE_SIZE, MAX_OFFSET, MAX_PAGE_SIZE, _int_param, _iso, _read
from ._attachments import StoredAttachment
from ._download import download_response
from ._errors import Rejected
from ._feedback import StoredFeedback
from ._records import normalize_event_id
from ._state import STATE

_T = TypeVar("_T")


def add_attachment_api_routes(app: web.Application) -> None:
    app.router.add_get(
        f"{API_PREFIX}/events/{{event_id}}/attachments/",
        list_attachments,
        name="api-event-attachments",
    )
    app.router.add_get(
        f"{API_PREFIX}/attachments/{{attachment_id}}/download/",
        download_attachment,
        name="api-attachment-download",
    )
    app.router.add_get(f"{API_PREFIX}/feedback/", list_feedback, name="api-feedback")


def download_url(attachment_id: int) -> str:
    return f"{API_PREFIX}/attachments/{attachment_id}/download/"


async def list_attachments(request: web.Request) -> web.Response:
    event_id = _event_id(request.match_info["event_id"])
    found = await _stored(request, lambda db: _attachments.of_event(db, event_id))
    return web.json_response({"attachments": [attachment_json(a) for a in found]})


async def download_attachment(request: web.Request) -> web.StreamResponse:
    raw = request.match_info["attachment_id"]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise Rejected(404, "no such attachment")
    found = await _stored(request, lambda db: _attachments.with_data(db, int(raw)))
    if found is None:
        raise Rejected(404, f"no attachment with id {raw}")
    return download_response(*found)


async def list_feedback(request: web.Request) -> web.Response:
    limit = _int_param(request, "limit", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
    offset = _int_param(request, "offset", 0, 0, MAX_OFFSET)
    raw_event_id = request.query.get("event_id")
    if raw_event_id:
        event_id = _event_id(raw_event_id)
        rows = await _stored(request, lambda db: _feedback.of_event(db, event_id))
        total = len(rows)
        rows = rows[offset : offset + limit]
    else:

        def query(db: sqlite3.Connection) -> tuple[int, list[StoredFeedback]]:
            return _feedback.count(db), _feedback.newest(db, limit=limit, offset=offset)

        total, rows = await _stored(request, query)
    return web.json_response(
        {
            "count": total,
            "limit": limit,
            "offset": offset,
            "feedback": [feedback_json(row) for row in rows],
        }
    )


def attachment_json(attachment: StoredAttachment) -> dict[str, Any]:
    return {
        "id": attachment.id,
        "event_id": attachment.event_id,
        "received_at": _iso(attachment.received_at),
        "filename": attachment.filename,
        "content_type": attachment.content_type,
        "attachment_type": attachment.attachment_type,
        "size": attachment.size,
        "download": download_url(attachment.id),
    }


def feedback_json(feedback: StoredFeedback) -> dict[str, Any]:
    return {
        "id": feedback.id,
        "kind": feedback.kind,
        "feedback_id": feedback.feedback_id,
        "associated_event_id": feedback.associated_event_id,
        "received_at": _iso(feedback.received_at),
        "message": feedback.message,
        "name": feedback.name,
        "contact_email": feedback.contact_email,
    }


def _event_id(raw: str) -> str:
    try:
        return normalize_event_id(raw, "requested")
    except Rejected:
        raise Rejected(404, "no such event") from None


async def _stored(request: web.Request, query: Callable[[sqlite3.Connection], _T]) -> _T:
    store = request.app[STATE].store
    return await _read(lambda: store.read(query))
