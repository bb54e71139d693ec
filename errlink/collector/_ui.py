"""The web UI's routes and its first page, the group list (one group: `_ui_group`; one event:
`_ui_event`; the stats: `_ui_stats`).

Server-rendered HTML with no script and no external asset. Every page costs a handful of
indexed queries on one database connection, whatever the number of stored events (an issue's
tag breakdown reads its newest 1,000 events at most).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass

from aiohttp import web

from . import _queries
from ._group_index import NO_ENVIRONMENT, NO_ENVIRONMENT_LABEL
from ._html import Markup, html, join, url
from ._queries import GroupCursor, GroupFilter, StoredGroup
from ._state import STATE
from ._templates import (
    LEVELS,
    STYLESHEET_PATH,
    level_badge,
    page,
    timestamp,
)
from ._ui_common import (
    GROUPS_PER_PAGE,
    error_page,
    event_id_if_stored,
    html_response,
    limit_param,
    page_errors,
    page_size,
    read,
    stylesheet,
)
from ._ui_event import event_page
from ._ui_feedback import add_feedback_routes
from ._ui_group import group_page
from ._ui_logs import add_logs_routes
from ._ui_stats import STATS_PATH, intake_notice, stats_page
from ._ui_trace import trace_id_if_stored, trace_page, trace_path

_EVENT_ID = re.compile(r"[0-9a-fA-F]{32}|[0-9a-fA-F-]{36}")


def add_ui_routes(app: web.Application) -> None:
    app.router.add_get("/", group_list, name="ui-groups")
    app.router.add_get("/groups/{group_id}/", group_page, name="ui-group")
    app.router.add_get("/events/{event_id}/", event_page, name="ui-event")
    app.router.add_get("/traces/{trace_id}/", trace_page, name="ui-trace")
    app.router.add_get(STATS_PATH, stats_page, name="ui-stats")
    add_feedback_routes(app)
    add_logs_routes(app)
    app.router.add_get(STYLESHEET_PATH, stylesheet, name="ui-stylesheet")


# -- the group list ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _ListPage:
    groups: list[StoredGroup]
    has_more: bool
    environments: list[str]
    events_stored: bool


@page_errors
async def group_list(request: web.Request) -> web.StreamResponse:
    environment = request.query.get("environment") or None
    level = request.query.get("level") or None
    text = request.query.get("q", "").strip()
    limit = page_size(request, GROUPS_PER_PAGE)
    after = None
    if request.query.get("after"):
        after = GroupCursor.parse(request.query["after"])
        if after is None:
            return error_page(400, "Bad page link", "The ?after= value is not a valid position.")
    if text and _EVENT_ID.fullmatch(text):
        found = await event_id_if_stored(request, text)
        if found is not None:
            raise web.HTTPFound(url(f"/events/{found}/"))
        trace = await trace_id_if_stored(request, text)
        if trace is not None:
            raise web.HTTPFound(trace_path(trace))
    where = GroupFilter(
        environment=NO_ENVIRONMENT if environment == NO_ENVIRONMENT_LABEL else environment,
        level=level,
        text=text or None,
    )

    def query(db: sqlite3.Connection) -> _ListPage:
        groups = _queries.list_groups(db, where, after, limit + 1)
        stored = bool(groups) or db.execute("SELECT 1 FROM groups LIMIT 1").fetchone() is not None
        return _ListPage(groups[:limit], len(groups) > limit, _queries.environments(db), stored)

    result = await read(request, query)
    # Refused requests and items not stored say why something sent may be missing here.
    heading = join([html("<h1>Issues</h1>"), intake_notice(request.app[STATE])])
    if not result.events_stored:
        return html_response(page("Issues", join([heading, _empty_state(request)])))
    filters = _filters_form(result.environments, environment, level, text)
    links = {"environment": environment, "level": level, "q": text, "limit": limit_param(limit)}
    pager = _list_pager(result, links, first_page=after is None)
    body = join([heading, filters, _groups_table(result.groups), pager])
    return html_response(page("Issues", body))


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
        '<input type="search" name="q" value="{text}"'
        ' placeholder="search titles, or an event or trace id" aria-label="search">'
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
