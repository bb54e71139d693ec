"""The content codings that need a package of the `collector` extra: Brotli and Zstandard.

sentry-sdk compresses with Brotli (`br`) whenever the `brotli` package is installed; Relay also
takes `zstd`. Both are undone in bounded slices of output, like gzip in `_decode`, and each
package is imported only when a body needs it: without it the body is refused 415, with the
command that installs it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from ._errors import Rejected

_INFLATE_STEP = 64 * 1024
_FEED_STEP = 64 * 1024
MAX_ZSTD_FRAMES = 100
# A zstd block decodes to at most 128 KiB and takes at least 4 bytes (a 3-byte header and one
# repeated byte), so a feed of n bytes yields at most (n / 4 + 1) blocks of output.
_ZSTD_BLOCK_OUTPUT = 128 * 1024
_ZSTD_MIN_BLOCK_BYTES = 4
_ZSTD_MIN_FEED = 64
# Enough for what zstd's levels up to 19 write; up to 128 MiB when the body limit is larger.
_ZSTD_MIN_WINDOW = 8 * 1024 * 1024
_ZSTD_MAX_WINDOW = 128 * 1024 * 1024
_OPTIONAL_CODINGS = (("brotli", "br"), ("zstandard", "zstd"))
INSTALL_CODECS = "pip install 'errlink[collector]'"


def unbrotli(data: bytes, limit: int) -> bytes:
    """Undo Brotli, taking its output in bounded slices (which needs brotli 1.2 or newer)."""
    brotli = _codec_package("brotli", "br")
    if not hasattr(brotli.Decompressor, "can_accept_more_data"):
        raise _codec_missing("br", "brotli 1.2 or newer (older ones cannot bound their output)")
    decompressor = brotli.Decompressor()
    output = bytearray()
    view = memoryview(data)
    try:
        for start in range(0, len(data), _FEED_STEP):
            if decompressor.is_finished():
                raise Rejected(400, "unexpected bytes after the end of the br data")
            piece = view[start : start + _FEED_STEP]
            chunk: bytes = decompressor.process(piece, output_buffer_limit=_INFLATE_STEP)
            append_within(output, chunk, limit)
            # A full slice of output means more may be waiting for the same input.
            while chunk and not decompressor.is_finished():
                chunk = decompressor.process(b"", output_buffer_limit=_INFLATE_STEP)
                append_within(output, chunk, limit)
    except brotli.error as exc:
        raise Rejected(400, f"invalid br data: {exc}") from None
    if not decompressor.is_finished():
        raise Rejected(400, "truncated br data")
    return bytes(output)


def unzstd(data: bytes, limit: int) -> bytes:
    """Undo Zstandard, frame by frame, fed in slices small enough to bound each one's output."""
    zstandard = _codec_package("zstandard", "zstd")
    decompressor = zstandard.ZstdDecompressor(max_window_size=_zstd_window(limit))
    output = bytearray()
    view = memoryview(data)
    pos = 0
    for _ in range(MAX_ZSTD_FRAMES):
        frame = decompressor.decompressobj()
        while not frame.eof:
            if pos >= len(data):
                raise Rejected(400, "truncated zstd data")
            piece = view[pos : pos + _zstd_feed_size(limit - len(output))]
            pos += len(piece)
            try:
                chunk: bytes = frame.decompress(piece)
            except zstandard.ZstdError as exc:
                raise Rejected(400, f"invalid zstd data: {exc}") from None
            append_within(output, chunk, limit)
        pos -= len(frame.unused_data)
        if pos >= len(data):
            return bytes(output)
    raise Rejected(400, f"more than {MAX_ZSTD_FRAMES} zstd frames in one body")


def _zstd_feed_size(room: int) -> int:
    # Small enough that one feed cannot decode to much more than the room left under the limit.
    blocks = room // _ZSTD_BLOCK_OUTPUT
    return max(_ZSTD_MIN_FEED, min(_FEED_STEP, blocks * _ZSTD_MIN_BLOCK_BYTES))


def _zstd_window(limit: int) -> int:
    # A frame may ask for a window of up to 2 GiB, memory the decoder would allocate.
    window = _ZSTD_MIN_WINDOW
    while window < limit and window < _ZSTD_MAX_WINDOW:
        window *= 2
    return window


def append_within(output: bytearray, chunk: bytes, limit: int) -> None:
    if len(output) + len(chunk) > limit:
        raise Rejected(413, f"decompressed body exceeds the limit of {limit} bytes")
    output += chunk


def _codec_package(name: str, coding: str) -> ModuleType:
    """The package decoding `coding`, imported when first needed: it is an optional extra."""
    try:
        return importlib.import_module(name)
    except ImportError:
        raise _codec_missing(coding, f"the {name} package") from None


def _codec_missing(coding: str, needed: str) -> Rejected:
    return Rejected(
        415,
        f"Content-Encoding {coding!r} needs {needed} on the collector: {INSTALL_CODECS}",
        headers={"Accept-Encoding": accepted_encodings()},
    )


def accepted_encodings() -> str:
    """The codings this collector can undo, as an `Accept-Encoding` value."""
    missing = unavailable_encodings()
    codings = ["gzip", "deflate"] + [c for _, c in _OPTIONAL_CODINGS if c not in missing]
    return ", ".join(codings)


def unavailable_encodings() -> list[str]:
    """The codings refused because their package is not installed."""
    return [coding for package, coding in _OPTIONAL_CODINGS if not _installed(package)]


def _installed(package: str) -> bool:
    try:
        importlib.import_module(package)
    except ImportError:
        return False
    return True
