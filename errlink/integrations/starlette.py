"""Starlette integration: the ASGI middleware, placed inside Starlette's error handling, plus the
HTTP exceptions Starlette answers itself.

Usage::

    from starlette.applications import Starlette
    from errlink.integrations.starlette import Errlink

    app = Starlette(routes=routes)
    Errlink(app, dsn="https://key@sentry.example.com/1", environment="prod")

- `Errlink(app)` adds errlink's ASGI middleware (`asgi.asgi_hop`), kept the outermost of the
  user middleware (even of those added later), inside Starlette's `ServerErrorMiddleware`: it
  sees an unhandled exception before the 500 is sent, and reads a request body the app left
  unread. The lifespan goes through it, so the `AsyncClient` is created at startup and flushed
  and closed at shutdown.
- `HTTPException`s never leave Starlette: its `ExceptionMiddleware` turns them into responses.
  When Starlette builds its middleware stack, the handlers of that middleware are wrapped: an
  exception carrying a `status_code` in `capture_status_codes` (default 500-599) is reported
  (unhandled, with the request), then the original handler answers as before. So are those of
  the Starlette and FastAPI apps mounted in the app (``app.mount("/v2", sub_app)``), which
  answer their own.
- The transaction is the matched route's path template (``/items/{item_id}``, with the paths
  of the mounts it sits in), or with ``transaction_style="endpoint"`` the endpoint's
  ``module.qualified_name``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from ._async_web import qualified_name
from ._framework import require
from ._http_errors import DEFAULT_CAPTURE_STATUS_CODES
from ._sdk import INTERNAL, ClientOptions, Dsn, logger
from .asgi import AsgiConnection, AsgiIntegration, Scope, asgi_hop, connection_for

require("starlette", distribution="starlette", extra="starlette", minimum=(0, 37))

from starlette.applications import Starlette  # noqa: E402
from starlette.concurrency import run_in_threadpool  # noqa: E402
from starlette.middleware.exceptions import ExceptionMiddleware  # noqa: E402
from starlette.requests import HTTPConnection  # noqa: E402

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["TRANSACTION_STYLES", "Errlink"]

TransactionStyle = Literal["url", "endpoint"]
TRANSACTION_STYLES: tuple[TransactionStyle, ...] = ("url", "endpoint")
Handler = Callable[..., Any]  # (request or websocket, exception) -> response, maybe awaitable

# How far down the middleware chain the ExceptionMiddleware is looked for (a cycle guard).
_MAX_STACK_DEPTH = 100


class Errlink(AsgiIntegration):
    """The Starlette extension, one per application: ``Errlink(app, dsn=..., **client options)``.

    Also takes `capture_status_codes` (statuses whose `HTTPException` is reported, default
    ``range(500, 600)``) and `transaction_style` (``"url"``, the default, or ``"endpoint"``).
    Must be created before the app serves its first call. `client` is the `AsyncClient` while
    the app runs.
    """

    name = "starlette"
    app_class: ClassVar[type[Starlette]] = Starlette

    def __init__(
        self,
        app: Starlette,
        dsn: str | Dsn | None = None,
        *,
        capture_status_codes: Iterable[int] = DEFAULT_CAPTURE_STATUS_CODES,
        transaction_style: TransactionStyle = "url",
        **options: Unpack[ClientOptions],
    ) -> None:
        app_class = self.app_class
        if not isinstance(app, app_class):
            raise TypeError(
                f"errlink.integrations.{self.name}.Errlink needs a {app_class.__module__}."
                f"{app_class.__qualname__} app, not {type(app).__qualname__} (wrap any other ASGI "
                "app in errlink.integrations.asgi.ErrlinkMiddleware)"
            )
        if transaction_style not in TRANSACTION_STYLES:
            raise ValueError(
                f"option 'transaction_style' must be 'url' or 'endpoint', not {transaction_style!r}"
            )
        if app.middleware_stack is not None:
            raise RuntimeError(
                "Errlink(app) must be called before the app starts: Starlette builds its "
                "middleware stack at its first call and takes no middleware afterwards"
            )
        if any(getattr(middleware, "cls", None) is asgi_hop for middleware in app.user_middleware):
            raise RuntimeError("errlink is already installed on this app")
        super().__init__(dsn, capture_status_codes=capture_status_codes, **options)
        self.app = app
        self.transaction_style: TransactionStyle = transaction_style
        app.add_middleware(asgi_hop, errlink=self)
        hop = app.user_middleware[0]

        def outermost() -> None:
            # Outermost of the user middleware, even of those added after errlink: it sees
            # their errors, and scope changes they make (`set_user`) are this request's.
            if hop in app.user_middleware:
                app.user_middleware.remove(hop)
                app.user_middleware.insert(0, hop)

        self._hook_build(app, outermost)

    # -- transactions -----------------------------------------------------------------------------

    def name_transaction(self, scope: Scope) -> str | None:
        endpoint = scope.get("endpoint")
        if self.transaction_style == "endpoint":
            return qualified_name(endpoint) if endpoint is not None else None
        route = scope.get("route")
        if route is None and endpoint is None:
            return None  # no route matched
        try:
            template = _route_template(self.app.routes, route, endpoint)
        except Exception:
            template = None
        return template if template else super().name_transaction(scope)

    # -- HTTP exceptions answered by Starlette ----------------------------------------------------

    def status_of(self, exc: Exception) -> int | None:
        """The HTTP status an exception handled by the app stands for, if it carries one."""
        status = getattr(exc, "status_code", None)
        return status if isinstance(status, int) and not isinstance(status, bool) else None

    def _report_http_exceptions(self, stack: object) -> None:
        """Wrap the handlers of the `ExceptionMiddleware` in the freshly built `stack`."""
        try:
            middleware = _exception_middleware(stack)
            if middleware is None:
                logger.debug(
                    "errlink: no ExceptionMiddleware in the app's middleware stack (a middleware "
                    "without an 'app' attribute hides it): HTTP exceptions are not reported",
                    extra=INTERNAL,
                )
                return
            for handlers in (middleware._exception_handlers, middleware._status_handlers):
                for key, handler in list(handlers.items()):
                    handlers[key] = self._reporting(handler)
        except Exception:
            logger.warning(
                "errlink: could not hook Starlette's exception handlers",
                exc_info=True,
                extra=INTERNAL,
            )

    def _reach_sub_apps(self, routes: Iterable[Any], depth: int = 0) -> None:
        """Hook the Starlette apps mounted in `routes` too: each answers its HTTP exceptions
        with an `ExceptionMiddleware` of its own. (What escapes them reaches errlink's
        middleware as any error does.)"""
        try:
            for route in routes:
                inner = getattr(route, "app", None)
                if not isinstance(inner, Starlette):
                    below = getattr(route, "routes", None)  # a Mount or Host of routes
                    if below and depth < _MAX_STACK_DEPTH:
                        self._reach_sub_apps(below, depth + 1)
                elif getattr(inner, "_errlink_reported_by", None) is None:  # not hooked yet
                    inner._errlink_reported_by = self  # type: ignore[attr-defined]
                    if inner.middleware_stack is None:
                        self._hook_build(inner)
                    else:  # it served already
                        self._report_http_exceptions(inner.middleware_stack)
        except Exception:
            logger.warning(
                "errlink: could not hook a mounted Starlette app", exc_info=True, extra=INTERNAL
            )

    def _hook_build(self, target: Starlette, before: Callable[[], None] | None = None) -> None:
        """When `target` builds its middleware stack (at its first call), wrap the handlers of
        its `ExceptionMiddleware` and reach the apps mounted in it; on that app only."""
        build = target.build_middleware_stack

        def build_middleware_stack() -> Any:
            if before is not None:
                before()
            stack = build()
            self._report_http_exceptions(stack)
            self._reach_sub_apps(target.routes)
            return stack

        target.build_middleware_stack = build_middleware_stack  # type: ignore[method-assign]

    def _reporting(self, handler: Handler) -> Handler:
        """`handler`, reporting the exception first when its status is to be reported."""
        is_async = _is_async_callable(handler)

        async def report_then_handle(conn: HTTPConnection, exc: Exception) -> Any:
            await self._report_handled(conn, exc)
            if is_async:
                return await handler(conn, exc)
            return await run_in_threadpool(handler, conn, exc)  # as Starlette runs sync handlers

        return report_then_handle

    async def _report_handled(self, conn: HTTPConnection, exc: Exception) -> None:
        try:
            status = self.status_of(exc)
            if status is None or status not in self.capture_status_codes:
                return
            if self.active_core() is None:
                return
            scope = conn.scope
            connection = connection_for(scope)
            if connection is None:  # (not `or`: a connection is a mapping, its truth builds it)
                connection = AsgiConnection(scope, self.max_request_body_bytes)
        except Exception:
            logger.warning(
                f"errlink: could not report a {self.name} HTTP error", exc_info=True, extra=INTERNAL
            )
            return
        await self.report(exc, connection)


def _exception_middleware(stack: object) -> ExceptionMiddleware | None:
    node = stack
    for _ in range(_MAX_STACK_DEPTH):
        if isinstance(node, ExceptionMiddleware):
            return node
        node = getattr(node, "app", None)
        if node is None:
            return None
    return None


def _route_template(routes: Iterable[Any], route: object, endpoint: object) -> str | None:
    """The path template of `route` among `routes`, prefixed with the paths of the mounts it
    sits in. Starlette before 1.0 sets no ``route`` in the scope: the route serving `endpoint`.
    """
    for candidate in routes:
        inner = getattr(candidate, "routes", None)  # a Mount or a Host
        found = candidate is route
        if route is None and not inner:
            found = getattr(candidate, "endpoint", None) is endpoint
        if found:
            path = getattr(candidate, "path", None)
            return path if isinstance(path, str) else None
        if inner:
            below = _route_template(inner, route, endpoint)
            if below is not None:
                prefix = getattr(candidate, "path", "")
                return (prefix if isinstance(prefix, str) else "") + below
    return None


def _is_async_callable(handler: object) -> bool:
    while isinstance(handler, functools.partial):
        handler = handler.func
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
        getattr(handler, "__call__", None)  # noqa: B004
    )
