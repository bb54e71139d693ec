"""The web UI: the group list, a group with its events, and one event in full.

Server-rendered HTML with no script and no external asset. Every page costs a handful of
indexed queries on one database connection, whatever the number of stored events.
"""

from __future__ import annotations

import asyncio
import functools
import re
import sqlite3
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from aiohttp import web

from . import _queries
from ._errors import Rejected
from ._event_view import event_sections
from ._group_index import NO_ENVIRONMENT, NO_ENVIRONMENT_LABEL
from ._grouping import culprit, title
from ._html import Markup, html, join, url
from ._queries import EventSummary, GroupCursor, GroupFilter, StoredEvent, StoredGroup
from ._records import normalize_event_id
from ._state import STATE
from ._store import StoreError
from ._templates import (
    CONTENT_SECURITY_POLICY,
    LEVELS,
    STYLESHEET,
    STYLESHEET_PATH,
    level_badge,
    page,
    plural,
    timestamp,
)

GROUPS_PER_PAGE = 50
EVENTS_PER_PAGE = 50
MAX_PER_PAGE = 500
_EVENT_ID = re.compile(r"[0-9a-fA-F]{32}|[0-9a-fA-F-]{36}")
_T = TypeVar("_T")


def add_ui_routes(app: web.Application) -> None:
    app.router.add_get("/", group_list, name="ui-groups")
    app.router.add_get("/groups/{group_id}/", group_page, name="ui-group")
    app.router.add_get("/events/{event_id}/", event_page, name="ui-event")
    app.router.add_get(STYLESHEET_PATH, stylesheet, name="ui-stylesheet")


class _NotFound(Exception):
    def __init__(self, heading: str, text: str) -> None:
        super().__init__(heading)
        self.heading = heading
        self.text = text


Page = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _page_errors(handler: Page) -> Page:
    """Answer a missing object with a 404 page, and an unreadable database with a 503 page."""

    @functools.wraps(handler)
    async def answering(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except _NotFound as missing:
            return _error_page(404, missing.heading, missing.text)
        except StoreError as exc:
            return _error_page(503, "The event database cannot be read", str(exc))

    return answering


# -- the group list ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _ListPage:
    groups: list[StoredGroup]
    has_more: bool
    environments: list[str]
    events_stored: bool


@_page_errors
async def group_list(request: web.Request) -> web.StreamResponse:
    environment = request.query.get("environment") or None
    level = request.query.get("level") or None
    text = request.query.get("q", "").strip()
    limit = _page_size(request, GROUPS_PER_PAGE)
    after = None
    if request.query.get("after"):
        after = GroupCursor.parse(request.query["after"])
        if after is None:
            return _error_page(400, "Bad page link", "The ?after= value is not a valid position.")
    if text and _EVENT_ID.fullmatch(text):
        found = await _event_id_if_stored(request, text)
        if found is not None:
            raise web.HTTPFound(url(f"/events/{found}/"))
    where = GroupFilter(
        environment=NO_ENVIRONMENT if environment == NO_ENVIRONMENT_LABEL else environment,
        level=level,
        text=text or None,
    )

    def query(db: sqlite3.Connection) -> _ListPage:
        groups = _queries.list_groups(db, where, after, limit + 1)
        stored = bool(groups) or db.execute("SELECT 1 FROM groups LIMIT 1").fetchone() is not None
        return _ListPage(groups[:limit], len(groups) > limit, _queries.environments(db), stored)

    result = await _read(request, query)
    heading = html("<h1>Issues</h1>")
    if not result.events_stored:
        return _html_response(page("Issues", join([heading, _empty_state(request)])))
    filters = _filters_form(result.environments, environment, level, text)
    links = {"environment": environment, "level": level, "q": text, "limit": _limit(limit)}
    pager = _list_pager(result, links, first_page=after is None)
    body = join([heading, filters, _groups_table(result.groups), pager])
    return _html_response(page("Issues", body))


def _groups_table(groups: list[StoredGroup]) -> Markup:
    if not groups:
        return html('<p class="empty">No issue matches these filters.</p>')
    return html(
        '<table class="groups"><thead><tr><th>level</th><th>issue</th>'
        '<th class="num">events</th><th>last seen</th><th>first seen</th></tr></thead>'
        "<tbody>{rows}</tbody></table>",
        rows=join(_group_row(group) for group in groups),
    )


def _list_pager(result: _ListPage, query: Mapping[str, object], *, first_page: bool) -> Markup:
    if first_page and not result.has_more:
        return Markup("")
    links = [html('<a href="{u}">« newest</a>', u=url("/", query))]
    if result.has_more:
        last = result.groups[-1]
        cursor = GroupCursor(last.last_seen, last.id).encode()
        links.append(html('<a href="{u}">older »</a>', u=url("/", {**query, "after": cursor})))
    return html('<nav class="pages">{links}</nav>', links=join(links))


def _group_row(group: StoredGroup) -> Markup:
    return html(
        "<tr><td>{level}</td><td>"
        '<a class="group-title" href="{href}">{title}</a>'
        '<div class="culprit">{culprit}</div></td>'
        '<td class="num">{count}</td><td>{last}</td><td>{first}</td></tr>',
        level=level_badge(group.level),
        href=f"/groups/{group.id}/",
        title=group.title,
        culprit=group.culprit or "",
        count=f"{group.count:,}",
        last=timestamp(group.last_seen),
        first=timestamp(group.first_seen),
    )


def _filters_form(
    environments: list[str], environment: str | None, level: str | None, text: str
) -> Markup:
    env_options = [html('<option value="">all environments</option>')]
    for name in environments:
        value = NO_ENVIRONMENT_LABEL if name == NO_ENVIRONMENT else name
        env_options.append(_option(value, value, selected=value == environment))
    level_options = [html('<option value="">all levels</option>')]
    level_options += [_option(name, name, selected=name == level) for name in LEVELS]
    return html(
        '<form class="filters" method="get" action="/">'
        '<select name="environment" aria-label="environment">{envs}</select>'
        '<select name="level" aria-label="level">{levels}</select>'
        '<input type="search" name="q" value="{text}" placeholder="search titles, or an event id"'
        ' aria-label="search">'
        '<button type="submit">Filter</button> <a href="/">reset</a></form>',
        envs=join(env_options),
        levels=join(level_options),
        text=text,
    )


def _option(value: str, label: str, *, selected: bool) -> Markup:
    return html(
        '<option value="{value}"{selected}>{label}</option>',
        value=value,
        label=label,
        selected=Markup(" selected") if selected else Markup(""),
    )


def _empty_state(request: web.Request) -> Markup:
    settings = request.app[STATE].settings
    dsn = f"http://{settings.public_key}@{request.host}/{settings.project_id}"
    return html(
        '<div class="empty"><p>No events yet. Point errlink at this collector:</p>'
        "<pre>errlink.init(&quot;{dsn}&quot;)</pre>"
        '<p class="muted">or run <code>errlink test {dsn}</code> to send one.</p></div>',
        dsn=dsn,
    )


# -- one group --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _GroupPage:
    group: StoredGroup
    environments: list[tuple[str, int, float]]
    events: list[EventSummary]
    has_more: bool
    latest_event_id: str | None


@_page_errors
async def group_page(request: web.Request) -> web.StreamResponse:
    group_id = _optional_int(request.match_info["group_id"])
    before = _optional_int(request.query.get("before", ""))
    limit = _page_size(request, EVENTS_PER_PAGE)

    def query(db: sqlite3.Connection) -> _GroupPage:
        group = _queries.get_group(db, group_id) if group_id is not None else None
        if group is None:
            raise _NotFound("No such issue", "There is no issue with this id.")
        events = _queries.group_events(db, group.id, before, limit + 1)
        latest = None
        if group.latest_event_id is not None:
            row = db.execute(
                "SELECT event_id FROM events WHERE id = ?", (group.latest_event_id,)
            ).fetchone()
            latest = row[0] if row else None
        return _GroupPage(
            group,
            _queries.group_environments(db, group.id),
            events[:limit],
            len(events) > limit,
            latest,
        )

    result = await _read(request, query)
    group = result.group
    body = html(
        '<p><a href="/">« all issues</a></p><h1>{badge} {title}</h1>'
        '<div class="culprit">{culprit}</div>{stats}'
        "<h2>Events (newest first)</h2>{events}",
        badge=level_badge(group.level),
        title=group.title,
        culprit=group.culprit or "",
        stats=_group_stats(result),
        events=_group_events(result, first_page=before is None, limit=limit),
    )
    return _html_response(page(group.title, body))


def _group_stats(result: _GroupPage) -> Markup:
    group = result.group
    envs = join(
        html(
            '<span class="tag">{name}: {count}</span>',
            name=NO_ENVIRONMENT_LABEL if name == NO_ENVIRONMENT else name,
            count=f"{count:,}",
        )
        for name, count, _ in result.environments
    )
    latest_link = (
        html('<p><a href="{u}">latest event »</a></p>', u=f"/events/{result.latest_event_id}/")
        if result.latest_event_id
        else Markup("")
    )
    return html(
        '<div class="stats"><div><span class="label">events</span>{count}</div>'
        '<div><span class="label">first seen</span>{first}</div>'
        '<div><span class="label">last seen</span>{last}</div>'
        '<div><span class="label">environments</span><span class="tags">{envs}</span></div>'
        "</div>{latest}",
        count=f"{group.count:,}",
        first=timestamp(group.first_seen),
        last=timestamp(group.last_seen),
        envs=envs,
        latest=latest_link,
    )


def _group_events(result: _GroupPage, *, first_page: bool, limit: int) -> Markup:
    group = result.group
    table = html(
        '<table class="events"><thead><tr><th>received</th><th>event</th><th>level</th>'
        "<th>environment</th><th>release</th><th>message</th></tr></thead>"
        "<tbody>{rows}</tbody></table>",
        rows=join(_event_row(event) for event in result.events),
    )
    if result.has_more:
        older = url(
            f"/groups/{group.id}/", {"before": result.events[-1].row_id, "limit": _limit(limit)}
        )
        return join(
            [table, html('<nav class="pages"><a href="{u}">older events »</a></nav>', u=older)]
        )
    if first_page and len(result.events) < group.count:
        return join(
            [
                table,
                html(
                    '<p class="muted">{n} older events were pruned (the collector keeps the '
                    "newest --max-events events); the counts include them.</p>",
                    n=f"{group.count - len(result.events):,}",
                ),
            ]
        )
    return table


def _event_row(event: EventSummary) -> Markup:
    if event.exception_type:
        text = f"{event.exception_type}: {event.exception_value or ''}"
    else:
        text = event.message or ""
    return html(
        '<tr><td>{received}</td><td><a class="mono" href="{href}">{short}</a></td>'
        "<td>{level}</td><td>{env}</td><td>{release}</td><td>{text}</td></tr>",
        received=timestamp(event.received_at),
        href=f"/events/{event.event_id}/",
        short=event.event_id[:12],
        level=level_badge(event.level),
        env=event.environment or "",
        release=event.release or "",
        text=text,
    )


# -- one event --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _EventPage:
    event: StoredEvent
    copies: int
    group: StoredGroup | None
    older: str | None
    newer: str | None


@_page_errors
async def event_page(request: web.Request) -> web.StreamResponse:
    try:
        event_id = normalize_event_id(request.match_info["event_id"], "requested")
    except Rejected:
        raise _NotFound("No such event", "This is not an event id.") from None

    def query(db: sqlite3.Connection) -> _EventPage:
        copies = _queries.find_event(db, event_id)
        if not copies:
            raise _NotFound(
                "No such event",
                "No stored event has this id (it may have been pruned by --max-events).",
            )
        event = copies[0]
        group, older, newer = None, None, None
        if event.group_id is not None:
            group = _queries.get_group(db, event.group_id)
            older, newer = _queries.event_neighbours(db, event.group_id, event.row_id)
        return _EventPage(event, len(copies), group, older, newer)

    result = await _read(request, query)
    # A large payload takes a while to render: keep the event loop serving meanwhile.
    return _html_response(await asyncio.to_thread(_event_document, result))


def _event_document(result: _EventPage) -> Markup:
    event, payload = result.event, result.event.payload
    event_title = title(payload)
    body = html(
        '<p><a href="/">« all issues</a> · {nav}</p>'
        "<h1>{badge} {title}</h1>"
        '<div class="culprit">{culprit}</div><p class="muted">{meta}</p>{sections}',
        nav=_event_navigation(result),
        badge=level_badge(event.level),
        title=event_title,
        culprit=culprit(payload) or "",
        meta=_event_meta(result),
        sections=event_sections(payload),
    )
    return page(event_title, body)


def _event_navigation(result: _EventPage) -> Markup:
    nav: list[Markup] = []
    if result.group is not None:
        nav.append(
            html(
                'issue: <a href="{u}">{title}</a> ({count})',
                u=f"/groups/{result.group.id}/",
                title=result.group.title,
                count=plural(result.group.count, "event"),
            )
        )
    if result.older:
        nav.append(html('<a href="{u}">« older event</a>', u=f"/events/{result.older}/"))
    if result.newer:
        nav.append(html('<a href="{u}">newer event »</a>', u=f"/events/{result.newer}/"))
    return join(nav, " · ")


def _event_meta(result: _EventPage) -> Markup:
    event = result.event
    meta = [
        html("event <code>{id}</code>", id=event.event_id),
        html("received {t}", t=timestamp(event.received_at)),
    ]
    if event.environment:
        meta.append(html("environment <b>{e}</b>", e=event.environment))
    if event.release:
        meta.append(html("release <b>{r}</b>", r=event.release))
    if result.copies > 1:
        meta.append(html("stored {n} times (the newest copy is shown)", n=result.copies))
    meta.append(html('<a href="{u}">JSON</a>', u=f"/api/0/events/{event.event_id}/"))
    return join(meta, " · ")


# -- shared -----------------------------------------------------------------------------------


async def stylesheet(request: web.Request) -> web.StreamResponse:
    return web.Response(
        text=STYLESHEET,
        content_type="text/css",
        headers={"Cache-Control": "max-age=300", "X-Content-Type-Options": "nosniff"},
    )


async def _event_id_if_stored(request: web.Request, text: str) -> str | None:
    try:
        event_id = normalize_event_id(text, "searched")
    except Rejected:
        return None
    copies = await _read(request, lambda db: _queries.find_event(db, event_id)[:1])
    return copies[0].event_id if copies else None


async def _read(request: web.Request, query: Callable[[sqlite3.Connection], _T]) -> _T:
    return await asyncio.to_thread(request.app[STATE].store.read, query)


def _html_response(body: Markup, status: int = 200) -> web.Response:
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


def _error_page(status: int, heading: str, text: str) -> web.Response:
    body = html('<p><a href="/">« all issues</a></p><h1>{h}</h1><p>{t}</p>', h=heading, t=text)
    return _html_response(page(heading, body), status=status)


def _optional_int(raw: str) -> int | None:
    # Up to 18 digits always fits SQLite's 64-bit integers.
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 18 else None


def _page_size(request: web.Request, default: int) -> int:
    size = _optional_int(request.query.get("limit", ""))
    return default if size is None else max(1, min(size, MAX_PER_PAGE))


def _limit(limit: int) -> int | None:
    # Keep links short: only carry a limit that differs from the default.
    return None if limit in (GROUPS_PER_PAGE, EVENTS_PER_PAGE) else limit
