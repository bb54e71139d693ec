"""The ingestion endpoints: `/api/<project>/envelope/` and the legacy `/api/<project>/store/`."""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web

from .._wire.codec import loads
from .._wire.envelope import Envelope, EnvelopeError, Item, parse_envelope
from ._attachments import attachment_record
from ._auth import check_key, key_from_envelope_dsn, key_from_request
from ._decode import decode_content, decode_raven_body, is_compressed, read_body
from ._errors import Rejected
from ._feedback import feedback_record, user_report_record
from ._logs import log_records
from ._monitors import check_in_record
from ._outcomes import Handler, count_ignored, counted, refusals_noted
from ._records import (
    EventRecord,
    WriteBatch,
    client_report_record,
    event_record,
    normalize_event_id,
)
from ._release_health import aggregate_records, has_release, session_record
from ._state import STATE, CollectorState
from ._store import StoreError

logger = logging.getLogger("errlink.collector")

__all__ = ["INGEST_ROUTES", "Handler", "add_ingest_routes"]

INGEST_ROUTES = frozenset({"ingest-envelope", "ingest-store"})
# Bodies up to this size are decoded and parsed on the loop; larger ones in a worker thread,
# so one big request never stalls the others. (A small compressed body may still inflate up to
# the decompressed limit on the loop: tens of milliseconds at worst.)
_ON_LOOP_BYTES = 64 * 1024
_T = TypeVar("_T")


def add_ingest_routes(app: web.Application) -> None:
    app.router.add_post("/api/{project_id}/envelope/", receive_envelope, name="ingest-envelope")
    app.router.add_post("/api/{project_id}/store/", receive_store, name="ingest-store")


@counted
async def receive_envelope(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    await _faults(request, state)
    with refusals_noted(request, state):
        return await _receive_envelope(request, state)


async def _receive_envelope(request: web.Request, state: CollectorState) -> web.StreamResponse:
    settings = state.settings
    project_id = _checked_project(request, state)
    presented_key = key_from_request(request.headers, request.query)
    if presented_key is not None:
        check_key(presented_key, settings.public_key)
    encoding = request.headers.get("Content-Encoding", "")
    if presented_key is None and is_compressed(encoding):
        # The envelope's own `dsn` is only readable after inflating, and nothing is inflated
        # for a client that has not shown the key.
        raise Rejected(
            401,
            "missing public key: a compressed envelope must carry it in the X-Sentry-Auth "
            "header or ?sentry_key=",
        )
    body = await _read_body(request, state)
    envelope = await _off_loop(
        len(body),
        lambda: _parse_envelope(decode_content(body, encoding, settings.max_decompressed_bytes)),
    )
    if presented_key is None:
        check_key(key_from_envelope_dsn(envelope.headers.get("dsn")), settings.public_key)
    state.faults.check_categories(item.type for item in envelope.items)
    if len(envelope.items) > settings.max_envelope_items:
        raise Rejected(
            413,
            f"envelope has {len(envelope.items)} items, more than the limit of "
            f"{settings.max_envelope_items}",
        )

    batch, ignored = await _off_loop(len(body), lambda: _batch(envelope, project_id))
    await _store(state, batch)
    count_ignored(state, ignored)
    event_id = envelope.headers.get("event_id")
    if event_id is not None:
        event_id = normalize_event_id(event_id, "envelope header")
    elif batch.events:
        event_id = batch.events[0].event_id
    return web.json_response({"id": event_id} if event_id else {})


def _batch(envelope: Envelope, project_id: str) -> tuple[WriteBatch, collections.Counter[str]]:
    """What of the envelope is stored, and the types of the items that are not."""
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
        elif item.type == "attachment":
            batch.attachments.append(
                attachment_record(
                    item, project_id=project_id, event_id=header_event_id, where=where
                )
            )
        elif item.type == "feedback":
            batch.feedback.append(
                feedback_record(
                    _item_json(item, where),
                    project_id=project_id,
                    fallback_id=header_event_id,
                    where=where,
                )
            )
        elif item.type == "user_report":
            batch.feedback.append(
                user_report_record(_item_json(item, where), project_id=project_id, where=where)
            )
        elif item.type in ("session", "sessions"):
            payload = _item_json(item, where)
            if not has_release(payload):
                ignored[item.type] += 1
            elif item.type == "session":
                batch.session_updates.append(
                    session_record(payload, project_id=project_id, where=where)
                )
            else:
                batch.session_aggregates.extend(
                    aggregate_records(payload, project_id=project_id, where=where)
                )
        elif item.type == "check_in":
            batch.check_ins.append(
                check_in_record(_item_json(item, where), project_id=project_id, where=where)
            )
        elif item.type == "log":
            batch.logs.extend(
                log_records(
                    _item_json(item, where),
                    item.headers,
                    project_id=project_id,
                    item_index=index,
                    where=where,
                )
            )
        else:
            ignored[item.type] += 1
    return batch, ignored


@counted
async def receive_store(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    await _faults(request, state)
    with refusals_noted(request, state):
        return await _receive_store(request, state)


async def _receive_store(request: web.Request, state: CollectorState) -> web.StreamResponse:
    project_id = _checked_project(request, state)
    check_key(key_from_request(request.headers, request.query), state.settings.public_key)
    body = await _read_body(request, state)
    payload = await _off_loop(len(body), lambda: _store_payload(request, state, body))
    record = event_record(payload, project_id=project_id, fallback_event_id=None, where="event")
    await _store(state, WriteBatch(events=[record]))
    return web.json_response({"id": record.event_id})


async def _faults(request: web.Request, state: CollectorState) -> None:
    async def read() -> bytes:
        # Reading may be refused for real (too large, too slow) even when a fault is injected.
        with refusals_noted(request, state):
            return await _read_body(request, state)

    await state.faults.before_ingest(read)


def _checked_project(request: web.Request, state: CollectorState) -> str:
    project_id = request.match_info["project_id"]
    if project_id != state.settings.project_id:
        raise Rejected(404, f"unknown project {project_id!r:.40}")
    return project_id


async def _read_body(request: web.Request, state: CollectorState) -> bytes:
    settings = state.settings
    try:
        return await asyncio.wait_for(
            read_body(request, settings.max_body_bytes), settings.body_timeout
        )
    except asyncio.TimeoutError:
        # Close the connection after the answer, without waiting for the rest (aiohttp would
        # otherwise linger, reading the stalled body for several more seconds).
        request.protocol.close()
        request.content.feed_eof()
        raise Rejected(
            408, f"the request body did not arrive within {settings.body_timeout:g}s"
        ) from None


async def _off_loop(size: int, work: Callable[[], _T]) -> _T:
    if size <= _ON_LOOP_BYTES:
        return work()
    return await asyncio.to_thread(work)


def _store_payload(request: web.Request, state: CollectorState, body: bytes) -> Any:
    limit = state.settings.max_decompressed_bytes
    body = decode_content(body, request.headers.get("Content-Encoding", ""), limit)
    if not body.strip():
        raise Rejected(400, "empty store body")
    if body.lstrip()[:1] != b"{":
        body = decode_raven_body(body, limit)
    return _json(body, "store body")


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
        for attachment in batch.attachments:
            logger.info(
                "stored attachment %r (%d bytes) of event %s",
                attachment.filename,
                len(attachment.data),
                attachment.event_id,
            )
        for feedback in batch.feedback:
            logger.info("stored %s about event %s", feedback.kind, feedback.associated_event_id)


def _title(event: EventRecord) -> str:
    if event.exception_type:
        return f"[{event.level}] {event.exception_type}: {event.exception_value or ''}"
    return f"[{event.level}] {event.message or '<no message>'}"
