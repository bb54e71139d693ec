"""Bounding the collector's connections: how many may be open, and how long one may idle.

Every connection costs a file descriptor. Without a cap, clients that open connections and
never finish a request (or just keep them) use up the process's descriptors, and then the
collector can accept no one. So a connection beyond `max_connections` is answered 503 and
closed at once, and a connection that has not sent a whole request head within
`idle_timeout` of opening is closed (`HeadDeadline`; after an answer, aiohttp's keep-alive
timer does the same).
"""

from __future__ import annotations

import asyncio
import json
import sys

from aiohttp import web

from ._refusals import RefusalLog

# Descriptors kept free for the database, its journal and the process itself.
_RESERVED_DESCRIPTORS = 32


def _busy_answer() -> bytes:
    body = json.dumps({"detail": "too many open connections, try again"}).encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\n"
        "Content-Type: application/json\r\n"
        "Retry-After: 1\r\n"
        "Connection: close\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


_BUSY = _busy_answer()


class _Refusal(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(_BUSY)
        transport.close()


class HeadDeadline:
    """Closes a connection whose first request head has not arrived within `timeout` seconds.

    aiohttp before 3.14 waits for that first request forever; the app's middleware reports
    each request that starts with `request_started`.
    """

    def __init__(self, timeout: float, refusals: RefusalLog) -> None:
        self.timeout = timeout
        self._refusals = refusals
        self._waiting: set[web.RequestHandler] = set()

    def watch(self, handler: web.RequestHandler) -> None:
        self._waiting.add(handler)
        asyncio.get_running_loop().call_later(self.timeout, self._expire, handler)

    def request_started(self, handler: web.RequestHandler) -> None:
        self._waiting.discard(handler)

    def _expire(self, handler: web.RequestHandler) -> None:
        if handler not in self._waiting:
            return
        self._waiting.discard(handler)
        if handler.transport is not None:
            self._refusals.refused(
                "idle",
                "closed a connection that sent no whole request within %gs",
                self.timeout,
            )
            handler.force_close()


class CappedTCPSite(web.TCPSite):
    """A `TCPSite` that serves at most `max_connections` connections at a time."""

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        *,
        max_connections: int,
        head_deadline: HeadDeadline,
        refusals: RefusalLog,
    ) -> None:
        super().__init__(runner, host, port)
        self.max_connections = max_connections
        self._head_deadline = head_deadline
        self._refusals = refusals

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site with its runner
        server = self._runner.server
        assert server is not None
        max_connections, refusals = self.max_connections, self._refusals
        head_deadline = self._head_deadline

        def protocol() -> asyncio.BaseProtocol:
            if len(server.connections) >= max_connections:
                refusals.refused(
                    "connections",
                    "refused a connection: %d are open, the limit (max_connections)",
                    max_connections,
                )
                return _Refusal()
            handler = server()
            head_deadline.watch(handler)
            return handler

        self._server = await asyncio.get_running_loop().create_server(
            protocol, self._host, self._port, backlog=self._backlog
        )


def descriptor_bound(max_connections: int) -> int:
    """`max_connections`, lowered to fit this process's limit of open files."""
    if sys.platform == "win32":
        return max_connections
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return max_connections
    return max(1, min(max_connections, soft - _RESERVED_DESCRIPTORS))
