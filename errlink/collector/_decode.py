"""Reading request bodies within size limits and undoing their compression.

Every limit is enforced while reading or inflating, so an oversized body or a compression bomb
is refused after at most `limit` bytes, never after materializing the whole thing.
"""

from __future__ import annotations

import base64
import binascii
import zlib

from aiohttp import web

from ._errors import Rejected

_INFLATE_STEP = 64 * 1024
_GZIP_MAGIC = b"\x1f\x8b"
_GZIP_WBITS = 16 + zlib.MAX_WBITS
_ZLIB_WBITS = zlib.MAX_WBITS
_RAW_DEFLATE_WBITS = -zlib.MAX_WBITS
_ZLIB_OR_GZIP_WBITS = 32 + zlib.MAX_WBITS


async def read_body(request: web.Request, limit: int) -> bytes:
    """The raw request body; 413 as soon as it is known to exceed `limit` bytes."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise Rejected(413, f"body of {declared} bytes exceeds the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > limit:
            raise Rejected(413, f"body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def decode_content(body: bytes, content_encoding: str, limit: int) -> bytes:
    """Undo `Content-Encoding` (gzip, deflate, identity; several listed are undone in reverse)."""
    codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip()]
    for coding in reversed(codings):
        if coding == "identity":
            continue
        if coding in ("gzip", "x-gzip"):
            body = inflate(body, _GZIP_WBITS, limit, "gzip")
        elif coding == "deflate":
            body = inflate(body, _deflate_wbits(body), limit, "deflate")
        else:
            raise Rejected(415, f"unsupported Content-Encoding {coding!r} (use gzip or deflate)")
    if len(body) > limit:
        raise Rejected(413, f"body exceeds the limit of {limit} bytes")
    return body


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
    """Decompress `data`, refusing with 413 once the output would pass `limit` bytes."""
    output = bytearray()
    remaining = data
    while True:
        inflater = zlib.decompressobj(wbits)
        _inflate_stream(inflater, remaining, output, limit, what)
        remaining = inflater.unused_data
        # gzip allows several members back to back; trailing zero padding is tolerated.
        if wbits == _GZIP_WBITS and remaining.startswith(_GZIP_MAGIC):
            continue
        if remaining.strip(b"\x00"):
            raise Rejected(400, f"unexpected bytes after the end of the {what} data")
        return bytes(output)


def _inflate_stream(
    inflater: zlib._Decompress, data: bytes, output: bytearray, limit: int, what: str
) -> None:
    pending = data
    while not inflater.eof:
        try:
            chunk = inflater.decompress(pending, _INFLATE_STEP)
        except zlib.error as exc:
            raise Rejected(400, f"invalid {what} data: {exc}") from None
        if len(output) + len(chunk) > limit:
            raise Rejected(413, f"decompressed body exceeds the limit of {limit} bytes")
        output += chunk
        pending = inflater.unconsumed_tail
        if not pending and len(chunk) < _INFLATE_STEP:
            break
    if not inflater.eof:
        raise Rejected(400, f"truncated {what} data")


def _deflate_wbits(body: bytes) -> int:
    # HTTP "deflate" means zlib-wrapped, but some clients send a raw deflate stream.
    if len(body) >= 2 and body[0] & 0x0F == 8 and ((body[0] << 8) | body[1]) % 31 == 0:
        return _ZLIB_WBITS
    return _RAW_DEFLATE_WBITS
