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
    fill_own_scope,
    install_scope,
    leave_own_scope,
    logger,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "ASGIApp",
    "AsgiConnection",
    "AsgiIntegration",
    "BodyCopy",
    "ErrlinkMiddleware",
    "Receive",
    "Scope",
    "Send",
    "asgi_hop",
    "asgi_trace",
    "connection_class",
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
        # The class of the connections opened while the client serves (see `connection_class`),
        # None when there is none to bind them to.
        self._opened: type[AsgiConnection] | None = None
        self._core: ClientCore | None = None
        self._counts_sessions = False  # whether its connections count as release-health sessions

    # -- the client's lifetime --------------------------------------------------------------------

    def start(self, *, again: bool = False) -> None:
        """Create the client on the running loop: once, and after `aclose` only when `again`
        (a new lifespan: the app is served once more, as tests do)."""
        if again and self._stopped:
            self._stopped = False
            self.client = None
        if self.client is None and not self._stopped:
            self.client = self.new_client()
            core = self._core = self.active_core()
            self._opened = None if core is None else connection_class(self, core)
            self._counts_sessions = core is not None and core.sessions is not None

    async def aclose(self) -> None:
        """Flush and close the client; connections served afterwards are left alone."""
        self._stopped = True
        self._opened = self._core = None
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
        opened = self._opened
        if opened is None or (kind != "http" and kind != "websocket"):
            await self._serve_unopened(app, scope, receive, send)
            return
        counts_sessions = self._counts_sessions
        try:
            # One object per request: its scope, `request`, trace and transaction. What all the
            # client's connections share is in their class: opening one stores two fields.
            connection = _new_object(opened)
            connection.scope = scope
            connection._breadcrumbs = []
            if counts_sessions:
                connection.outcome = 0
            app_receive = receive
            if kind == "http" and scope.get("method") not in _NO_BODY:
                app_receive = connection.copying(receive)
            token = install_scope(connection)
        except Exception:
            logger.warning(
                "errlink: could not set up a request's scope", exc_info=True, extra=INTERNAL
            )
            await app(scope, receive, send)
            return
        abandoned = False
        try:
            await app(scope, app_receive, send)
        except Exception as exc:
            if self.should_report(exc):
                await self.report(exc, connection, receive)
            raise
        except BaseException:  # cancelled: the request was abandoned
            abandoned = True
            raise
        finally:
            leave_own_scope(token, connection, abandoned)

    async def _serve_unopened(
        self, app: ASGIApp, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """A lifespan, another kind of call, or a connection before (or after) the client
        serves: the client is started lazily when no lifespan started it."""
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(app, scope, receive, send)
        elif self.client is None and self.core() is not None:
            await self.handle(app, scope, receive, send)
        else:
            await app(scope, receive, send)

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
    installs the ones it opens, of its `connection_class`."""

    __slots__ = ("_body", "_integration", "max_bytes", "scope")
    _body: BodyCopy  # set once a body is copied or read (see `body_copy`)

    def __init__(
        self, scope: Scope, max_bytes: int | None, integration: AsgiIntegration | None = None
    ) -> None:
        self._integration = integration
        self.scope = scope
        self.max_bytes = max_bytes
        fill_own_scope(self, None)

    def __call__(self) -> str | None:
        integration = self._integration
        return integration.name_transaction(self.scope) if integration is not None else None

    # -- the request mapping ----------------------------------------------------------------------

    def _build_request(self) -> dict[str, Any]:
        return build_request(request_data, self, self.max_bytes)

    # -- the body ---------------------------------------------------------------------------------

    def body_copy(self) -> BodyCopy:
        """The part of the body read so far (a WebSocket has none to read)."""
        copy: BodyCopy | None = getattr(self, "_body", None)
        if copy is None:
            copy = self._body = BodyCopy(complete=self.scope["type"] != "http")
        return copy

    def copying(self, receive: Receive) -> Receive:
        """`receive`, keeping a copy of the body the app reads (within `max_bytes`)."""
        if self.max_bytes == 0:
            return receive
        copy = self.body_copy()
        max_bytes = self.max_bytes

        async def receive_and_copy() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                copy.keep(message, max_bytes)
            return message

        return receive_and_copy

    async def read_rest(self, receive: Receive) -> None:
        """After the app failed: the rest of a body it did not read, if it already arrived."""
        copy = self.body_copy()
        max_bytes = self.max_bytes
        declared = content_length(self.header(b"content-length"))
        if copy.complete or max_bytes == 0:
            return
        if max_bytes is not None and declared is not None and declared > max_bytes:
            return  # described from its declared length
        try:
            while not copy.complete and (max_bytes is None or copy.size <= max_bytes):
                message = await asyncio.wait_for(receive(), BODY_WAIT)
                if message.get("type") != "http.request":
                    return
                copy.keep(message, max_bytes)
        except Exception:  # not there in time, or the server has no more to give
            return

    def body(self) -> bytes | None:
        copy = self.body_copy()
        return b"".join(copy.chunks) if copy.complete else None

    def header(self, name: bytes) -> bytes | None:
        return _header(self.scope, name)

    def trace_header(self, name: str) -> bytes | None:
        return _header(self.scope, name.encode("ascii"))


class BodyCopy:
    """What a connection's app read of its body: the chunks kept (within the size limit), the
    size read, and whether it was all read."""

    __slots__ = ("chunks", "complete", "size")

    def __init__(self, *, complete: bool) -> None:
        self.chunks: list[bytes] = []
        self.size = 0
        self.complete = complete

    def keep(self, message: Message, max_bytes: int | None) -> None:
        body = message.get("body") or b""
        if body and (max_bytes is None or self.size <= max_bytes):
            self.chunks.append(bytes(body))
        self.size += len(body)
        if not message.get("more_body", False):
            self.complete = True


def connection_class(integration: AsgiIntegration, core: ClientCore) -> type[AsgiConnection]:
    """The `AsgiConnection` class of the connections `integration` opens bound to `core`.

    What they all share is a class constant: the integration, the body size limit, the client,
    and without sessions their outcome (none). A busy server opens one per request, and this
    makes opening one two stores instead of eleven (`RequestScope` does the same for the
    scope's empty fields)."""
    constants: dict[str, Any] = {
        "__slots__": (),
        "__module__": __name__,
        "_integration": integration,
        "max_bytes": integration.max_request_body_bytes,
        "client": core,
    }
    if core.sessions is None:
        constants["outcome"] = -1
    return type(f"{type(integration).__name__}Connection", (AsgiConnection,), constants)


def connection_for(scope: Scope) -> AsgiConnection | None:
    """The connection the ASGI handling opened for `scope`, when the current errlink scope is
    its (it holds the body read so far)."""
    request = current_scope().request
    if isinstance(request, AsgiConnection) and request.scope is scope:
        return request
    return None


def asgi_trace(scope: Scope) -> IncomingTrace:
    """The connection's trace, continued from its headers when first needed."""
    return IncomingTrace(lambda name: _header(scope, name.encode("ascii")))


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers") or ():
        if bytes(key).lower() == name:
            return bytes(value)
    return None


def request_data(connection: AsgiConnection, max_bytes: int | None) -> dict[str, Any]:
    """The protocol's `request` of an ASGI connection."""
    scope = connection.scope
    headers = scope.get("headers") or ()
    websocket = scope["type"] == "websocket"
    client = scope.get("client")
    declared = content_length(connection.header(b"content-length"))
    if declared is None:
        declared = connection.body_copy().size or None
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
            content_length=declared,
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
