"""The web UI's page for one issue (a group): its counts, its latest event in full, a breakdown
of its tags, and its events newest first."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass

from aiohttp import web

from . import _queries
from ._event_view import event_sections
from ._group_index import NO_ENVIRONMENT, NO_ENVIRONMENT_LABEL
from ._html import Markup, html, join, url
from ._queries import EventSummary, StoredEvent, StoredGroup
from ._tag_breakdown import MAX_EVENTS, Breakdown, count_tags
from ._tag_breakdown import render as render_breakdown
from ._templates import level_badge, page, timestamp
from ._ui_common import (
    EVENTS_PER_PAGE,
    NotFound,
    html_response,
    limit_param,
    optional_int,
    page_errors,
    page_size,
    read,
)


@dataclass(frozen=True)
class _GroupPage:
    group: StoredGroup
    environments: list[tuple[str, int, float]]
    events: list[EventSummary]
    has_more: bool
    latest: StoredEvent | None
    tags: Breakdown | None  # on the first page only, like the latest event


@page_errors
async def group_page(request: web.Request) -> web.StreamResponse:
    group_id = optional_int(request.match_info["group_id"])
    before = optional_int(request.query.get("before", ""))
    limit = page_size(request, EVENTS_PER_PAGE)
    first_page = before is None

    def query(db: sqlite3.Connection) -> _GroupPage:
        group = _queries.get_group(db, group_id) if group_id is not None else None
        if group is None:
            raise NotFound("No such issue", "There is no issue with this id.")
        events = _queries.group_events(db, group.id, before, limit + 1)
        latest, tags = None, None
        if group.latest_event_id is not None:
            latest = _queries.event_by_row(db, group.latest_event_id)
        if first_page:
            sources = _queries.recent_tag_sources(db, group.id, MAX_EVENTS + 1)
            tags = count_tags(sources[:MAX_EVENTS], capped=len(sources) > MAX_EVENTS)
        return _GroupPage(
            group,
            _queries.group_environments(db, group.id),
            events[:limit],
            len(events) > limit,
            latest,
            tags,
        )

    result = await read(request, query)
    # A large latest event takes a while to render: keep the event loop serving meanwhile.
    body = await asyncio.to_thread(_group_document, result, first_page, limit)
    return html_response(body)


def _group_document(result: _GroupPage, first_page: bool, limit: int) -> Markup:
    group = result.group
    overview = Markup("")
    if first_page:
        overview = html(
            '<div class="issue-layout"><div class="issue-main">{latest}</div>'
            '<aside class="issue-side">{tags}</aside></div>',
            latest=_latest_event(result.latest),
            tags=render_breakdown(result.tags, group.count) if result.tags else "",
        )
    body = html(
        '<p><a href="/">« all issues</a></p><h1>{badge} {title}</h1>'
        '<div class="culprit">{culprit}</div>{stats}{overview}'
        '<h2 id="events">Events (newest first)</h2>{events}',
        badge=level_badge(group.level),
        title=group.title,
        culprit=group.culprit or "",
        stats=_group_stats(result, first_page),
        overview=overview,
        events=_group_events(result, first_page=first_page, limit=limit),
    )
    return page(group.title, body)


def _group_stats(result: _GroupPage, first_page: bool) -> Markup:
    group = result.group
    envs = join(
        html(
            '<span class="tag">{name}: {count}</span>',
            name=NO_ENVIRONMENT_LABEL if name == NO_ENVIRONMENT else name,
            count=f"{count:,}",
        )
        for name, count, _ in result.environments
    )
    links: list[Markup] = []
    if result.latest is not None:
        links.append(
            html('<a href="{u}">latest event »</a>', u=f"/events/{result.latest.event_id}/")
        )
    if first_page:
        links.append(html('<a href="#tag-breakdown">tags</a>'))
        links.append(html('<a href="#events">all events</a>'))
    return html(
        '<div class="stats"><div><span class="label">events</span>{count}</div>'
        '<div><span class="label">first seen</span>{first}</div>'
        '<div><span class="label">last seen</span>{last}</div>'
        '<div><span class="label">environments</span><span class="tags">{envs}</span></div>'
        '</div><p class="jump">{links}</p>',
        count=f"{group.count:,}",
        first=timestamp(group.first_seen),
        last=timestamp(group.last_seen),
        envs=envs,
        links=join(links, " · "),
    )


def _latest_event(event: StoredEvent | None) -> Markup:
    if event is None:
        return Markup("")
    link = html(
        '<a href="{u}"><code>{id}</code></a>', u=f"/events/{event.event_id}/", id=event.event_id
    )
    meta = [html("event {link}", link=link), html("received {t}", t=timestamp(event.received_at))]
    if event.environment:
        meta.append(html("environment <b>{e}</b>", e=event.environment))
    if event.release:
        meta.append(html("release <b>{r}</b>", r=event.release))
    return html(
        '<h2 id="latest-event">Latest event</h2><p class="muted">{meta}</p>'
        '<div class="latest-event">{sections}</div>',
        meta=join(meta, " · "),
        sections=event_sections(event.payload),
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
            f"/groups/{group.id}/",
            {"before": result.events[-1].row_id, "limit": limit_param(limit)},
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
