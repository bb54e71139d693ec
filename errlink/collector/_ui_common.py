"""What the web UI's pages share: paging, database reads, HTML responses and error pages."""

from __future__ import annotations

import asyncio
import functools
import sqlite3
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiohttp import web

from . import _queries
from ._errors import Rejected
from ._html import Markup, html
from ._records import normalize_event_id
from ._state import STATE
from ._store import StoreError
from ._templates import CONTENT_SECURITY_POLICY, STYLESHEET, page

GROUPS_PER_PAGE = 50
EVENTS_PER_PAGE = 50
MAX_PER_PAGE = 500
_T = TypeVar("_T")


class NotFound(Exception):
    def __init__(self, heading: str, text: str) -> None:
        super().__init__(heading)
        self.heading = heading
        self.text = text


Page = Callable[[web.Request], Awaitable[web.StreamResponse]]


def page_errors(handler: Page) -> Page:
    """Answer a missing object with a 404 page, and an unusable database (unreadable, deleted,
    damaged) with a 503 page saying why."""

    @functools.wraps(handler)
    async def answering(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except NotFound as missing:
            return error_page(404, missing.heading, missing.text)
        except StoreError as exc:
            return error_page(503, "The event database cannot be used", str(exc))

    return answering


async def stylesheet(request: web.Request) -> web.StreamResponse:
    return web.Response(
        text=STYLESHEET,
        content_type="text/css",
        headers={"Cache-Control": "max-age=300", "X-Content-Type-Options": "nosniff"},
    )


async def event_id_if_stored(request: web.Request, text: str) -> str | None:
    try:
        event_id = normalize_event_id(text, "searched")
    except Rejected:
        return None
    copies = await read(request, lambda db: _queries.find_event(db, event_id)[:1])
    return copies[0].event_id if copies else None


async def read(request: web.Request, query: Callable[[sqlite3.Connection], _T]) -> _T:
    return await asyncio.to_thread(request.app[STATE].store.read, query)


def html_response(body: Markup, status: int = 200) -> web.Response:
    return web.Response(
        # Payloads may hold lone surrogates, which UTF-8 cannot encode: show them as "?".
        body=str(body).encode("utf-8", "replace"),
        status=status,
        content_type="text/html",
        charset="utf-8",
        headers={
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
        },
    )


def error_page(status: int, heading: str, text: str) -> web.Response:
    body = html('<p><a href="/">« all issues</a></p><h1>{h}</h1><p>{t}</p>', h=heading, t=text)
    return html_response(page(heading, body), status=status)


def optional_int(raw: str) -> int | None:
    # Up to 18 digits always fits SQLite's 64-bit integers.
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 18 else None


def page_size(request: web.Request, default: int) -> int:
    size = optional_int(request.query.get("limit", ""))
    return default if size is None else max(1, min(size, MAX_PER_PAGE))


def limit_param(limit: int) -> int | None:
    # Keep links short: only carry a limit that differs from the default.
    return None if limit in (GROUPS_PER_PAGE, EVENTS_PER_PAGE) else limit
