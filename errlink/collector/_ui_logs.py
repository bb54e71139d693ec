"""The web UI's logs page: structured logs, newest first, filtered by level, text and trace;
and the event page's link to the logs of its trace."""

from __future__ import annotations

import sqlite3

from aiohttp import web

from . import _logs
from ._api_logs import log_filter, page_limits
from ._html import Markup, html, join, url
from ._logs import LEVELS, LogFilter, StoredLog, plain_attributes
from ._templates import page, timestamp
from ._ui_common import html_response, page_errors, read

LOGS_PATH = "/logs/"
LOGS_PER_PAGE = 100
# The page's level badges reuse the issue list's colours.
_BADGE = {"trace": "debug", "warn": "warning"}


def add_logs_routes(app: web.Application) -> None:
    app.router.add_get(LOGS_PATH, logs_page, name="ui-logs")


def logs_in_trace_link(trace_id: str | None) -> Markup:
    """The event page's "logs in this trace" link (nothing without a trace id)."""
    if not trace_id:
        return Markup("")
    return html(
        '<a class="logs-in-trace" href="{u}">logs in this trace</a>',
        u=url(LOGS_PATH, {"trace": trace_id}),
    )


@page_errors
async def logs_page(request: web.Request) -> web.StreamResponse:
    where = log_filter(request.query, strict=False)
    before, limit = page_limits(request.query, LOGS_PER_PAGE)

    def query(db: sqlite3.Connection) -> list[StoredLog]:
        return _logs.newest(db, where, before=before, limit=limit)

    rows = await read(request, query)
    heading = html(
        '<p><a href="/">« all issues</a></p><h1>Logs</h1><p class="muted">{what}</p>{form}',
        what=_description(where),
        form=_filters_form(where),
    )
    if rows:
        listing = html(
            '<table class="logs"><thead><tr><th>time</th><th>level</th><th>message</th>'
            "<th>trace</th></tr></thead><tbody>{rows}</tbody></table>",
            rows=join(_row(log) for log in rows),
        )
    else:
        listing = html('<p class="empty">No logs{match}.</p>', match=_matching(where))
    pager = Markup("")
    if len(rows) == limit:
        older = url(LOGS_PATH, {**_filter_query(where), "before": rows[-1].id})
        pager = html('<nav class="pages"><a href="{u}">older »</a></nav>', u=older)
    return html_response(page("Logs", join([heading, listing, pager])))


def _row(log: StoredLog) -> Markup:
    attributes = plain_attributes(log)
    trace = Markup("")
    if log.trace_id:
        trace = html(
            '<a class="trace" href="{u}"><code>{t}</code></a>',
            u=url(LOGS_PATH, {"trace": log.trace_id}),
            t=log.trace_id[:12],
        )
    details = Markup("")
    if attributes:
        details = html(
            '<details><summary>{n} attributes</summary><table class="kv">{rows}</table></details>',
            n=len(attributes),
            rows=join(
                html("<tr><th>{k}</th><td><code>{v}</code></td></tr>", k=name, v=value)
                for name, value in sorted(attributes.items())
            ),
        )
    return html(
        '<tr class="log log-{level}"><td class="when">{when}</td>'
        '<td><span class="level level-{badge}">{level}</span></td>'
        '<td class="body"><div class="log-body">{body}</div>{details}</td><td>{trace}</td></tr>',
        when=timestamp(log.timestamp),
        level=log.level,
        badge=_BADGE.get(log.level, log.level),
        body=log.body,
        details=details,
        trace=trace,
    )


def _filters_form(where: LogFilter) -> Markup:
    options = [html('<option value="">all levels</option>')]
    options += [
        html(
            '<option value="{v}"{s}>{v}</option>',
            v=level,
            s=Markup(" selected") if where.level == level else Markup(""),
        )
        for level in LEVELS
    ]
    return html(
        '<form class="filters" method="get" action="{action}">'
        '<select name="level" aria-label="level">{options}</select>'
        '<input type="search" name="q" value="{text}" placeholder="text in the message"'
        ' aria-label="text">'
        '<input type="search" name="trace" value="{trace}" placeholder="trace id"'
        ' aria-label="trace id" size="34">'
        '<button type="submit">Filter</button> <a href="{action}">reset</a></form>',
        action=LOGS_PATH,
        options=join(options),
        text=where.text or "",
        trace=where.trace_id or "",
    )


def _filter_query(where: LogFilter) -> dict[str, object]:
    return {"level": where.level, "q": where.text, "trace": where.trace_id}


def _description(where: LogFilter) -> Markup:
    return html("newest first{m}", m=_matching(where))


def _matching(where: LogFilter) -> Markup:
    parts = []
    if where.level:
        parts.append(html("level {l}", l=where.level))
    if where.text:
        parts.append(html("containing “{t}”", t=where.text))
    if where.trace_id:
        parts.append(html("in trace {t}", t=where.trace_id))
    return html(", {p}", p=join(parts, ", ")) if parts else Markup("")
