"""The release and monitor pages, and their JSON API.

``/releases/``: sessions per release (total, crash-free rate, errored, crashed, abnormal).
``/monitors/``: each monitor's recent check-ins, their status and duration, and whether a
check-in is overdue (missed). Both pages and ``/api/0/monitors/`` take ``?at=<epoch seconds>``
to show the monitors as of another time than now (the collector's clock by default).
"""

from __future__ import annotations

import math
import time

from aiohttp import web

from . import _monitors, _release_health
from ._errors import Rejected
from ._html import Markup, html, join
from ._monitors import MonitorState, Run
from ._release_health import ReleaseHealth
from ._templates import page, timestamp
from ._ui_common import html_response, page_errors, read

RELEASES_PATH = "/releases/"
MONITORS_PATH = "/monitors/"
_RAW_SESSIONS_LIMIT = 1000


def add_release_health_routes(app: web.Application) -> None:
    app.router.add_get(RELEASES_PATH, releases_page, name="ui-releases")
    app.router.add_get(MONITORS_PATH, monitors_page, name="ui-monitors")
    app.router.add_get("/api/0/releases/", releases_api, name="api-releases")
    app.router.add_get("/api/0/sessions/", sessions_api, name="api-sessions")
    app.router.add_get("/api/0/monitors/", monitors_api, name="api-monitors")


def _at(request: web.Request) -> float:
    raw = request.query.get("at")
    if raw is None:
        return time.time()
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise Rejected(400, f"'at' must be seconds since the epoch, not {raw!r:.40}")
    return value


# -- JSON --------------------------------------------------------------------------------------


async def releases_api(request: web.Request) -> web.Response:
    """`{"releases": [{release, environment, sessions, exited, errored, crashed, abnormal,
    crash_free_rate}, ...]}`, the most recently active first."""
    found = await read(request, _release_health.releases)
    return web.json_response({"releases": [health.as_json() for health in found]})


async def sessions_api(request: web.Request) -> web.Response:
    """`{"sessions": [update, ...], "aggregates": [bucket, ...]}`: the newest session updates
    (application mode) and per-minute buckets (request mode) as received."""
    updates = await read(
        request, lambda db: _release_health.session_updates(db, limit=_RAW_SESSIONS_LIMIT)
    )
    buckets = await read(
        request, lambda db: _release_health.aggregates(db, limit=_RAW_SESSIONS_LIMIT)
    )
    return web.json_response({"sessions": updates, "aggregates": buckets})


async def monitors_api(request: web.Request) -> web.Response:
    """`{"at", "monitors": [{slug, status, missed, monitor_config, check_ins: [...]}, ...]}`."""
    at = _at(request)
    found = await read(request, lambda db: _monitors.monitors(db, at))
    return web.json_response({"at": at, "monitors": [state.as_json() for state in found]})


# -- HTML --------------------------------------------------------------------------------------


@page_errors
async def releases_page(request: web.Request) -> web.StreamResponse:
    found = await read(request, _release_health.releases)
    if not found:
        body = html(
            "<h1>Releases</h1><p>No sessions yet. A client with a <code>release</code> "
            "sends them (see release health in the docs).</p>"
        )
    else:
        body = html(
            '<h1>Releases</h1><table class="releases"><thead><tr><th>release</th>'
            '<th>environment</th><th class="num">sessions</th><th class="num">crash-free</th>'
            '<th class="num">errored</th><th class="num">crashed</th>'
            '<th class="num">abnormal</th></tr></thead><tbody>{rows}</tbody></table>',
            rows=join(_release_row(health) for health in found),
        )
    return html_response(page("Releases", body))


def _release_row(health: ReleaseHealth) -> Markup:
    rate = health.crash_free_rate
    return html(
        '<tr class="release"><td><code>{release}</code></td><td>{env}</td>'
        '<td class="num sessions">{total}</td><td class="num crash-free">{rate}</td>'
        '<td class="num errored">{errored}</td><td class="num crashed">{crashed}</td>'
        '<td class="num abnormal">{abnormal}</td></tr>',
        release=health.release,
        env=health.environment,
        total=f"{health.sessions:,}",
        rate="-" if rate is None else f"{rate * 100:.1f}%",
        errored=f"{health.errored:,}",
        crashed=f"{health.crashed:,}",
        abnormal=f"{health.abnormal:,}",
    )


@page_errors
async def monitors_page(request: web.Request) -> web.StreamResponse:
    at = _at(request)
    found = await read(request, lambda db: _monitors.monitors(db, at))
    if not found:
        body = html(
            "<h1>Monitors</h1><p>No check-ins yet. Wrap a job in "
            "<code>errlink.monitor(&quot;slug&quot;)</code> to send some.</p>"
        )
    else:
        body = html("<h1>Monitors</h1>{sections}", sections=join(_monitor(m) for m in found))
    return html_response(page("Monitors", body))


def _monitor(state: MonitorState) -> Markup:
    schedule = (state.config or {}).get("schedule") or {}
    if schedule.get("type") == "crontab":
        described = f"crontab {schedule.get('value')}"
    elif schedule.get("type") == "interval":
        described = f"every {schedule.get('value')} {schedule.get('unit')}"
    else:
        described = "no schedule"
    return html(
        '<section class="monitor" data-slug="{slug}"><h2><code>{slug}</code> '
        '<span class="monitor-status status-{status}">{status}</span></h2>'
        '<p class="muted small">{schedule}{expected}</p>'
        '<table class="check-ins"><thead><tr><th>check-in</th><th>status</th>'
        '<th class="num">duration</th><th>started</th></tr></thead><tbody>{rows}</tbody></table>'
        "</section>",
        slug=state.slug,
        status=state.status,
        schedule=described,
        expected=html(" · next check-in expected {t}", t=timestamp(state.next_expected_at))
        if state.next_expected_at is not None
        else "",
        rows=join(_run_row(run) for run in state.runs),
    )


def _run_row(run: Run) -> Markup:
    return html(
        '<tr class="check-in"><td><code>{id}</code></td>'
        '<td class="check-in-status status-{status}">{status}</td>'
        '<td class="num duration">{duration}</td><td>{when}</td></tr>',
        id=run.check_in_id[:12],
        status=run.status,
        duration="" if run.duration is None else f"{run.duration:.3f} s",
        when=timestamp(run.started_at),
    )
