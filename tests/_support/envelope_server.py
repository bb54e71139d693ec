"""A real envelope endpoint on 127.0.0.1 that decodes what it receives and answers as scripted."""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from errlink._wire.envelope import Envelope, parse_envelope


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False  # never answers until the server stops, then answers 503


@dataclass
class Received:
    envelope: Envelope
    status: int
    headers: dict[str, str]

    def items(self, item_type: str) -> list[Any]:
        return [item.json() for item in self.envelope.items if item.type == item_type]


class ScriptedServer:
    """A real HTTP server on 127.0.0.1 that decodes envelopes and answers as scripted."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.script: deque[Answer] = deque()  # answers for the next requests, then `default`
        self.default = Answer()
        self._release = asyncio.Event()
        self._server: TestServer | None = None
        self.port = 0

    async def start(self, port: int = 0) -> ScriptedServer:
        app = web.Application()
        app.router.add_post("/api/{project}/envelope/", self._handle)
        self._server = TestServer(app, host="127.0.0.1", port=port)
        await self._server.start_server()
        self.port = self._server.port or 0
        return self

    async def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            await self._server.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        answer = self.script.popleft() if self.script else self.default
        if answer.hang:
            await self._release.wait()
            answer = Answer(503)
        self.received.append(Received(parse_envelope(body), answer.status, dict(request.headers)))
        return web.Response(status=answer.status, headers=answer.headers)

    @property
    def delivered(self) -> list[Received]:
        return [r for r in self.received if 200 <= r.status < 300]

    def events(self) -> list[dict[str, Any]]:
        return [event for r in self.delivered for event in r.items("event")]

    def event_requests(self) -> int:
        return sum(1 for r in self.received if r.items("event"))

    def discarded(self) -> Counter[tuple[str, str]]:
        counts: Counter[tuple[str, str]] = Counter()
        for r in self.delivered:
            for report in r.items("client_report"):
                for entry in report["discarded_events"]:
                    counts[entry["reason"], entry["category"]] += entry["quantity"]
        return counts


# -- raw replies, for `asyncio.start_server(reply, ...)`: a server that breaks HTTP --------------

RawReply = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def close_after_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Reads the request head, then closes without a response."""
    await reader.readuntil(b"\r\n\r\n")
    writer.close()


async def half_a_response(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Promises 100 bytes of body, sends 6, then closes."""
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"id":')
    await writer.drain()
    writer.close()


async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answers with something that is not HTTP."""
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"this is not http\r\n\r\n")
    await writer.drain()
    writer.close()
