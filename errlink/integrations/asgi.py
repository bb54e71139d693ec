"""ASGI integration: any ASGI 3 application, and the base of the Starlette, FastAPI, Litestar and
Quart adapters.

Usage::

    from errlink.integrations.asgi import ErrlinkMiddleware

    app = ErrlinkMiddleware(app, dsn="https://key@sentry.example.com/1", environment="prod")

- The `AsyncClient` is created on the server's loop when the lifespan starts, and flushed and
  closed when it shuts down (a server that sends no lifespan: created at the first request).
  Module-level capture calls in the app's startup and shutdown code reach it.
- Each HTTP request and WebSocket connection runs in a fresh scope bound to that client, whose
  `request` (url, method, query string, headers, cookies only with ``send_default_pii``, body
  within ``max_request_body_size``) is built only if an event is captured. The body is copied as
  the app reads it, so the app's stream is untouched; an error before the app read it reads
  what already arrived.
- An exception escaping the app is reported (mechanism ``asgi``, unhandled) and re-raised for the
  server. The transaction is the route the framework matched, read from the ASGI scope when an
  event is captured (Starlette's ``route``, else the ``endpoint``).
- Exceptions of asyncio tasks nobody awaited are reported too (see `AsyncClient`).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import TYPE_CHECKING, Any

from ._async_web import AsyncWebIntegration, content_length, qualified_name
from ._http_errors import DEFAULT_CAPTURE_STATUS_CODES
from ._lazy import OwnRequest, build_request
from ._request import body_data, request_interface, to_text
from ._sdk import (
    INTERNAL,
    ClientCore,
    ClientOptions,
    Dsn,
    IncomingTrace,
    bind_client_here,
    current_scope,
    enter_own_scope,
    fill_own_scope,
    leave_own_scope,
    logger,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "ASGIApp",
    "AsgiConnection",
    "AsgiIntegration",
    "ErrlinkMiddleware",
    "Receive",
    "Scope",
    "Send",
    "asgi_hop",
    "asgi_trace",
    "connection_for",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# How long an error report waits for a request body that has not fully arrived.
BODY_WAIT = 0.1
_SHUTDOWN = frozenset({"lifespan.shutdown.complete", "lifespan.shutdown.failed"})
# Requests whose body is not copied as the app reads it (a body there is rare; one the app did
# not read is still read for a report).
_NO_BODY = frozenset({"GET", "HEAD"})
_new_object = object.__new__


class AsgiIntegration(AsyncWebIntegration):
    """What an ASGI adapter shares: the client's lifetime and the per-connection scope.

    `handle(app, scope, receive, send)` serves one ASGI call of `app`. Subclasses name the
    integration (`name`, also the mechanism) and may override `name_transaction`.
    """

    name = "asgi"

    def __init__(
        self,
        dsn: str | Dsn | None = None,
        *,
        capture_status_codes: Iterable[int] = DEFAULT_CAPTURE_STATUS_CODES,
        **options: Unpack[ClientOptions],
    ) -> None:
        super().__init__(dsn, capture_status_codes, options)
        self._stopped = False
        # The core requests bind: read once per request, kept here rather than asked of the
        # client each time.
        self._core: ClientCore | None = None

    # -- the client's lifetime --------------------------------------------------------------------

    def start(self, *, again: bool = False) -> None:
        """Create the client on the running loop: once, and after `aclose` only when `again`
        (a new lifespan: the app is served once more, as tests do)."""
        if again and self._stopped:
            self._stopped = False
            self.client = None
        if self.client is None and not self._stopped:
            self.client = self.new_client()
            self._core = self.active_core()

    async def aclose(self) -> None:
        """Flush and close the client; connections served afterwards are left alone."""
        self._stopped = True
        self._core = None
        client = self.client
        if client is not None:
            await client.aclose()

    def core(self) -> ClientCore | None:
        """The core a connection binds, starting the client first if no lifespan did."""
        if self.client is None:
            self.start()
        return self._core

    # -- serving ----------------------------------------------------------------------------------

    async def handle(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(app, scope, receive, send)
            return
        core = self._core
        if core is None and self.client is None:
            core = self.core()
        if core is None or (kind != "http" and kind != "websocket"):
            await app(scope, receive, send)
            return
        try:
            # One object per request: its scope, `request`, trace and transaction.
            connection = _new_object(AsgiConnection)
            connection.open(scope, self.max_request_body_bytes, self)
            app_receive = (
                connection.copying(receive)
                if kind == "http" and scope.get("method") not in _NO_BODY
                else receive
            )
            token = enter_own_scope(connection, core)
        except Exception:
            logger.warning(
                "errlink: could not set up a request's scope", exc_info=True, extra=INTERNAL
            )
            await app(scope, receive, send)
            return
        abandoned = True  # unless it ends, failed or not
        try:
            await app(scope, app_receive, send)
            abandoned = False
        except Exception as exc:
            abandoned = False
            if self.should_report(exc):
                await self.report(exc, connection, receive)
            raise
        finally:
            leave_own_scope(token, connection, abandoned)

    def should_report(self, exc: Exception) -> bool:
        """Whether an exception escaping the app is reported (adapters filter HTTP errors)."""
        return True

    def name_transaction(self, scope: Scope) -> str | None:
        """The route the framework matched, from what it wrote in the ASGI scope."""
        path = getattr(scope.get("route"), "path", None)
        if isinstance(path, str) and path:
            return path
        endpoint = scope.get("endpoint")
        return qualified_name(endpoint) if endpoint is not None else None

    async def report(
        self, exc: BaseException, connection: AsgiConnection, receive: Receive | None = None
    ) -> str | None:
        """Report `exc` for `connection`, reading the rest of its body from `receive` first."""
        try:
            if receive is not None:
                await connection.read_rest(receive)
            data = build_request(request_data, connection, self.max_request_body_bytes)
            return await self.capture_unhandled(exc, data, self.name_transaction(connection.scope))
        except Exception:
            logger.warning(
                f"errlink: could not report an {self.name} error", exc_info=True, extra=INTERNAL
            )
            return None

    async def _lifespan(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        async def receiving() -> Message:
            message = await receive()
            if message.get("type") == "lifespan.startup":
                self.start(again=True)
                # Startup and shutdown code, and the tasks it starts, reach the client too.
                core = self.active_core()
                if core is not None:
                    bind_client_here(core)
            return message

        async def sending(message: Message) -> None:
            if message.get("type") in _SHUTDOWN:
                await self.aclose()
            await send(message)

        try:
            await app(scope, receiving, sending)
        finally:
            if self.client is not None and not self._stopped:
                await self.aclose()  # the app failed its lifespan after starting it


class ErrlinkMiddleware(AsgiIntegration):
    """Wraps an ASGI 3 `app`: ``ErrlinkMiddleware(app, dsn=..., **client options)``.

    Also takes `capture_status_codes` (unused by the generic middleware, which sees no HTTP
    exceptions; the framework adapters use it). `client` is the `AsyncClient` while it serves.
    """

    def __init__(
        self,
        app: ASGIApp,
        dsn: str | Dsn | None = None,
        *,
        capture_status_codes: Iterable[int] = DEFAULT_CAPTURE_STATUS_CODES,
        **options: Unpack[ClientOptions],
    ) -> None:
        super().__init__(dsn, capture_status_codes=capture_status_codes, **options)
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # A coroutine function: servers tell ASGI 3 apps by it.
        await self.handle(self.app, scope, receive, send)


def asgi_hop(app: ASGIApp, errlink: AsgiIntegration) -> ASGIApp:
    """An ASGI middleware factory for frameworks that build their own middleware stack
    (``app.add_middleware(asgi_hop, errlink=integration)``): serves `app` through `errlink`."""
    # A partial, not an object with a `__call__`: no Python frame of its own on every request,
    # and the framework awaits the handling's own coroutine. `app`, as middleware have it, for
    # code that walks a middleware stack.
    hop = functools.partial(errlink.handle, app)
    hop.app = app  # type: ignore[attr-defined]
    return hop


class AsgiConnection(OwnRequest):
    """One HTTP request or WebSocket connection, and its first scope, in one object (see
    `OwnRequest`), with the part of its body the app read. Not installed when made with
    ``AsgiConnection(...)`` (to report an error of a connection errlink did not open); `handle`
    installs the one it opens."""

    __slots__ = ("_chunks", "_integration", "complete", "max_bytes", "scope", "size")

    def __init__(
        self, scope: Scope, max_bytes: int | None, integration: AsgiIntegration | None = None
    ) -> None:
        self.open(scope, max_bytes, integration)
        fill_own_scope(self, None)

    def open(
        self, scope: Scope, max_bytes: int | None, integration: AsgiIntegration | None
    ) -> None:
        """Set the connection's own fields (the scope's are `enter_own_scope`'s)."""
        self._context = None
        self._data = None
        self._integration = integration
        self.scope = scope
        self.max_bytes = max_bytes
        self._chunks: list[bytes] | None = None
        self.size = 0
        self.complete = scope["type"] != "http"

    def __call__(self) -> str | None:
        integration = self._integration
        return integration.name_transaction(self.scope) if integration is not None else None

    # -- the request mapping ----------------------------------------------------------------------

    def _build_request(self) -> dict[str, Any]:
        return build_request(request_data, self, self.max_bytes)

    # -- the body ---------------------------------------------------------------------------------

    def copying(self, receive: Receive) -> Receive:
        """`receive`, keeping a copy of the body the app reads (within `max_bytes`)."""
        if self.max_bytes == 0:
            return receive

        async def receive_and_copy() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                self._keep(message)
            return message

        return receive_and_copy

    def _keep(self, message: Message) -> None:
        body = message.get("body") or b""
        if body and (self.max_bytes is None or self.size <= self.max_bytes):
            if self._chunks is None:
                self._chunks = []
            self._chunks.append(bytes(body))
        self.size += len(body)
        if not message.get("more_body", False):
            self.complete = True

    async def read_rest(self, receive: Receive) -> None:
        """After the app failed: the rest of a body it did not read, if it already arrived."""
        declared = content_length(self.header(b"content-length"))
        if self.complete or self.max_bytes == 0:
            return
        if self.max_bytes is not None and declared is not None and declared > self.max_bytes:
            return  # described from its declared length
        try:
            while not self.complete and (self.max_bytes is None or self.size <= self.max_bytes):
                message = await asyncio.wait_for(receive(), BODY_WAIT)
                if message.get("type") != "http.request":
                    return
                self._keep(message)
        except Exception:  # not there in time, or the server has no more to give
            return

    def body(self) -> bytes | None:
        return b"".join(self._chunks or ()) if self.complete else None

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.scope.get("headers") or ():
            if bytes(key).lower() == name:
                return bytes(value)
        return None

    def trace_header(self, name: str) -> bytes | None:
        return _scope_header(self.scope, name)


def connection_for(scope: Scope) -> AsgiConnection | None:
    """The connection the ASGI handling opened for `scope`, when the current errlink scope is
    its (it holds the body read so far)."""
    request = current_scope().request
    if isinstance(request, AsgiConnection) and request.scope is scope:
        return request
    return None


def asgi_trace(scope: Scope) -> IncomingTrace:
    """The connection's trace, continued from its headers when first needed."""
    return IncomingTrace(functools.partial(_scope_header, scope))


def _scope_header(scope: Scope, name: str) -> bytes | None:
    wanted = name.encode("ascii")
    for key, value in scope.get("headers") or ():
        if bytes(key).lower() == wanted:
            return bytes(value)
    return None


def request_data(connection: AsgiConnection, max_bytes: int | None) -> dict[str, Any]:
    """The protocol's `request` of an ASGI connection."""
    scope = connection.scope
    headers = scope.get("headers") or ()
    websocket = scope["type"] == "websocket"
    client = scope.get("client")
    declared = content_length(connection.header(b"content-length"))
    content_type = connection.header(b"content-type")
    return request_interface(
        url=_url(scope, connection.header(b"host"), websocket),
        method="GET" if websocket else to_text(scope.get("method", "GET")),
        query_string=to_text(scope.get("query_string") or b""),
        headers=headers,
        cookies=to_text(connection.header(b"cookie") or b"") or None,
        data=body_data(
            connection.body(),
            content_type=None if content_type is None else to_text(content_type),
            content_length=declared if declared is not None else connection.size or None,
            max_bytes=max_bytes,
        ),
        remote_addr=to_text(client[0]) if client else None,
    )


def _url(scope: Scope, host: bytes | None, websocket: bool) -> str:
    scheme = scope.get("scheme") or ("ws" if websocket else "http")
    if host is not None:
        authority = to_text(host)
    else:
        server = scope.get("server")
        authority = f"{server[0]}:{server[1]}" if server else "localhost"
    return f"{scheme}://{authority}{scope.get('path', '')}"
