"""The web UI's stats page: what was stored, what was only counted, what was refused.

The same figures as `/api/0/stats/`. Stored counts come from the database; the rest is counted
in memory since the collector started.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web

from . import _queries
from ._html import Markup, html, join
from ._refusals import RefusalLog
from ._state import STATE, CollectorState
from ._templates import page, plural
from ._ui_common import html_response, page_errors, read

STATS_PATH = "/stats/"


@page_errors
async def stats_page(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    counts = await read(request, _queries.stored_counts)
    stored = _table(
        ("what", "count"),
        [
            ("events", f"{counts.events:,}"),
            ("issues", f"{counts.groups:,}"),
            ("client reports", f"{counts.client_reports:,}"),
        ],
        css="stored figures",
    )
    discarded = _table(
        ("reason", "category", "quantity"),
        [(reason, category, f"{n:,}") for (reason, category), n in counts.discarded.items()],
        css="discarded figures",
        empty="No client reported dropping anything.",
    )
    body = html(
        '<p><a href="/">« all issues</a></p><h1>Stats</h1>'
        '<p class="muted">Stored figures are those of the database; the others are counted '
        "since this collector started.</p>"
        "<h2>Stored</h2>{stored}"
        "<h3>Dropped by clients (from their client reports)</h3>{discarded}"
        "<h2>Received, counted, not stored</h2>"
        '<p class="muted">The collector stores events and client reports. Other envelope items '
        "(transactions, sessions, attachments, check-ins, feedback, logs...) are accepted, "
        "counted here by type, and dropped.</p>{ignored}"
        "<h2>Refused</h2>{refused}"
        "<h2>Answers to ingestion requests</h2>{answers}",
        stored=stored,
        discarded=discarded,
        ignored=_ignored_table(state),
        refused=_refusals_table(state.refusals),
        answers=_table(
            ("status", "count"),
            [(str(status), f"{n:,}") for status, n in sorted(state.request_statuses.items())],
            css="answers figures",
            empty="No ingestion request yet.",
        ),
    )
    return html_response(page("Stats", body))


def intake_notice(state: CollectorState) -> Markup:
    """One line for the issue list: how many requests were refused and items not stored."""
    refused = sum(state.refusals.counts.values())
    ignored = sum(state.ignored_items.values())
    if not refused and not ignored:
        return Markup("")
    parts = []
    if refused:
        parts.append(plural(refused, "request") + " refused")
    if ignored:
        parts.append(plural(ignored, "item") + " received but not stored")
    return html(
        '<p class="notice">{text}: see <a href="{href}">stats</a>.</p>',
        text=", ".join(parts),
        href=STATS_PATH,
    )


def _ignored_table(state: CollectorState) -> Markup:
    return _table(
        ("item type", "count"),
        [(item_type, f"{n:,}") for item_type, n in sorted(state.ignored_items.items())],
        css="ignored figures",
        empty="None so far.",
    )


def _refusals_table(refusals: RefusalLog) -> Markup:
    rows = [
        (
            kind,
            str(latest.status) if latest.status is not None else "closed",
            f"{refusals.counts[kind]:,}",
            latest.reason,
            latest.client or "",
        )
        for kind, latest in sorted(refusals.latest.items())
    ]
    return _table(
        ("kind", "status", "count", "latest reason", "client"),
        rows,
        css="refusals",
        empty="None so far.",
    )


def _table(
    headings: tuple[str, ...], rows: Iterable[tuple[str, ...]], *, css: str, empty: str = ""
) -> Markup:
    cells = [
        html("<tr>{cells}</tr>", cells=join(html("<td>{v}</td>", v=value) for value in row))
        for row in rows
    ]
    if not cells:
        return html('<p class="empty-table muted">{empty}</p>', empty=empty)
    return html(
        '<table class="{css}"><thead><tr>{heads}</tr></thead><tbody>{rows}</tbody></table>',
        css=css,
        heads=join(html("<th>{h}</th>", h=heading) for heading in headings),
        rows=join(cells),
    )
