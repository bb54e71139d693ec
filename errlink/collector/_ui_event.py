"""The web UI's page for one event in full."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass

from aiohttp import web

from . import _attachments, _feedback, _queries
from ._attachments import StoredAttachment
from ._errors import Rejected
from ._event_view import event_sections
from ._feedback import StoredFeedback
from ._grouping import culprit, title
from ._html import Markup, html, join
from ._queries import StoredEvent, StoredGroup
from ._records import normalize_event_id
from ._templates import level_badge, page, plural, timestamp
from ._ui_common import NotFound, html_response, page_errors, read
from ._ui_feedback import event_extras
from ._ui_logs import logs_in_trace_link
from ._ui_trace import TraceSection, load_trace_section, render_trace_section, trace_path


@dataclass(frozen=True)
class _EventPage:
    event: StoredEvent
    copies: int
    group: StoredGroup | None
    older: str | None
    newer: str | None
    attachments: list[StoredAttachment]
    feedback: list[StoredFeedback]
    trace: TraceSection | None


@page_errors
async def event_page(request: web.Request) -> web.StreamResponse:
    try:
        event_id = normalize_event_id(request.match_info["event_id"], "requested")
    except Rejected:
        raise NotFound("No such event", "This is not an event id.") from None

    def query(db: sqlite3.Connection) -> _EventPage:
        copies = _queries.find_event(db, event_id)
        if not copies:
            raise NotFound(
                "No such event",
                "No stored event has this id (it may have been pruned by --max-events).",
            )
        event = copies[0]
        group, older, newer = None, None, None
        if event.group_id is not None:
            group = _queries.get_group(db, event.group_id)
            older, newer = _queries.event_neighbours(db, event.group_id, event.row_id)
        return _EventPage(
            event,
            len(copies),
            group,
            older,
            newer,
            _attachments.of_event(db, event_id),
            _feedback.of_event(db, event_id),
            load_trace_section(db, event),
        )

    result = await read(request, query)
    # A large payload takes a while to render: keep the event loop serving meanwhile.
    return html_response(await asyncio.to_thread(_event_document, result))


def _event_document(result: _EventPage) -> Markup:
    event, payload = result.event, result.event.payload
    event_title = title(payload)
    body = html(
        '<p><a href="/">« all issues</a> · {nav}</p>'
        "<h1>{badge} {title}</h1>"
        '<div class="culprit">{culprit}</div><p class="muted">{meta}</p>{trace}{extras}{sections}',
        nav=_event_navigation(result),
        badge=level_badge(event.level),
        title=event_title,
        culprit=culprit(payload) or "",
        meta=_event_meta(result),
        trace=render_trace_section(result.trace),
        extras=event_extras(result.attachments, result.feedback),
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
    if event.trace_id:
        link = html('<a href="{u}">{t}</a>', u=trace_path(event.trace_id), t=event.trace_id)
        meta.append(html("trace {link}", link=link))
    if event.trace_id:
        meta.append(logs_in_trace_link(event.trace_id))
    if result.copies > 1:
        meta.append(html("stored {n} times (the newest copy is shown)", n=result.copies))
    meta.append(html('<a href="{u}">JSON</a>', u=f"/api/0/events/{event.event_id}/"))
    return join(meta, " · ")
