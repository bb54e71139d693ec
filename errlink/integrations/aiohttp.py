"""aiohttp.web integration: report unhandled errors with the request they happened in.

Usage::

    from errlink.integrations.aiohttp import Errlink

    app = web.Application()
    Errlink(app, dsn="https://key@sentry.example.com/1", environment="prod")

or, wiring the two parts yourself::

    errlink_ext = Errlink(dsn=...)
    app = web.Application(middlewares=[errlink_ext.middleware])
    app.cleanup_ctx.append(errlink_ext.cleanup_ctx)

- `cleanup_ctx` creates the `errlink.AsyncClient` on the server's loop when the app starts and
  flushes and closes it when the app is cleaned up;
- `middleware` (placed outermost by `Errlink(app)`, so it also sees errors of the other
  middlewares) runs each request in a fresh scope bound to the client: `errlink.capture_exception()`
  and the scope functions inside a handler reach this request's client and scope, with its
  `request` data built only if something is captured. An exception escaping the handler is
  reported, then re-raised untouched for aiohttp to answer as it always does.

`web.HTTPException`s (raised for 404s, redirects, `HTTPForbidden`, ...) are reported when their
status is in `capture_status_codes` (default 500-599).
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any

from ._async_web import AsyncWebIntegration, qualified_name
from ._framework import require
from ._http_errors import DEFAULT_CAPTURE_STATUS_CODES, is_reported
from ._lazy import build_request, framework_request
from ._request import body_data, request_interface
from ._sdk import (
    INTERNAL,
    ClientOptions,
    Dsn,
    enter_own_scope,
    leave_own_scope,
    logger,
)

require("aiohttp", distribution="aiohttp", extra="aiohttp", minimum=(3, 9))

from aiohttp import web  # noqa: E402
from aiohttp.typedefs import Handler, Middleware  # noqa: E402

if TYPE_CHECKING:
    from typing_extensions import Unpack


__all__ = ["Errlink"]


class Errlink(AsyncWebIntegration):
    """The aiohttp.web extension, one per application.

    Takes `dsn` and every client option (`environment=`, `send_default_pii=`,
    `max_request_body_size=`, ...), validated here, plus `capture_status_codes`: statuses whose
    `web.HTTPException` is reported (default ``range(500, 600)``; add 404 to see unknown URLs).
    `client` is the `AsyncClient` while the app runs.
    """

    name = "aiohttp"

    def __init__(
        self,
        app: web.Application | None = None,
        dsn: str | Dsn | None = None,
        *,
        capture_status_codes: Iterable[int] = DEFAULT_CAPTURE_STATUS_CODES,
        **options: Unpack[ClientOptions],
    ) -> None:
        super().__init__(dsn, capture_status_codes, options)
        self._route_names: dict[web.AbstractRoute, str | None] = {}
        self.middleware: Middleware = self._new_middleware()
        self.app: web.Application | None = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: web.Application) -> None:
        """Add the middleware (outermost) and the cleanup context (first) to `app`."""
        if self.app is not None:
            raise RuntimeError("this Errlink extension already serves another application")
        self.app = app
        app.middlewares.insert(0, self.middleware)
        # First in, last out: the client outlives the app's other contexts.
        app.cleanup_ctx.insert(0, self.cleanup_ctx)
        app[APP_KEY] = self

    @staticmethod
    def of(app: web.Application) -> Errlink | None:
        """The extension `Errlink(app)` set up for `app`, if any."""
        return app.get(APP_KEY)

    async def cleanup_ctx(self, app: web.Application) -> AsyncIterator[None]:
        """The client's lifetime: created at start-up on the app's loop, closed at clean-up."""
        client = self.client = self.new_client()
        yield
        await client.aclose()

    def _new_middleware(self) -> Middleware:
        @web.middleware
        async def errlink_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
            core = self.active_core()
            if core is None:
                return await handler(request)
            try:
                transaction = self._transaction(request)
                max_bytes = self.max_request_body_bytes
                own = framework_request(request, _request_data, max_bytes, transaction)
                token = enter_own_scope(own, core)
            except Exception:
                logger.warning(
                    "errlink: could not set up a request's scope", exc_info=True, extra=INTERNAL
                )
                return await handler(request)
            abandoned = True  # unless it ends, failed or not
            try:
                response = await handler(request)
                abandoned = False
                return response
            except web.HTTPException as exc:
                abandoned = False
                if is_reported(exc.status, self.capture_status_codes):
                    await self._report(request, exc, transaction)
                raise
            except Exception as exc:
                abandoned = False
                await self._report(request, exc, transaction)
                raise
            finally:
                leave_own_scope(token, own, abandoned)

        return errlink_middleware

    def _transaction(self, request: web.Request) -> str | None:
        """The route's name, else its handler's qualified name; None when no route matched."""
        match_info = request.match_info
        route = match_info.route
        if route in self._route_names:
            return self._route_names[route]
        if match_info.http_exception is not None:
            return None  # a route made up for this one error response: not worth keeping
        name = self._route_names[route] = route.name or qualified_name(route.handler)
        return name

    async def _report(
        self, request: web.Request, exc: BaseException, transaction: str | None
    ) -> None:
        try:
            max_bytes = self.max_request_body_bytes
            body = await _arrived_body(request, max_bytes)
            data = build_request(functools.partial(_request_data, body=body), request, max_bytes)
            await self.capture_unhandled(exc, data, transaction)
        except Exception:
            logger.warning(
                "errlink: could not report an aiohttp error", exc_info=True, extra=INTERNAL
            )


APP_KEY: web.AppKey[Errlink] = web.AppKey("errlink", Errlink)


async def _arrived_body(request: web.Request, max_bytes: int | None) -> bytes | None:
    """The body for the event: what the handler read, or what already arrived, within limits.

    Never waits on the client: a body still on its way is left out.
    """
    if max_bytes == 0 or not request.body_exists:
        return None
    length = request.content_length
    if max_bytes is not None and length is not None and length > max_bytes:
        return b""  # `body_data` describes it from its declared length
    if not request.content.is_eof():
        return None
    try:
        return await request.read()  # the handler's copy if it read it; else the buffered bytes
    except Exception:
        return None


def _request_data(
    request: web.Request, max_bytes: int | None, body: bytes | None = None
) -> dict[str, Any]:
    headers = request.headers
    return request_interface(
        url=str(request.url.with_query(None)),
        method=request.method,
        query_string=request.rel_url.raw_query_string,
        headers=headers.items(),
        cookies=headers.get("Cookie"),
        data=body_data(
            body,
            content_type=headers.get("Content-Type"),
            content_length=request.content_length,
            max_bytes=max_bytes,
        ),
        remote_addr=request.remote,
    )
