"""`HttpTransport`, the default transport: HTTP POST with keep-alive.

Straight to the DSN's host, requests go through `Http1Pool` (`http1.py`), a small HTTP/1.1
client over asyncio's transports; through a proxy (`http_proxy`), through an aiohttp session,
imported only then. `HttpTransport` is the one place where those clients' exceptions are known:
every network fault becomes a `TransportError`; every HTTP answer, whatever its status, is a
`TransportResponse`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures.thread  # noqa: F401 - see below: the resolver's executor
import encodings.idna  # noqa: F401 - see below
import io
import ssl
import zlib
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .._log import INTERNAL, logger
from .._version import __version__
from .._wire.dsn import SDK_NAME, Dsn
from .._wire.envelope import CONTENT_TYPE, Envelope
from .._wire.transport import TransportError, TransportResponse
from .http1 import Http1Pool, ProtocolError

if TYPE_CHECKING:
    import aiohttp

# Everything the send path needs is imported here, never lazily on the loop or resolver thread
# (`socket.getaddrinfo` would import the idna codec on first use): a process forked while a
# background thread is half-way through an import inherits a module it can never finish. The
# proxy path imports aiohttp when the transport is built, on the caller's thread.

# aiohttp sends bytes up to this size in one write (and warns above it).
_RAW_BODY_MAX = 1024 * 1024

# No Sentry answer needs more (it is `{"id": ...}` or a short error); the body only serves to
# name a refusal's reason. A larger or endless body is not read: the connection is closed.
MAX_ANSWER_BYTES = 64 * 1024


class HttpTransport:
    """POSTs envelopes to the DSN's envelope endpoint over keep-alive connections.

    Connections are made on the event loop that first sends. TLS certificates and host names
    are verified; `ca_certs` names a CA bundle file to verify against instead of the system's.
    Only `verify_tls=False` (the bool itself, nothing that merely looks false) turns that off,
    and doing so logs a warning each time a transport is built.
    Bodies over `gzip_threshold` bytes are gzipped; bodies over `encode_in_thread_over` bytes are
    assembled and compressed in a worker thread so the event loop is never held up for long.
    """

    def __init__(
        self,
        dsn: Dsn,
        *,
        http_timeout: float = 10.0,
        http_proxy: str | None = None,
        ca_certs: str | None = None,
        verify_tls: bool = True,
        gzip_threshold: int = 1024,
        gzip_level: int = 1,
        encode_in_thread_over: int = 256 * 1024,
        max_connections: int = 4,
    ) -> None:
        if http_timeout <= 0:
            raise ValueError(f"http_timeout must be positive, got {http_timeout!r}")
        if max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, got {max_connections!r}")
        if not 0 <= gzip_level <= 9:
            raise ValueError(f"gzip_level must be between 0 and 9, got {gzip_level!r}")
        if verify_tls is not True and verify_tls is not False:
            raise TypeError(f"verify_tls must be True or False, not {verify_tls!r}")
        self._dsn = dsn
        self._url = dsn.envelope_url
        self._headers = {
            "X-Sentry-Auth": dsn.auth_header(),
            "Content-Type": CONTENT_TYPE,
            "User-Agent": f"{SDK_NAME}/{__version__}",
        }
        self._timeout = http_timeout
        self._proxy = http_proxy
        if not verify_tls:
            logger.warning(
                "errlink: TLS certificate verification is OFF (verify_tls=False) for %s: anyone "
                "on the network path can read or alter the events sent there",
                dsn.netloc,
                extra=INTERNAL,
            )
        # The system's CA store is loaded when the first connection is made, off the caller's
        # thread (it takes milliseconds); a named bundle is loaded now, so a bad one fails here.
        self._tls = _TlsContext(ca_certs, verify_tls) if dsn.scheme == "https" else None
        self._gzip_threshold = gzip_threshold
        self._gzip_level = gzip_level
        self._encode_in_thread_over = encode_in_thread_over
        self._max_connections = max_connections
        self._closed = False
        self._pool: Http1Pool | None = None
        self._proxied: _ProxiedSession | None = None
        if http_proxy:
            self._proxied = _ProxiedSession(self)
        else:
            self._pool = Http1Pool(
                dsn.host,
                dsn.port or (443 if dsn.scheme == "https" else 80),
                ssl_context=self._tls.get if self._tls is not None else None,
                max_connections=max_connections,
                timeout=http_timeout,
                max_answer_bytes=MAX_ANSWER_BYTES,
            )
        head = (
            f"POST {quote(dsn.path, safe='/%')}/api/{dsn.project_id}/envelope/ HTTP/1.1\r\n"
            f"Host: {dsn.netloc}\r\n"
            + "".join(f"{name}: {value}\r\n" for name, value in self._headers.items())
        )
        self._request_head = head.encode("latin-1")
        self._gzip_request_head = (head + "Content-Encoding: gzip\r\n").encode("latin-1")

    async def send(self, envelope: Envelope) -> TransportResponse:
        if self._closed:
            raise TransportError("the transport is closed")
        payload_size = sum(len(item.payload) for item in envelope.items)
        if payload_size > self._encode_in_thread_over:
            body, gzipped = await asyncio.to_thread(self._encode, envelope)
        else:
            body, gzipped = self._encode(envelope)
            # Let whatever else is ready on the loop run between compressing and the HTTP
            # request, so the two never add up to one long stretch (application latency).
            await asyncio.sleep(0)
        try:
            if self._pool is None:
                assert self._proxied is not None
                return await self._proxied.post(body, gzipped)
            head = self._gzip_request_head if gzipped else self._request_head
            status, headers, answer = await self._pool.post(
                b"%sContent-Length: %d\r\n\r\n%s" % (head, len(body), body)
            )
            return TransportResponse(status, headers, answer)
        except TransportError:
            raise
        except (OSError, asyncio.TimeoutError, ProtocolError) as exc:
            raise TransportError(self._describe(exc)) from exc

    async def aclose(self) -> None:
        self._closed = True
        if self._pool is not None:
            await self._pool.aclose()
        if self._proxied is not None:
            await self._proxied.aclose()

    def _encode(self, envelope: Envelope) -> tuple[bytes, bool]:
        body = envelope.to_bytes()
        if len(body) <= self._gzip_threshold:
            return body, False
        return gzip_compress(body, self._gzip_level), True

    def _describe(self, exc: BaseException) -> str:
        text = str(exc) or "no details"
        if self._dsn.secret_key:
            text = text.replace(self._dsn.secret_key, "***")
        if isinstance(exc, asyncio.TimeoutError):
            text = f"no answer within {self._timeout} s"
        return f"{type(exc).__name__} sending to {self._dsn.netloc}: {text}"


# zlib's defaults (a 32 KiB window, memLevel 8) allocate 256 KiB of state per call, and that
# allocation costs more than compressing a typical 10 KB event; a 16 KiB window and memLevel 7
# halve it and compress events as well (the window only matters for repeats further apart).
_GZIP_WINDOW_BITS = 16 + 14  # 16+: write a gzip header and trailer
_GZIP_MEM_LEVEL = 7


def gzip_compress(data: bytes, level: int) -> bytes:
    """`data` as a gzip stream (no file name, mtime 0), as `Content-Encoding: gzip` expects."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, _GZIP_WINDOW_BITS, _GZIP_MEM_LEVEL)
    return compressor.compress(data) + compressor.flush()


class _TlsContext:
    """The TLS context for the DSN's host, made once, when first needed (or at once for a
    named CA bundle)."""

    def __init__(self, ca_certs: str | None, verify: bool) -> None:
        self._ca_certs = ca_certs
        self._verify = verify
        self._context = _ssl_context(ca_certs, verify) if ca_certs is not None else None

    def get(self) -> ssl.SSLContext:
        if self._context is None:
            self._context = _ssl_context(self._ca_certs, self._verify)
        return self._context


class _ProxiedSession:
    """Requests through `http_proxy`, over an aiohttp session made on the loop that sends."""

    def __init__(self, owner: HttpTransport) -> None:
        import aiohttp  # only for proxies: the direct path never loads it

        self._aiohttp = aiohttp
        self._owner = owner
        self._timeout = aiohttp.ClientTimeout(total=owner._timeout)
        self._session: aiohttp.ClientSession | None = None
        self._session_loop: asyncio.AbstractEventLoop | None = None

    async def post(self, body: bytes, gzipped: bool) -> TransportResponse:
        owner = self._owner
        headers = {**owner._headers, "Content-Encoding": "gzip"} if gzipped else owner._headers
        session = self._get_session()
        try:
            async with session.post(
                owner._url,
                # A large body (attachments) is written in chunks: aiohttp warns of raw bytes.
                data=body if len(body) <= _RAW_BODY_MAX else io.BytesIO(body),
                headers=headers,
                proxy=owner._proxy,
                allow_redirects=False,
            ) as response:
                answer = await _read_bounded(response)
                return TransportResponse(response.status, response.headers, answer)
        except (self._aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
            raise TransportError(owner._describe(exc)) from exc

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()

    def _get_session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        session = self._session
        if session is not None and not session.closed and self._session_loop is loop:
            return session
        if session is not None and not session.closed:
            # Bound to a loop we no longer run on (a new loop after a fork or a restart): its
            # connections belong to that loop and cannot be closed from here.
            session.detach()
        owner = self._owner
        tls: Any = owner._tls.get() if owner._tls is not None else True
        connector = self._aiohttp.TCPConnector(
            limit=owner._max_connections, limit_per_host=owner._max_connections, ssl=tls
        )
        self._session = self._aiohttp.ClientSession(
            connector=connector, timeout=self._timeout, auto_decompress=False
        )
        self._session_loop = loop
        return self._session


async def _read_bounded(response: aiohttp.ClientResponse) -> bytes:
    """Read at most MAX_ANSWER_BYTES of the body, so a whole small answer frees the connection
    for the next request (keep-alive), and close the connection on anything bigger."""
    content = response.content
    chunks: list[bytes] = []
    left = MAX_ANSWER_BYTES
    while left > 0:
        chunk = await content.read(left)
        if not chunk:
            # The whole body was read: leaving `async with` reuses the connection.
            return b"".join(chunks)
        chunks.append(chunk)
        left -= len(chunk)
    if not content.at_eof():
        response.close()
    return b"".join(chunks)


def _ssl_context(ca_certs: str | None, verify: bool = True) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(cafile=ca_certs)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"ca_certs: cannot load CA bundle {ca_certs!r}: {exc}") from exc
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
