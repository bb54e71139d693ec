"""A small HTTP/1.1 client for one origin: POST with keep-alive, over asyncio's own transports.

It does the one thing the sender needs, sending envelopes to the DSN's host, and nothing else, so
a request costs a fraction of what a general client spends (measured with callgrind on the same
loopback POST loop: about 53,000 instructions a request here against 430,000 through an aiohttp
session; see benchmarks/RESULTS.md). Proxies are left to aiohttp (`HttpTransport`).

What it guards against, since the peer may be anything: answers are read to at most
`max_answer_bytes` of body (a bigger or endless one closes the connection); the head of an answer
is bounded too; anything that is not HTTP/1.x fails the request; a whole request, connecting
included, is bounded by `timeout`.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Iterator, Mapping

_MAX_HEAD_BYTES = 64 * 1024
_CRLF = b"\r\n"
_HEAD_END = b"\r\n\r\n"


class ProtocolError(Exception):
    """The peer's answer is not HTTP/1.x as expected, or the connection ended early."""


class Headers(Mapping[str, str]):
    """An answer's headers; names compare case-insensitively, repeated ones are joined."""

    __slots__ = ("_items",)

    def __init__(self, items: dict[str, str]) -> None:
        self._items = items  # lower-case names

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()]

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        return self._items.get(name.lower(), default)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


Answer = tuple[int, Headers, bytes]


class _Connection(asyncio.Protocol):
    """One keep-alive connection; at most one request at a time."""

    def __init__(self, max_answer_bytes: int) -> None:
        self._max_body = max_answer_bytes
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reusable = True
        self.received_any = False
        self._waiter: asyncio.Future[Answer] | None = None
        self._buffer = bytearray()
        self._status = 0
        self._headers: Headers | None = None
        self._body = bytearray()
        self._mode = ""  # "length", "chunked", "close"; "" while reading the head
        self._left = 0  # "length": bytes still to come; "chunked": of the current chunk

    # -- the request side ------------------------------------------------------------------

    def request(self, data: bytes, waiter: asyncio.Future[Answer]) -> None:
        self._waiter = waiter
        self.received_any = False
        self._reset()
        assert self.transport is not None
        self.transport.write(data)

    def abort(self) -> None:
        self.reusable = False
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        self.reusable = False
        if self.transport is not None:
            self.transport.close()

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.reusable = False
        if self._mode == "close" and self._headers is not None:
            self._finish()  # the answer's end was the connection's end
            return
        self._fail(ProtocolError("the connection closed before the whole answer came"))

    def data_received(self, data: bytes) -> None:
        if self._waiter is None:
            self.abort()  # nothing asked: an unrequested answer means a confused peer
            return
        self.received_any = True
        try:
            self._feed(data)
        except ProtocolError as exc:
            self._fail(exc)
            self.abort()

    def eof_received(self) -> bool | None:
        return None  # close the transport; connection_lost settles the request

    # -- parsing -----------------------------------------------------------------------------

    def _reset(self) -> None:
        self._buffer.clear()
        self._status = 0
        self._headers = None
        self._body = bytearray()
        self._mode = ""
        self._left = 0

    def _feed(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        while self._waiter is not None:
            if not self._mode:
                if not self._read_head():
                    return
            elif self._mode == "length":
                take = min(self._left, len(buffer))
                self._keep(buffer[:take])
                del buffer[:take]
                self._left -= take
                if self._left == 0:
                    if buffer:
                        self.reusable = False  # more than it announced: not trusted again
                    self._finish()
                return
            elif self._mode == "chunked":
                if not self._read_chunk():
                    return
            else:  # "close": everything until the peer hangs up
                self._keep(buffer)
                buffer.clear()
                return

    def _read_head(self) -> bool:
        buffer = self._buffer
        end = buffer.find(_HEAD_END)
        if end < 0:
            if len(buffer) > _MAX_HEAD_BYTES:
                raise ProtocolError("the answer's head is too long")
            return False
        lines = bytes(buffer[:end]).split(_CRLF)
        del buffer[: end + 4]
        version, _, rest = lines[0].partition(b" ")
        code = rest[:3]
        if not version.startswith(b"HTTP/1.") or len(code) != 3 or not code.isdigit():
            raise ProtocolError("the answer is not HTTP/1.x")
        status = int(code)
        if 100 <= status < 200:
            return True  # an interim answer (100 Continue): the real one follows
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            if not colon:
                raise ProtocolError("a header line of the answer has no ':'")
            key = name.strip().decode("latin-1").lower()
            text = value.strip().decode("latin-1")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        self._status = status
        self._headers = Headers(headers)
        if version == b"HTTP/1.0" or "close" in headers.get("connection", "").lower():
            self.reusable = False
        if "chunked" in headers.get("transfer-encoding", "").lower():
            self._mode, self._left = "chunked", -1
        elif "content-length" in headers:
            try:
                self._left = int(headers["content-length"])
            except ValueError:
                raise ProtocolError("the answer's Content-Length is not a number") from None
            if self._left < 0:
                raise ProtocolError("the answer's Content-Length is negative")
            self._mode = "length"
            if self._left == 0:
                self._finish()
        elif status in (204, 304):
            self._finish()
        else:
            self._mode = "close"
            self.reusable = False
        return True

    def _read_chunk(self) -> bool:
        buffer = self._buffer
        if self._left < 0:  # at a chunk-size line
            end = buffer.find(_CRLF)
            if end < 0:
                if len(buffer) > 1024:
                    raise ProtocolError("a chunk size line of the answer is too long")
                return False
            size_text = bytes(buffer[:end]).split(b";", 1)[0].strip()
            del buffer[: end + 2]
            try:
                size = int(size_text, 16)
            except ValueError:
                raise ProtocolError("a chunk size of the answer is not a number") from None
            if size == 0:
                # Trailers are not read: the connection is not reused after them.
                self.reusable = False
                self._finish()
                return False
            self._left = size + 2  # the chunk and its CRLF
        take = min(self._left, len(buffer))
        self._keep(buffer[: max(0, min(take, self._left - 2))])
        del buffer[:take]
        self._left -= take
        if self._left == 0:
            self._left = -1
            return True
        return False

    def _keep(self, data: bytes | bytearray) -> None:
        room = self._max_body - len(self._body)
        if len(data) <= room:
            self._body += data
            return
        self._body += data[:room]
        self.reusable = False
        self._finish()  # a bigger or endless answer: what we have is enough to name it
        self.abort()

    def _finish(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            assert self._headers is not None
            waiter.set_result((self._status, self._headers, bytes(self._body)))
        self._mode = ""

    def _fail(self, exc: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)


class Http1Pool:
    """Up to `max_connections` keep-alive connections to one host, on the loop that uses it."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        ssl_context: Callable[[], ssl.SSLContext] | None,
        max_connections: int,
        timeout: float,
        max_answer_bytes: int,
    ) -> None:
        self._host = host.strip("[]")  # an IPv6 literal connects without its brackets
        self._port = port
        self._ssl_context = ssl_context
        self._timeout = timeout
        self._max_answer_bytes = max_answer_bytes
        self._max_connections = max_connections
        self._idle: list[_Connection] = []
        self._slots: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def post(self, data: bytes) -> Answer:
        """Send `data` (a whole request) and return the answer; raises OSError,
        asyncio.TimeoutError or ProtocolError."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # A new loop (after a fork, or a restarted client): the old connections belong to a
            # loop we no longer run on and cannot be closed from here.
            self._loop, self._idle, self._slots = loop, [], asyncio.Semaphore(self._max_connections)
        assert self._slots is not None
        deadline = loop.time() + self._timeout
        async with self._slots:
            connection = self._take_idle()
            if connection is not None:
                try:
                    return await self._exchange(connection, data, deadline)
                except (OSError, ProtocolError):
                    # The server may have closed an idle connection just as it was reused; one
                    # more try on a new connection, only if it never answered a byte.
                    if connection.received_any:
                        raise
            connection = await self._connect(deadline)
            return await self._exchange(connection, data, deadline)

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    def _take_idle(self) -> _Connection | None:
        idle = self._idle
        while idle:
            connection = idle.pop()
            if not connection.closed and connection.reusable:
                return connection
            connection.close()
        return None

    async def _connect(self, deadline: float) -> _Connection:
        loop = asyncio.get_running_loop()
        context = self._ssl_context() if self._ssl_context is not None else None
        max_body = self._max_answer_bytes
        _, connection = await asyncio.wait_for(
            loop.create_connection(
                lambda: _Connection(max_body),
                self._host,
                self._port,
                ssl=context,
                server_hostname=self._host if context is not None else None,
            ),
            max(0.0, deadline - loop.time()),
        )
        return connection

    async def _exchange(self, connection: _Connection, data: bytes, deadline: float) -> Answer:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Answer] = loop.create_future()
        timer = loop.call_at(deadline, _expire, waiter, connection)
        try:
            connection.request(data, waiter)
            answer = await waiter
        except BaseException:
            connection.abort()
            raise
        finally:
            timer.cancel()
        if connection.reusable and not connection.closed:
            self._idle.append(connection)
        else:
            connection.close()
        return answer


def _expire(waiter: asyncio.Future[Answer], connection: _Connection) -> None:
    if not waiter.done():
        waiter.set_exception(asyncio.TimeoutError())
    connection.abort()
