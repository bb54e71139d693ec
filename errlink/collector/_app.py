"""The collector's aiohttp application: routes plus JSON error answers.

Each concern (ingestion, the JSON read API, the web UI) adds its routes with an
`add_*_routes(app)` and reads the shared state from `request.app[STATE]`.
"""

from __future__ import annotations

from aiohttp import web

from ._api import add_api_routes
from ._errors import Rejected
from ._ingest import Handler, add_ingest_routes
from ._state import STATE, CollectorState
from ._ui import add_ui_routes


def build_app(state: CollectorState) -> web.Application:
    app = web.Application(middlewares=[_json_errors])
    app[STATE] = state
    add_ingest_routes(app)
    add_api_routes(app)
    add_ui_routes(app)
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
