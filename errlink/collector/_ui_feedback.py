"""The web UI's attachments and feedback: the sections of an event's page, and the page
listing all feedback (also that which names no event).

An attachment is only ever linked as a download (`_download.py`), never shown inline.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from aiohttp import web

from . import _feedback
from ._api_attachments import download_url
from ._attachments import StoredAttachment
from ._feedback import StoredFeedback
from ._html import Markup, html, join, url
from ._templates import page, plural, timestamp
from ._ui_common import html_response, optional_int, page_errors, read

FEEDBACK_PATH = "/feedback/"
FEEDBACK_PER_PAGE = 50


def add_feedback_routes(app: web.Application) -> None:
    app.router.add_get(FEEDBACK_PATH, feedback_page, name="ui-feedback")


def event_extras(attachments: list[StoredAttachment], feedback: list[StoredFeedback]) -> Markup:
    """The event page's "Attachments" and "User feedback" sections (nothing when empty)."""
    parts: list[Markup] = []
    if attachments:
        parts.append(
            html(
                '<h2 id="attachments">Attachments</h2><table class="attachments"><thead><tr>'
                '<th>file</th><th>content type</th><th class="num">bytes</th></tr></thead>'
                "<tbody>{rows}</tbody></table>",
                rows=join(_attachment_row(a) for a in attachments),
            )
        )
    if feedback:
        parts.append(
            html(
                '<h2 id="feedback">User feedback</h2><ul class="feedback">{items}</ul>',
                items=join(_feedback_item(f, link_event=False) for f in feedback),
            )
        )
    return join(parts)


def _attachment_row(attachment: StoredAttachment) -> Markup:
    return html(
        '<tr><td><a class="attachment" href="{href}" download="{name}">{name}</a></td>'
        "<td><code>{type}</code></td>"
        '<td class="num">{size}</td></tr>',
        href=download_url(attachment.id),
        name=attachment.filename,
        type=attachment.content_type,
        size=f"{attachment.size:,}",
    )


def _feedback_item(feedback: StoredFeedback, *, link_event: bool) -> Markup:
    who = [part for part in (feedback.name, feedback.contact_email) if part]
    about = Markup("")
    if link_event and feedback.associated_event_id:
        about = html(
            ' · about <a href="{u}">event <code>{id}</code></a>',
            u=f"/events/{feedback.associated_event_id}/",
            id=feedback.associated_event_id[:12],
        )
    return html(
        '<li class="feedback-item"><pre class="feedback-message">{message}</pre>'
        '<p class="muted small">{who} · {when}{kind}{about}</p></li>',
        message=feedback.message,
        who=" · ".join(who) if who else "anonymous",
        when=timestamp(feedback.received_at),
        kind=" · user_report" if feedback.kind == "user_report" else "",
        about=about,
    )


@dataclass(frozen=True)
class _FeedbackPage:
    total: int
    rows: list[StoredFeedback]


@page_errors
async def feedback_page(request: web.Request) -> web.StreamResponse:
    offset = optional_int(request.query.get("offset", "")) or 0

    def query(db: sqlite3.Connection) -> _FeedbackPage:
        rows = _feedback.newest(db, limit=FEEDBACK_PER_PAGE, offset=offset)
        return _FeedbackPage(_feedback.count(db), rows)

    result = await read(request, query)
    heading = html(
        '<p><a href="/">« all issues</a></p><h1>User feedback</h1><p class="muted">{n}, newest '
        "first</p>",
        n=plural(result.total, "message"),
    )
    if not result.rows:
        listing = html('<p class="empty">No feedback yet.</p>')
    else:
        listing = html(
            '<ul class="feedback">{items}</ul>',
            items=join(_feedback_item(f, link_event=True) for f in result.rows),
        )
    links: list[Markup] = []
    if offset:
        previous = max(0, offset - FEEDBACK_PER_PAGE)
        links.append(html('<a href="{u}">« newer</a>', u=url(FEEDBACK_PATH, {"offset": previous})))
    if offset + FEEDBACK_PER_PAGE < result.total:
        following = offset + FEEDBACK_PER_PAGE
        links.append(html('<a href="{u}">older »</a>', u=url(FEEDBACK_PATH, {"offset": following})))
    pager = html('<nav class="pages">{l}</nav>', l=join(links)) if links else Markup("")
    return html_response(page("User feedback", join([heading, listing, pager])))
