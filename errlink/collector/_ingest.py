"""The ingestion endpoints: `/api/<project>/envelope/` and the legacy `/api/<project>/store/`."""

from __future__ import annotations

import collections
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from .._wire.codec import loads
from .._wire.envelope import Envelope, EnvelopeError, Item, parse_envelope
from ._auth import check_key, key_from_envelope_dsn, key_from_request
from ._decode import decode_content, decode_raven_body, read_body
from ._errors import Rejected
from ._records import (
    EventRecord,
    WriteBatch,
    client_report_record,
    event_record,
    normalize_event_id,
)
from ._state import STATE, CollectorState
from ._store import StoreError

logger = logging.getLogger("errlink.collector")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def add_ingest_routes(app: web.Application) -> None:
    app.router.add_post("/api/{project_id}/envelope/", receive_envelope, name="ingest-envelope")
    app.router.add_post("/api/{project_id}/store/", receive_store, name="ingest-store")


def _counted(handler: Handler) -> Handler:
    """Record the status of every answer, refusals and crashes included."""

    @functools.wraps(handler)
    async def counting_handler(request: web.Request) -> web.StreamResponse:
        statuses = request.app[STATE].request_statuses
        try:
            response = await handler(request)
        except Rejected as exc:
            statuses[exc.status] += 1
            raise
        except web.HTTPException as exc:
            statuses[exc.status] += 1
            raise
        except Exception:
            statuses[500] += 1
            raise
        statuses[response.status] += 1
        return response

    return counting_handler


@_counted
async def receive_envelope(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    await _faults(request, state)
    project_id = _checked_project(request, state)
    presented_key = key_from_request(request.headers, request.query)
    if presented_key is not None:
        check_key(presented_key, state.settings.public_key)
    envelope = _parse_envelope(await _read_decoded_body(request, state))
    if presented_key is None:
        check_key(key_from_envelope_dsn(envelope.headers.get("dsn")), state.settings.public_key)

    header_event_id = envelope.headers.get("event_id")
    if header_event_id is not None:
        header_event_id = normalize_event_id(header_event_id, "envelope header")
    batch = WriteBatch()
    ignored: collections.Counter[str] = collections.Counter()
    for index, item in enumerate(envelope.items):
        where = f"item {index} ({item.type})"
        if item.type == "event":
            payload = _item_json(item, where)
            batch.events.append(
                event_record(
                    payload, project_id=project_id, fallback_event_id=header_event_id, where=where
                )
            )
        elif item.type == "client_report":
            payload = _item_json(item, where)
            batch.client_reports.append(
                client_report_record(payload, project_id=project_id, where=where)
            )
        else:
            ignored[item.type] += 1

    await _store(state, batch)
    state.ignored_items.update(ignored)
    event_id = header_event_id or (batch.events[0].event_id if batch.events else None)
    return web.json_response({"id": event_id} if event_id else {})


@_counted
async def receive_store(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    await _faults(request, state)
    project_id = _checked_project(request, state)
    check_key(key_from_request(request.headers, request.query), state.settings.public_key)
    body = await _read_decoded_body(request, state)
    if not body.strip():
        raise Rejected(400, "empty store body")
    if body.lstrip()[:1] != b"{":
        body = decode_raven_body(body, state.settings.max_decompressed_bytes)
    payload = _json(body, "store body")
    record = event_record(payload, project_id=project_id, fallback_event_id=None, where="event")
    await _store(state, WriteBatch(events=[record]))
    return web.json_response({"id": record.event_id})


async def _faults(request: web.Request, state: CollectorState) -> None:
    await state.faults.before_ingest(lambda: read_body(request, state.settings.max_body_bytes))


def _checked_project(request: web.Request, state: CollectorState) -> str:
    project_id = request.match_info["project_id"]
    if project_id != state.settings.project_id:
        raise Rejected(404, f"unknown project {project_id!r:.40}")
    return project_id


async def _read_decoded_body(request: web.Request, state: CollectorState) -> bytes:
    settings = state.settings
    body = await read_body(request, settings.max_body_bytes)
    return decode_content(
        body, request.headers.get("Content-Encoding", ""), settings.max_decompressed_bytes
    )


def _parse_envelope(body: bytes) -> Envelope:
    try:
        return parse_envelope(body)
    except EnvelopeError as exc:
        raise Rejected(400, f"malformed envelope: {exc}") from None
    except RecursionError:
        raise Rejected(400, "malformed envelope: JSON nested too deeply") from None


def _item_json(item: Item, where: str) -> Any:
    return _json(item.payload, f"{where} payload")


def _json(data: bytes, what: str) -> Any:
    try:
        return loads(data)
    except ValueError:  # includes invalid UTF-8
        raise Rejected(400, f"{what} is not valid JSON") from None
    except RecursionError:
        raise Rejected(400, f"{what} is JSON nested too deeply") from None


async def _store(state: CollectorState, batch: WriteBatch) -> None:
    if not batch:
        return
    try:
        await state.store.write(batch)
    except StoreError as exc:
        raise Rejected(503, f"the collector could not store the data: {exc}") from None
    if logger.isEnabledFor(logging.INFO):
        for event in batch.events:
            logger.info("stored event %s: %s", event.event_id, _title(event))
        for report in batch.client_reports:
            dropped = sum(discard.quantity for discard in report.discards)
            logger.info("stored client report: %d dropped", dropped)


def _title(event: EventRecord) -> str:
    if event.exception_type:
        return f"[{event.level}] {event.exception_type}: {event.exception_value or ''}"
    return f"[{event.level}] {event.message or '<no message>'}"
