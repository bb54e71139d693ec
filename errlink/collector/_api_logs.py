"""The read API's logs: `/api/0/logs/`, newest first, filtered like the logs page."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from aiohttp import web

from . import _logs
from ._api import API_PREFIX, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from ._errors import Rejected
from ._logs import LEVELS, LogFilter, log_json
from ._state import STATE
from ._store import StoreError
from ._trace_queries import parse_trace_id

LOGS_API_PATH = f"{API_PREFIX}/logs/"
_LEVEL_ALIASES = {"warning": "warn", "critical": "fatal"}


def add_log_api_routes(app: web.Application) -> None:
    app.router.add_get(LOGS_API_PATH, list_logs, name="api-logs")


def log_filter(query: Mapping[str, str], *, strict: bool) -> LogFilter:
    """`level`, `q` (text in the body) and `trace` from a query string. `strict`: a bad level
    or trace id is a 400, else it is ignored."""
    level = query.get("level") or None
    if level is not None:
        level = _LEVEL_ALIASES.get(level.lower(), level.lower())
        if level not in LEVELS:
            if strict:
                raise Rejected(400, f"level must be one of {', '.join(LEVELS)}")
            level = None
    trace = query.get("trace") or None
    trace_id = parse_trace_id(trace.strip().lower()) if trace is not None else None
    if trace is not None and trace_id is None and strict:
        raise Rejected(400, "a trace id is 32 hexadecimal characters")
    text = (query.get("q") or "").strip()[:200] or None
    return LogFilter(level=level, text=text, trace_id=trace_id)


def page_limits(query: Mapping[str, str], default: int) -> tuple[int | None, int]:
    """`before` (a row id: older than it) and `limit` from a query string."""
    before = _number(query.get("before"), "before")
    limit = _number(query.get("limit"), "limit")
    return before, default if limit is None else max(1, min(limit, MAX_PAGE_SIZE))


def _number(raw: str | None, name: str) -> int | None:
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
        raise Rejected(400, f"{name} must be a positive integer")
    return int(raw)


async def list_logs(request: web.Request) -> web.Response:
    """`{"logs": [log, ...], "next": <before for the next page> | null}`; each log with its
    attributes as plain values. Filters: `level`, `q`, `trace`; paging: `before`, `limit`."""
    where = log_filter(request.query, strict=True)
    before, limit = page_limits(request.query, DEFAULT_PAGE_SIZE)
    store = request.app[STATE].store
    try:
        rows = await asyncio.to_thread(
            store.read, lambda db: _logs.newest(db, where, before=before, limit=limit)
        )
    except StoreError as exc:
        raise Rejected(503, str(exc)) from None
    following = rows[-1].id if len(rows) == limit else None
    return web.json_response({"logs": [log_json(log) for log in rows], "next": following})
