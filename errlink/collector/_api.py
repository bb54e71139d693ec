"""The read API under `/api/0/`: stored events and counters, as JSON."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web

from ._errors import Rejected
from ._records import normalize_event_id
from ._state import STATE
from ._store import StoredEvent, StoreError

API_PREFIX = "/api/0"
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
MAX_OFFSET = 2**53

_T = TypeVar("_T")


def add_api_routes(app: web.Application) -> None:
    app.router.add_get(f"{API_PREFIX}/events/", list_events, name="api-events")
    app.router.add_get(f"{API_PREFIX}/events/{{event_id}}/", get_event, name="api-event")
    app.router.add_get(f"{API_PREFIX}/stats/", get_stats, name="api-stats")


async def list_events(request: web.Request) -> web.Response:
    """`{"count", "limit", "offset", "events": [event, ...]}`, newest first."""
    limit = _int_param(request, "limit", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
    offset = _int_param(request, "offset", 0, 0, MAX_OFFSET)
    store = request.app[STATE].store
    total = await _read(store.count_events)
    events = await _read(lambda: store.list_events(limit=limit, offset=offset))
    return web.json_response(
        {
            "count": total,
            "limit": limit,
            "offset": offset,
            "events": [event_json(event) for event in events],
        }
    )


async def get_event(request: web.Request) -> web.Response:
    """The newest stored copy of the event, with `copies`: how many times it was stored."""
    try:
        event_id = normalize_event_id(request.match_info["event_id"], "requested")
    except Rejected:
        raise Rejected(404, "no such event") from None
    store = request.app[STATE].store
    copies = await _read(lambda: store.find_event(event_id))
    if not copies:
        raise Rejected(404, f"no event with id {event_id}")
    return web.json_response({**event_json(copies[0]), "copies": len(copies)})


async def get_stats(request: web.Request) -> web.Response:
    """Counts of stored data, of client-reported drops and of answered ingestion requests."""
    state = request.app[STATE]
    store = state.store
    events = await _read(store.count_events)
    reports = await _read(store.count_client_reports)
    totals = await _read(store.discarded_totals)
    return web.json_response(
        {
            "events": events,
            "client_reports": reports,
            "discarded": [
                {"reason": reason, "category": category, "quantity": quantity}
                for (reason, category), quantity in totals.items()
            ],
            "discarded_total": sum(totals.values()),
            "requests": {str(status): n for status, n in sorted(state.request_statuses.items())},
            "ignored_items": dict(sorted(state.ignored_items.items())),
        }
    )


def event_json(event: StoredEvent) -> dict[str, Any]:
    received = datetime.datetime.fromtimestamp(event.received_at, datetime.timezone.utc)
    return {
        "id": event.row_id,
        "event_id": event.event_id,
        "project_id": event.project_id,
        "received_at": received.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "level": event.level,
        "environment": event.environment,
        "release": event.release,
        "exception_type": event.exception_type,
        "exception_value": event.exception_value,
        "message": event.message,
        "payload": event.payload,
    }


async def _read(query: Callable[[], _T]) -> _T:
    try:
        return await asyncio.to_thread(query)
    except StoreError as exc:
        raise Rejected(503, str(exc)) from None


def _int_param(
    request: web.Request, name: str, default: int, lowest: int, highest: int | None
) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise Rejected(400, f"{name} must be an integer") from None
    if value < lowest or (highest is not None and value > highest):
        bounds = f"between {lowest} and {highest}" if highest is not None else f">= {lowest}"
        raise Rejected(400, f"{name} must be {bounds}")
    return value
