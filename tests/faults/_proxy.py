"""A loopback HTTP/1.1 proxy in front of a collector that misbehaves on demand.

The front is plain asyncio, so every fault is real at the socket level: the listening socket is
closed (connections refused), a connection is reset with an RST half-way through the request
body, a request is answered late or never. Requests that are let through are forwarded to the
upstream collector with aiohttp and its answer is relayed.

`policy` decides per request, from the request's number (0, 1, 2, ...): assign any callable
returning an action (`FORWARD`, `Respond`, `Delay`, `Reset`, `HANG`), or one of the helpers.
`ProxyThread` runs a proxy on its own loop in a daemon thread, for sync tests.
"""

from __future__ import annotations

import asyncio
import collections
import socket
import struct
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, TypeVar

import aiohttp

T = TypeVar("T")


@dataclass(frozen=True)
class Forward:
    """Pass the request to the collector and relay its answer."""


@dataclass(frozen=True)
class Respond:
    """Answer without asking the collector."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Delay:
    """Wait, then forward (an answer slower than the client's http_timeout).

    A request whose client hung up meanwhile is not forwarded, like a server that gives up
    on a request when its client is gone, so the collector's count stays exact.
    """

    seconds: float


@dataclass(frozen=True)
class Reset:
    """Read this many bytes of the body, then reset the connection (RST)."""

    after_body_bytes: int = 10


@dataclass(frozen=True)
class Hang:
    """Read the request, then never answer (until the proxy stops)."""


FORWARD = Forward()
HANG = Hang()
Action = Forward | Respond | Delay | Reset | Hang
Policy = Callable[[int], Action]


def always(action: Action) -> Policy:
    return lambda _n: action


def every_other(action: Action) -> Policy:
    """`action` on requests 0, 2, 4, ...; forward the others."""
    return lambda n: action if n % 2 == 0 else FORWARD


class FaultProxy:
    def __init__(self, upstream: str, *, port: int = 0) -> None:
        self.upstream = upstream.rstrip("/")
        self.port = port
        self.policy: Policy = always(FORWARD)
        self.actions: collections.Counter[str] = collections.Counter()
        self.relayed_statuses: collections.Counter[int] = collections.Counter()
        self._requests = 0
        self._server: asyncio.AbstractServer | None = None
        self._session: aiohttp.ClientSession | None = None
        self._connections: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._release = asyncio.Event()

    @property
    def requests(self) -> int:
        return self._requests

    def dsn(self, public_key: str = "errlink", project_id: str = "1") -> str:
        return f"http://{public_key}@127.0.0.1:{self.port}/{project_id}"

    async def start(self) -> FaultProxy:
        self._session = aiohttp.ClientSession(auto_decompress=False)
        await self.come_back()
        return self

    async def stop(self) -> None:
        await self.go_down()
        if self._session is not None:
            await self._session.close()

    async def go_down(self) -> None:
        """Stop listening (new connections are refused) and drop the open ones."""
        self._release.set()
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()
        for writer in list(self._connections):
            writer.transport.abort()
        if self._handlers:
            await asyncio.wait(list(self._handlers), timeout=5)
        self._release = asyncio.Event()

    async def come_back(self) -> None:
        """Listen again, on the same port."""
        if self._server is not None:
            return
        self._server = await asyncio.start_server(
            self._serve, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    # -- one connection -----------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._connections.add(writer)
        try:
            while await self._one_request(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            self._connections.discard(writer)
            self._handlers.discard(task)
            writer.transport.abort()

    async def _one_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        head = await reader.readuntil(b"\r\n\r\n")
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        method, path, _version = request_line.split(" ", 2)
        headers = {}
        for line in header_lines:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip()] = value.strip()
        length = int(_header(headers, "Content-Length") or 0)
        number = self._requests
        self._requests += 1
        action = self.policy(number)
        self.actions[type(action).__name__] += 1

        if isinstance(action, Reset):
            await reader.readexactly(min(action.after_body_bytes, length))
            _reset(writer)
            return False
        body = await reader.readexactly(length)
        if isinstance(action, Hang):
            await self._release.wait()
            return False
        if isinstance(action, Respond):
            await _write_response(writer, action.status, action.headers, b'{"detail":"fault"}')
            return True
        if isinstance(action, Delay):
            try:
                await asyncio.wait_for(self._release.wait(), action.seconds)
                return False  # stopping
            except asyncio.TimeoutError:
                pass
            if reader.at_eof():
                self.actions["abandoned"] += 1
                return False
        status, answer_headers, answer = await self._forward(method, path, headers, body)
        self.relayed_statuses[status] += 1
        await _write_response(writer, status, answer_headers, answer)
        return True

    async def _forward(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        assert self._session is not None
        passed = {
            name: value
            for name, value in headers.items()
            if name.lower() not in ("host", "content-length", "connection", "transfer-encoding")
        }
        async with self._session.request(
            method, self.upstream + path, data=body, headers=passed
        ) as response:
            answer = await response.read()
            kept = {
                name: value
                for name, value in response.headers.items()
                if name.lower() in ("content-type", "retry-after", "x-sentry-rate-limits")
            }
            return response.status, kept, answer


def _header(headers: dict[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return None


def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        # Linger 0: close() sends an RST instead of a FIN.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _write_response(
    writer: asyncio.StreamWriter, status: int, headers: dict[str, str], body: bytes
) -> None:
    reason = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Status"
    lines = [f"HTTP/1.1 {status} {reason}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if not any(name.lower() == "content-type" for name in headers):
        lines.append("Content-Type: application/json")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
    await writer.drain()


class ProxyThread:
    """A `FaultProxy` on its own event loop in a daemon thread."""

    def __init__(self, upstream: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="fault-proxy", daemon=True
        )
        self._thread.start()
        self.proxy: FaultProxy = self.call(lambda: FaultProxy(upstream).start())

    def call(self, make: Callable[[], Awaitable[T]], timeout: float = 30.0) -> T:
        async def run() -> T:
            return await make()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout)

    def set_policy(self, policy: Policy) -> None:
        async def assign() -> None:
            self.proxy.policy = policy

        self.call(assign)

    def go_down(self) -> None:
        self.call(self.proxy.go_down)

    def come_back(self) -> None:
        self.call(self.proxy.come_back)

    def dsn(self) -> str:
        return self.proxy.dsn()

    def close(self) -> None:
        try:
            self.call(self.proxy.stop)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()

    def __enter__(self) -> ProxyThread:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
