"""The collector's aiohttp application: routes plus JSON error answers.

Each concern (ingestion, the JSON read API, the web UI) adds its routes with an
`add_*_routes(app)` and reads the shared state from `request.app[STATE]`. Every request first
passes the access checks of `_access.py` (Host, and for ingestion the browser origin).
"""

from __future__ import annotations

from aiohttp import web

from ._api import add_api_routes
from ._api_attachments import add_attachment_api_routes
from ._api_logs import add_log_api_routes
from ._errors import Rejected
from ._ingest import INGEST_ROUTES, Handler, add_ingest_routes
from ._state import STATE, CollectorState
from ._ui import add_ui_routes
from ._ui_health import add_release_health_routes


def build_app(state: CollectorState) -> web.Application:
    app = web.Application(middlewares=[_json_errors, _access_checks])
    app[STATE] = state
    add_ingest_routes(app)
    add_api_routes(app)
    add_attachment_api_routes(app)
    add_log_api_routes(app)
    add_ui_routes(app)
    add_release_health_routes(app)
    return app


@web.middleware
async def _json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer refusals, and aiohttp's own 4xx (unknown route, wrong method), as `{"detail"}`."""
    try:
        return await handler(request)
    except Rejected as exc:
        return web.json_response({"detail": exc.detail}, status=exc.status, headers=exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {name: exc.headers[name] for name in ("Allow",) if name in exc.headers}
        return web.json_response({"detail": exc.reason}, status=exc.status, headers=headers)


@web.middleware
async def _access_checks(request: web.Request, handler: Handler) -> web.StreamResponse:
    state = request.app[STATE]
    if state.head_deadline is not None:
        state.head_deadline.request_started(request.protocol)
    access = state.access
    host = request.headers.get("Host")
    if not access.host_allowed(host):
        state.refusals.refused(
            "host",
            "refused a request for Host %r, which does not name this collector "
            "(a DNS rebinding page?); allow a name with --allowed-host",
            host,
        )
        raise Rejected(
            421,
            f"this collector does not answer for Host {host!r:.100} "
            "(allow the name with errlink serve --allowed-host)",
        )
    origin = access.browser_origin(request.headers)
    if origin is None or request.match_info.route.name not in INGEST_ROUTES:
        return await handler(request)
    if not access.origin_allowed(origin):
        state.refusals.refused(
            "origin",
            "refused ingestion sent by a web page from %r; allow it with --allow-origin",
            origin,
        )
        raise Rejected(
            403,
            f"ingestion from a browser page ({origin!r:.100}) is refused "
            "(allow its origin with errlink serve --allow-origin)",
        )
    # Let the page's SDK read the answer (rate limits, refusals) as well.
    cors = {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
    try:
        response = await handler(request)
    except Rejected as exc:
        exc.headers.update(cors)
        raise
    response.headers.update(cors)
    return response
