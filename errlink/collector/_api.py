"""The read API under `/api/0/`: stored events and counters, as JSON."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web

from ._errors import Rejected
from ._group_index import NO_ENVIRONMENT, NO_ENVIRONMENT_LABEL
from ._queries import EventSummary, GroupCursor, GroupFilter, StoredEvent, StoredGroup
from ._records import normalize_event_id
from ._state import STATE
from ._store import StoreError
from ._trace_queries import parse_trace_id, trace_events

API_PREFIX = "/api/0"
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
MAX_OFFSET = 2**53

_T = TypeVar("_T")


def add_api_routes(app: web.Application) -> None:
    app.router.add_get(f"{API_PREFIX}/events/", list_events, name="api-events")
    app.router.add_get(f"{API_PREFIX}/events/{{event_id}}/", get_event, name="api-event")
    app.router.add_get(f"{API_PREFIX}/stats/", get_stats, name="api-stats")
    app.router.add_get(f"{API_PREFIX}/groups/", list_groups, name="api-groups")
    app.router.add_get(
        f"{API_PREFIX}/groups/{{group_id}}/events/", list_group_events, name="api-group-events"
    )
    app.router.add_get(
        f"{API_PREFIX}/traces/{{trace_id}}/events/", list_trace_events, name="api-trace-events"
    )


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
    """What was stored, what was counted but not stored, what was refused, and the answers."""
    state = request.app[STATE]
    counts = await _read(state.store.stored_counts)
    return web.json_response(
        {
            "events": counts.events,
            "groups": counts.groups,
            "client_reports": counts.client_reports,
            "discarded": [
                {"reason": reason, "category": category, "quantity": quantity}
                for (reason, category), quantity in counts.discarded.items()
            ],
            "discarded_total": sum(counts.discarded.values()),
            "ignored_items": dict(sorted(state.ignored_items.items())),
            "refusals": state.refusals.summary(),
            "requests": {str(status): n for status, n in sorted(state.request_statuses.items())},
        }
    )


async def list_groups(request: web.Request) -> web.Response:
    """`{"groups": [group, ...], "next": cursor or null}`, most recently seen first.

    Filters: `environment` (`(none)` for events sent without one), `level`, `q` (a substring
    of the title or culprit); `after=<next>` gives the following page. With an environment,
    `count` and `last_seen` are those within it.
    """
    limit = _int_param(request, "limit", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
    after = None
    if request.query.get("after"):
        after = GroupCursor.parse(request.query["after"])
        if after is None:
            raise Rejected(400, "after is not a valid page position")
    environment = request.query.get("environment") or None
    where = GroupFilter(
        environment=NO_ENVIRONMENT if environment == NO_ENVIRONMENT_LABEL else environment,
        level=request.query.get("level") or None,
        text=request.query.get("q") or None,
    )
    store = request.app[STATE].store
    groups = await _read(lambda: store.list_groups(where, after, limit + 1))
    following = None
    if len(groups) > limit:
        groups = groups[:limit]
        following = GroupCursor(groups[-1].last_seen, groups[-1].id).encode()
    return web.json_response({"groups": [group_json(g) for g in groups], "next": following})


async def list_group_events(request: web.Request) -> web.Response:
    """`{"events": [event, ...]}` of one group, newest first; `before=<id>` pages back."""
    raw_id = request.match_info["group_id"]
    if not raw_id.isdigit() or len(raw_id) > 18:
        raise Rejected(404, "no such group")
    limit = _int_param(request, "limit", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
    before = _int_param(request, "before", MAX_OFFSET, 1, MAX_OFFSET)
    store = request.app[STATE].store
    group = await _read(lambda: store.get_group(int(raw_id)))
    if group is None:
        raise Rejected(404, f"no group with id {raw_id}")
    events = await _read(lambda: store.group_events(group.id, before, limit))
    return web.json_response(
        {"group": group_json(group), "events": [summary_json(e) for e in events]}
    )


async def list_trace_events(request: web.Request) -> web.Response:
    """`{"trace_id", "events": [event, ...]}`: the events of every project carrying the trace
    id, newest first, without payloads; `before=<id>` pages back. 400 for a malformed id."""
    trace_id = parse_trace_id(request.match_info["trace_id"])
    if trace_id is None:
        raise Rejected(400, "a trace id is 32 hexadecimal characters")
    limit = _int_param(request, "limit", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
    before = _int_param(request, "before", MAX_OFFSET, 1, MAX_OFFSET)
    store = request.app[STATE].store
    events = await _read(lambda: store.read(lambda db: trace_events(db, trace_id, before, limit)))
    return web.json_response({"trace_id": trace_id, "events": [summary_json(e) for e in events]})


def group_json(group: StoredGroup) -> dict[str, Any]:
    return {
        "id": group.id,
        "project_id": group.project_id,
        "title": group.title,
        "culprit": group.culprit,
        "level": group.level,
        "count": group.count,
        "first_seen": _iso(group.first_seen),
        "last_seen": _iso(group.last_seen),
        "latest_event_row": group.latest_event_id,
    }


def summary_json(event: EventSummary) -> dict[str, Any]:
    return {
        "id": event.row_id,
        "event_id": event.event_id,
        "group_id": event.group_id,
        "trace_id": event.trace_id,
        "project_id": event.project_id,
        "received_at": _iso(event.received_at),
        "level": event.level,
        "environment": event.environment,
        "release": event.release,
        "exception_type": event.exception_type,
        "exception_value": event.exception_value,
        "message": event.message,
    }


def _iso(seconds: float) -> str:
    moment = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event_json(event: StoredEvent) -> dict[str, Any]:
    return {**summary_json(event), "payload": event.payload}


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
