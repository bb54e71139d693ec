"""The web UI's trace views: a trace's events across projects (`/traces/<trace_id>/`), and the
"other events in this trace" section of an event page."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from aiohttp import web

from ._html import Markup, html, join, url
from ._queries import EventSummary, StoredEvent
from ._templates import level_badge, page, timestamp
from ._trace_queries import other_trace_events, parse_trace_id, trace_events
from ._ui_common import (
    EVENTS_PER_PAGE,
    NotFound,
    error_page,
    html_response,
    limit_param,
    optional_int,
    page_errors,
    page_size,
    read,
)

# How many other events of its trace an event page lists (newest first).
TRACE_EVENTS_SHOWN = 50


def trace_path(trace_id: str) -> str:
    return f"/traces/{trace_id}/"


# -- the event page's section -----------------------------------------------------------------


@dataclass(frozen=True)
class TraceSection:
    trace_id: str
    others: list[EventSummary]
    has_more: bool


def load_trace_section(db: sqlite3.Connection, event: StoredEvent) -> TraceSection | None:
    """The newest other events of the event's trace; None when the event carries no trace."""
    if event.trace_id is None:
        return None
    others = other_trace_events(db, event.trace_id, event.event_id, TRACE_EVENTS_SHOWN + 1)
    return TraceSection(
        event.trace_id, others[:TRACE_EVENTS_SHOWN], len(others) > TRACE_EVENTS_SHOWN
    )


def render_trace_section(section: TraceSection | None) -> Markup:
    if section is None:
        return Markup("")
    trace_link = html(
        'trace <a class="trace-id mono" href="{u}">{id}</a>',
        u=trace_path(section.trace_id),
        id=section.trace_id,
    )
    if not section.others:
        listing = html('<p class="muted">No other stored event is in this trace.</p>')
    else:
        listing = _events_table(section.others)
        if section.has_more:
            listing = join(
                [
                    listing,
                    html(
                        '<p class="muted">The newest {n} are shown: '
                        '<a href="{u}">every event of this trace »</a></p>',
                        n=TRACE_EVENTS_SHOWN,
                        u=trace_path(section.trace_id),
                    ),
                ]
            )
    return html(
        '<section class="trace" id="trace"><h2>Other events in this trace</h2>'
        '<p class="muted">{link}</p>{listing}</section>',
        link=trace_link,
        listing=listing,
    )


# -- the trace page ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _TracePage:
    trace_id: str
    events: list[EventSummary]
    has_more: bool


@page_errors
async def trace_page(request: web.Request) -> web.StreamResponse:
    trace_id = parse_trace_id(request.match_info["trace_id"])
    if trace_id is None:
        return error_page(
            400, "Not a trace id", "A trace id is 32 hexadecimal characters (contexts.trace)."
        )
    before = optional_int(request.query.get("before", ""))
    limit = page_size(request, EVENTS_PER_PAGE)

    def query(db: sqlite3.Connection) -> _TracePage:
        events = trace_events(db, trace_id, before, limit + 1)
        if not events and before is None:
            raise NotFound(
                "No such trace",
                "No stored event carries this trace id (they may have been pruned by "
                "--max-events).",
            )
        return _TracePage(trace_id, events[:limit], len(events) > limit)

    result = await read(request, query)
    body = html(
        '<p><a href="/">« all issues</a></p><h1>Trace <code>{id}</code></h1>'
        '<p class="muted">Events of every project that carry this trace id, newest first · '
        '<a href="{api}">JSON</a></p>{events}{pager}',
        id=trace_id,
        api=f"/api/0/traces/{trace_id}/events/",
        events=_events_table(result.events),
        pager=_pager(result, limit),
    )
    return html_response(page(f"Trace {trace_id}", body))


def _pager(result: _TracePage, limit: int) -> Markup:
    if not result.has_more:
        return Markup("")
    older = url(
        trace_path(result.trace_id),
        {"before": result.events[-1].row_id, "limit": limit_param(limit)},
    )
    return html('<nav class="pages"><a href="{u}">older events »</a></nav>', u=older)


def _events_table(events: list[EventSummary]) -> Markup:
    return html(
        '<table class="events trace-events"><thead><tr><th>received</th><th>event</th>'
        "<th>level</th><th>project</th><th>environment</th><th>title</th></tr></thead>"
        "<tbody>{rows}</tbody></table>",
        rows=join(_event_row(event) for event in events),
    )


def _event_row(event: EventSummary) -> Markup:
    if event.exception_type:
        text = f"{event.exception_type}: {event.exception_value or ''}"
    else:
        text = event.message or "(no message)"
    title = (
        html('<a href="{u}">{t}</a>', u=f"/groups/{event.group_id}/", t=text)
        if event.group_id is not None
        else html("{t}", t=text)
    )
    return html(
        '<tr><td>{received}</td><td><a class="mono event-link" href="{href}">{short}</a></td>'
        "<td>{level}</td><td>{project}</td><td>{env}</td><td>{title}</td></tr>",
        received=timestamp(event.received_at),
        href=f"/events/{event.event_id}/",
        short=event.event_id[:12],
        level=level_badge(event.level),
        project=event.project_id,
        env=event.environment or "",
        title=title,
    )


async def trace_id_if_stored(request: web.Request, text: str) -> str | None:
    """`text` as a trace id when a stored event carries it (for the list's search box)."""
    trace_id = parse_trace_id(text)
    if trace_id is None:
        return None
    found = await read(request, lambda db: trace_events(db, trace_id, None, 1))
    return trace_id if found else None
