"""Reading request bodies within size limits and undoing their compression.

Every limit is enforced while reading or inflating, so an oversized body or a compression bomb
is refused after at most `limit` bytes (plus one bounded slice), never after materializing the
whole thing. gzip and deflate come with Python; Brotli and Zstandard are in `_optional_codecs`.
"""

from __future__ import annotations

import base64
import binascii
import zlib

from aiohttp import web

from ._errors import Rejected
from ._optional_codecs import accepted_encodings, append_within, unbrotli, unzstd

_INFLATE_STEP = 64 * 1024
_FEED_STEP = 64 * 1024
# A client compresses a body as one gzip member; a few more are tolerated, not thousands.
MAX_GZIP_MEMBERS = 100
# `Content-Encoding: gzip, gzip` is legal; a long list is only a way to multiply the work.
MAX_CONTENT_CODINGS = 2
_GZIP_MAGIC = b"\x1f\x8b"
_GZIP_WBITS = 16 + zlib.MAX_WBITS
_ZLIB_WBITS = zlib.MAX_WBITS
_RAW_DEFLATE_WBITS = -zlib.MAX_WBITS
_ZLIB_OR_GZIP_WBITS = 32 + zlib.MAX_WBITS


class ClientDisconnected(Exception):
    """The client closed the connection before its whole body arrived: there is no one to answer."""


async def read_body(request: web.Request, limit: int) -> bytes:
    """The raw request body; 413 as soon as it is known to exceed `limit` bytes."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise Rejected(413, f"body of {declared} bytes exceeds the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.content.iter_any():
            size += len(chunk)
            if size > limit:
                raise Rejected(413, f"body exceeds the limit of {limit} bytes")
            chunks.append(chunk)
    except ConnectionError:  # aiohttp's "Connection lost" once the client has gone
        raise ClientDisconnected from None
    return b"".join(chunks)


def decode_content(body: bytes, content_encoding: str, limit: int) -> bytes:
    """Undo `Content-Encoding` (gzip, deflate, br, zstd, identity; several listed are undone in
    reverse)."""
    codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip()]
    if len(codings) > MAX_CONTENT_CODINGS:
        raise Rejected(
            415, f"more than {MAX_CONTENT_CODINGS} Content-Encodings ({content_encoding!r:.100})"
        )
    for coding in reversed(codings):
        if coding == "identity":
            continue
        if coding in ("gzip", "x-gzip"):
            body = inflate(body, _GZIP_WBITS, limit, "gzip")
        elif coding == "deflate":
            body = inflate(body, _deflate_wbits(body), limit, "deflate")
        elif coding == "br":
            body = unbrotli(body, limit)
        elif coding == "zstd":
            body = unzstd(body, limit)
        else:
            raise Rejected(
                415,
                f"unsupported Content-Encoding {coding!r:.40} (use gzip, deflate, br or zstd)",
                headers={"Accept-Encoding": accepted_encodings()},
            )
    if len(body) > limit:
        raise Rejected(413, f"body exceeds the limit of {limit} bytes")
    return body


def is_compressed(content_encoding: str) -> bool:
    return any(
        coding.strip().lower() not in ("", "identity") for coding in content_encoding.split(",")
    )


def decode_raven_body(body: bytes, limit: int) -> bytes:
    """The JSON inside the old raven store format: base64 of zlib-compressed JSON."""
    try:
        packed = base64.b64decode(b"".join(body.split()), validate=True)
    except (binascii.Error, ValueError):
        raise Rejected(
            400, "store body is neither JSON nor base64 of zlib-compressed JSON"
        ) from None
    if packed.lstrip()[:1] in (b"{", b"["):  # base64 of plain JSON, seen from some old clients
        return packed
    return inflate(packed, _ZLIB_OR_GZIP_WBITS, limit, "zlib")


def inflate(data: bytes, wbits: int, limit: int, what: str) -> bytes:
    """Decompress `data`, refusing with 413 once the output would pass `limit` bytes.

    Linear in the input: it is fed in slices, so what is left after a gzip member is never
    copied whole (copying the rest after each of a million tiny members took minutes).
    """
    output = bytearray()
    view = memoryview(data)
    pos = 0
    members = 0
    while True:
        members += 1
        if members > MAX_GZIP_MEMBERS:
            raise Rejected(400, f"more than {MAX_GZIP_MEMBERS} gzip members in one body")
        pos = _inflate_stream(zlib.decompressobj(wbits), view, pos, output, limit, what)
        # gzip allows several members back to back; trailing zero padding is tolerated.
        if wbits == _GZIP_WBITS and data.startswith(_GZIP_MAGIC, pos):
            continue
        if view[pos:].tobytes().strip(b"\x00"):
            raise Rejected(400, f"unexpected bytes after the end of the {what} data")
        return bytes(output)


def _inflate_stream(
    inflater: zlib._Decompress,
    data: memoryview,
    pos: int,
    output: bytearray,
    limit: int,
    what: str,
) -> int:
    """Inflate one stream starting at `pos` into `output`; the position just past its end."""
    pending: bytes | memoryview = b""
    more_output = False  # the last call filled its output step: zlib may hold more
    while not inflater.eof:
        if not pending and not more_output:
            if pos >= len(data):
                raise Rejected(400, f"truncated {what} data")
            pending = data[pos : pos + _FEED_STEP]
            pos += len(pending)
        try:
            chunk = inflater.decompress(pending, _INFLATE_STEP)
        except zlib.error as exc:
            raise Rejected(400, f"invalid {what} data: {exc}") from None
        append_within(output, chunk, limit)
        pending = inflater.unconsumed_tail
        more_output = len(chunk) == _INFLATE_STEP
    # At the end of the stream every input byte after it is in `unused_data`.
    return pos - len(inflater.unused_data)


def _deflate_wbits(body: bytes) -> int:
    # HTTP "deflate" means zlib-wrapped, but some clients send a raw deflate stream.
    if len(body) >= 2 and body[0] & 0x0F == 8 and ((body[0] << 8) | body[1]) % 31 == 0:
        return _ZLIB_WBITS
    return _RAW_DEFLATE_WBITS
