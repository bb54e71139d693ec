from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from errlink._delivery.http import HttpTransport
from errlink._wire.dsn import Dsn
from errlink._wire.envelope import CONTENT_TYPE, Envelope, parse_envelope
from errlink._wire.transport import Transport, TransportError, TransportResponse
from tests._support import free_port
from tests._support.envelope_server import (
    RawReply,
    close_after_request,
    garbage,
    half_a_response,
)

SECRET = "topsecretvalue"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Seen:
    headers: dict[str, str]
    wire_length: int
    envelope: Envelope
    peer: tuple[str, int]


class Endpoint:
    """A loopback envelope endpoint; `answer` decides the response."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.answer: Handler = _accept

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()  # aiohttp undoes Content-Encoding: gzip
        self.seen.append(
            Seen(
                dict(request.headers),
                request.content_length or 0,
                parse_envelope(body),
                request.transport.get_extra_info("peername"),  # type: ignore[union-attr]
            )
        )
        return await self.answer(request)


async def _accept(request: web.Request) -> web.StreamResponse:
    return web.json_response({"id": "x"})


@pytest.fixture
async def endpoint() -> AsyncIterator[tuple[Endpoint, TestServer]]:
    endpoint = Endpoint()
    app = web.Application()
    app.router.add_post("/api/{project}/envelope/", endpoint.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield endpoint, server
    await server.close()


def dsn_for(port: int, host: str = "127.0.0.1") -> Dsn:
    return Dsn.parse(f"http://public:{SECRET}@{host}:{port}/42")


def envelope_with(payload: object, event_id: str = "a" * 32) -> Envelope:
    envelope = Envelope({"event_id": event_id})
    envelope.add_json("event", payload)
    return envelope


async def test_http_transport_is_a_transport() -> None:
    assert isinstance(HttpTransport(dsn_for(1)), Transport)


async def test_posts_the_envelope_with_auth_and_content_type(
    endpoint: tuple[Endpoint, TestServer],
) -> None:
    seen, server = endpoint
    transport = HttpTransport(dsn_for(server.port or 0))
    try:
        response = await transport.send(envelope_with({"message": "hi"}))
    finally:
        await transport.aclose()
    assert response.status == 200
    [request] = seen.seen
    auth = request.headers["X-Sentry-Auth"]
    assert auth.startswith("Sentry sentry_version=7, sentry_key=public, sentry_client=errlink/")
    assert f"sentry_secret={SECRET}" in auth
    assert request.headers["Content-Type"] == CONTENT_TYPE
    assert "Content-Encoding" not in request.headers  # small: not worth compressing
    assert request.envelope.headers == {"event_id": "a" * 32}
    [item] = request.envelope.items
    assert item.type == "event"
    assert item.json() == {"message": "hi"}


async def test_gzips_bodies_over_the_threshold(endpoint: tuple[Endpoint, TestServer]) -> None:
    seen, server = endpoint
    transport = HttpTransport(dsn_for(server.port or 0), gzip_threshold=1024)
    big = {"message": "x" * 5000}
    try:
        await transport.send(envelope_with(big))
    finally:
        await transport.aclose()
    [request] = seen.seen
    assert request.headers["Content-Encoding"] == "gzip"
    assert request.wire_length < 1000  # what travelled was compressed
    assert request.envelope.items[0].json() == big


async def test_large_bodies_are_encoded_in_a_worker_thread(
    endpoint: tuple[Endpoint, TestServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen, server = endpoint
    transport = HttpTransport(dsn_for(server.port or 0), encode_in_thread_over=10_000)
    encode = transport._encode
    threads: list[threading.Thread] = []

    def spy(envelope: Envelope) -> tuple[bytes, bool]:
        threads.append(threading.current_thread())
        return encode(envelope)

    monkeypatch.setattr(transport, "_encode", spy)
    try:
        await transport.send(envelope_with({"message": "small"}))
        await transport.send(envelope_with({"message": "y" * 20_000}))
    finally:
        await transport.aclose()
    assert threads[0] is threading.main_thread()
    assert threads[1] is not threading.main_thread()
    assert seen.seen[1].envelope.items[0].json() == {"message": "y" * 20_000}


async def test_returns_status_and_headers_of_any_answer(
    endpoint: tuple[Endpoint, TestServer],
) -> None:
    seen, server = endpoint

    async def limited(request: web.Request) -> web.StreamResponse:
        return web.Response(status=429, headers={"X-Sentry-Rate-Limits": "60:error:key"})

    seen.answer = limited
    transport = HttpTransport(dsn_for(server.port or 0))
    try:
        response = await transport.send(envelope_with({}))
    finally:
        await transport.aclose()
    assert response.status == 429
    assert response.headers["x-sentry-rate-limits"] == "60:error:key"


async def test_keeps_the_connection_alive(endpoint: tuple[Endpoint, TestServer]) -> None:
    seen, server = endpoint
    transport = HttpTransport(dsn_for(server.port or 0))
    try:
        for _ in range(5):
            await transport.send(envelope_with({"message": "again"}))
    finally:
        await transport.aclose()
    assert len({request.peer for request in seen.seen}) == 1


async def test_sends_through_the_proxy(endpoint: tuple[Endpoint, TestServer]) -> None:
    seen, server = endpoint
    # The DSN host does not resolve: only the proxy (our endpoint) can carry the request.
    transport = HttpTransport(
        dsn_for(80, host="errlink-upstream.invalid"),
        http_proxy=f"http://127.0.0.1:{server.port}",
    )
    try:
        response = await transport.send(envelope_with({"message": "via proxy"}))
    finally:
        await transport.aclose()
    assert response.status == 200
    assert seen.seen[0].headers["Host"] == "errlink-upstream.invalid"


async def test_connection_refused_is_a_transport_error_without_the_secret() -> None:
    transport = HttpTransport(dsn_for(free_port()))
    try:
        with pytest.raises(TransportError) as caught:
            await transport.send(envelope_with({}))
    finally:
        await transport.aclose()
    assert "127.0.0.1" in str(caught.value)
    assert SECRET not in str(caught.value)


async def test_a_slow_server_times_out_as_a_transport_error(
    endpoint: tuple[Endpoint, TestServer],
) -> None:
    seen, server = endpoint
    release = asyncio.Event()

    async def hang(request: web.Request) -> web.StreamResponse:
        await release.wait()
        return web.Response()

    seen.answer = hang
    transport = HttpTransport(dsn_for(server.port or 0), http_timeout=0.2)
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        with pytest.raises(TransportError, match=r"no answer within 0\.2 s"):
            await transport.send(envelope_with({}))
    finally:
        release.set()
        await transport.aclose()
    assert loop.time() - started < 2.0


@pytest.mark.parametrize("reply", [close_after_request, half_a_response, garbage])
async def test_broken_connections_are_transport_errors(reply: RawReply) -> None:
    server = await asyncio.start_server(reply, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    transport = HttpTransport(dsn_for(port))
    try:
        with pytest.raises(TransportError):
            await transport.send(envelope_with({}))
    finally:
        await transport.aclose()
        server.close()
        await server.wait_closed()


async def test_send_after_close_is_a_transport_error(
    endpoint: tuple[Endpoint, TestServer],
) -> None:
    _, server = endpoint
    transport = HttpTransport(dsn_for(server.port or 0))
    await transport.send(envelope_with({}))
    await transport.aclose()
    await transport.aclose()  # idempotent
    with pytest.raises(TransportError, match="closed"):
        await transport.send(envelope_with({}))


def test_https_with_a_missing_ca_bundle_fails_at_construction() -> None:
    dsn = Dsn.parse("https://public@example.com/1")
    with pytest.raises(ValueError, match="ca_certs"):
        HttpTransport(dsn, ca_certs="/nonexistent/ca.pem")
    HttpTransport(dsn)  # the system bundle loads


@pytest.mark.parametrize(
    ("option", "value"), [("http_timeout", 0), ("max_connections", 0), ("gzip_level", 10)]
)
def test_rejects_bad_options(option: str, value: float) -> None:
    with pytest.raises(ValueError, match=option):
        HttpTransport(dsn_for(1), **{option: value})  # type: ignore[arg-type]


def test_transport_response_is_a_plain_value() -> None:
    response = TransportResponse(200, {})
    assert response == TransportResponse(200, {})


class _HostileAnswer:
    """Answers 200 with a body that never ends (chunked) or is huge (Content-Length), writing
    until the client hangs up; counts what it managed to write."""

    def __init__(self, chunked: bool) -> None:
        self.chunked = chunked
        self.written = 0
        self.hung_up = asyncio.Event()

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        framing = b"Transfer-Encoding: chunked" if self.chunked else b"Content-Length: 200000000"
        writer.write(b"HTTP/1.1 200 OK\r\n" + framing + b"\r\n\r\n")
        block = b"x" * 65536
        piece = b"10000\r\n" + block + b"\r\n" if self.chunked else block
        try:
            while self.written < 200_000_000:  # bounded: 200 MB at most
                writer.write(piece)
                await writer.drain()
                self.written += len(piece)
        except (ConnectionError, OSError):
            self.hung_up.set()
        finally:
            writer.close()


@pytest.mark.parametrize("chunked", [True, False], ids=["endless", "huge"])
async def test_a_huge_or_endless_answer_is_not_read_whole(chunked: bool) -> None:
    answer = _HostileAnswer(chunked)
    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    transport = HttpTransport(dsn_for(port), http_timeout=5.0)
    try:
        response = await transport.send(envelope_with({"message": "hello"}))
        await asyncio.wait_for(answer.hung_up.wait(), 5.0)
    finally:
        await transport.aclose()
        server.close()
        await server.wait_closed()
    assert response.status == 200
    # The client hung up after a bounded read; what the server wrote beyond that sits in the
    # kernel's socket buffers, not in the application.
    assert answer.written < 20_000_000
