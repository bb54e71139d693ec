"""Compressed bodies over real HTTP on 127.0.0.1: Brotli (what sentry-sdk sends whenever the
`brotli` package is installed) and zstd, their bombs, broken streams, and a collector without
the `collector` extra."""

from __future__ import annotations

import gzip
import os
import sys
import time
import tracemalloc
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import aiohttp
import brotli
import pytest
import zstandard

from errlink._wire.dsn import Dsn
from errlink._wire.envelope import Envelope
from errlink.collector import DEFAULT_MAX_DECOMPRESSED_BYTES, Collector, _decode, _optional_codecs
from errlink.collector._errors import Rejected

MiB = 1024 * 1024
SENTRY_PYTHON = "sentry.python/2.76.0"


def new_event(**fields: Any) -> dict[str, Any]:
    return {"event_id": uuid.uuid4().hex, "platform": "python", "level": "error", **fields}


def event_envelope(event: dict[str, Any]) -> bytes:
    built = Envelope({"event_id": event["event_id"]})
    built.add_json("event", event)
    return built.to_bytes()


def sdk_headers(collector: Collector, encoding: str) -> dict[str, str]:
    """What sentry-sdk sends with a compressed envelope."""
    key = Dsn.parse(collector.dsn).public_key
    auth = f"Sentry sentry_key={key}, sentry_version=7, sentry_client={SENTRY_PYTHON}"
    return {
        "Content-Type": "application/x-sentry-envelope",
        "Content-Encoding": encoding,
        "X-Sentry-Auth": auth,
    }


def zstd_stream(data: bytes) -> bytes:
    """A zstd frame written by a streaming compressor: no content size in its header."""
    compressor = zstandard.ZstdCompressor().compressobj()
    return compressor.compress(data) + compressor.flush()


COMPRESS: dict[str, Callable[[bytes], bytes]] = {
    "br": brotli.compress,
    "zstd": lambda data: zstandard.ZstdCompressor().compress(data),
}


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


async def post(
    session: aiohttp.ClientSession,
    collector: Collector,
    body: bytes | AsyncIterator[bytes],
    headers: dict[str, str],
) -> tuple[int, dict[str, Any], dict[str, str]]:
    url = Dsn.parse(collector.dsn).envelope_url
    async with session.post(url, data=body, headers=headers) as response:
        return response.status, await response.json(), dict(response.headers)


# -- accepted ---------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["br", "zstd"])
async def test_a_compressed_envelope_is_stored(
    collector: Collector, session: aiohttp.ClientSession, encoding: str
) -> None:
    event = new_event(message="compressed", extra={"padding": "x" * 5000})
    body = COMPRESS[encoding](event_envelope(event))

    status, answer, _ = await post(session, collector, body, sdk_headers(collector, encoding))

    assert (status, answer) == (200, {"id": event["event_id"]})
    assert collector.events() == [event]
    assert collector.refusals.counts == {}


async def test_large_bodies_cross_every_slice_boundary(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    # Random text compresses little: the compressed bodies span many 64 KiB feeds, and are
    # decoded off the event loop.
    noise = os.urandom(320_000).hex()  # 640 kB, about half of it left once compressed
    events = [new_event(message=f"big {coding}", extra={"noise": noise}) for coding in COMPRESS]
    bodies = {
        "br": brotli.compress(event_envelope(events[0]), quality=1),
        # Several frames back to back, as a streaming compressor flushing frames may send.
        "zstd": b"".join(zstd_stream(part) for part in _thirds(event_envelope(events[1]))),
    }
    for encoding, body in bodies.items():
        assert len(body) > 3 * 64 * 1024
        status, _, _ = await post(session, collector, body, sdk_headers(collector, encoding))
        assert status == 200, encoding
    assert collector.events() == events


def _thirds(data: bytes) -> Iterator[bytes]:
    step = len(data) // 3 + 1
    for start in range(0, len(data), step):
        yield data[start : start + step]


def test_a_tiny_brotli_body_is_decoded_whole_or_refused_at_the_limit() -> None:
    # 64 MiB of zeros is about a hundred bytes of Brotli: one feed, hundreds of output slices.
    bomb = brotli.compress(bytes(64 * MiB), quality=5)
    with pytest.raises(Rejected) as refused:
        _optional_codecs.unbrotli(bomb, 20 * MiB)
    assert refused.value.status == 413
    assert _optional_codecs.unbrotli(bomb, 64 * MiB) == bytes(64 * MiB)


# -- bombs ------------------------------------------------------------------------------------


def brotli_of_zeros(mebibytes: int) -> Iterator[bytes]:
    compressor = brotli.Compressor(quality=1)
    zeros = bytes(MiB)
    for _ in range(mebibytes):
        yield compressor.process(zeros)
    yield compressor.finish()


def zstd_of_zeros(mebibytes: int) -> Iterator[bytes]:
    compressor = zstandard.ZstdCompressor(level=1).compressobj()
    zeros = bytes(MiB)
    for _ in range(mebibytes):
        yield compressor.compress(zeros)
    yield compressor.flush()


@pytest.mark.parametrize(("encoding", "pieces"), [("br", brotli_of_zeros), ("zstd", zstd_of_zeros)])
async def test_a_bomb_is_stopped_while_decoding(
    collector: Collector,
    session: aiohttp.ClientSession,
    encoding: str,
    pieces: Callable[[int], Iterator[bytes]],
) -> None:
    body = b"".join(pieces(1024))  # 1 GiB of zeros, a few hundred kB on the wire
    assert len(body) < 2 * MiB

    tracemalloc.start()
    try:
        started = time.perf_counter()
        status, answer, _ = await post(session, collector, body, sdk_headers(collector, encoding))
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert status == 413
    assert "decompressed body exceeds the limit" in answer["detail"]
    # The default cap is 100 MiB (an envelope with attachments); decoding the whole GiB would
    # have shown up here.
    assert peak < 3 * DEFAULT_MAX_DECOMPRESSED_BYTES, f"peak traced memory {peak / MiB:.0f} MiB"
    print(f"{encoding} bomb refused in {elapsed:.2f}s, peak traced memory {peak / MiB:.0f} MiB")
    event = new_event()
    status, _, _ = await post(
        session,
        collector,
        COMPRESS[encoding](event_envelope(event)),
        sdk_headers(collector, encoding),
    )
    assert status == 200


async def test_a_keyless_brotli_envelope_is_refused_before_anything_is_decoded(
    collector: Collector, session: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded: list[int] = []

    def counting_unbrotli(data: bytes, limit: int) -> bytes:
        decoded.append(len(data))
        return _optional_codecs.unbrotli(data, limit)

    monkeypatch.setattr(_decode, "unbrotli", counting_unbrotli)
    built = Envelope({"dsn": collector.dsn})  # the key would be inside, once decoded
    built.add_json("event", new_event())
    headers = {"Content-Encoding": "br"}

    status, answer, _ = await post(session, collector, brotli.compress(built.to_bytes()), headers)

    assert status == 401
    assert "X-Sentry-Auth" in answer["detail"]
    assert decoded == []


# -- broken streams ---------------------------------------------------------------------------

_EVENT_BODY = event_envelope(new_event())
_BROKEN: dict[str, tuple[str, bytes, str]] = {
    # name: (encoding, body, what the refusal says)
    "br garbage": ("br", b"certainly not brotli", "invalid br data"),
    "br truncated": ("br", brotli.compress(_EVENT_BODY)[:-4], "truncated br data"),
    "br empty": ("br", b"", "truncated br data"),
    "zstd garbage": ("zstd", b"certainly not zstd", "invalid zstd data"),
    "zstd truncated": ("zstd", zstd_stream(_EVENT_BODY)[:-4], "truncated zstd data"),
    "zstd junk after": ("zstd", zstd_stream(_EVENT_BODY) + b"junk", "invalid zstd data"),
    "zstd frames": (
        "zstd",
        zstandard.ZstdCompressor().compress(b"") * 5000 + zstd_stream(_EVENT_BODY),
        "more than 100 zstd frames",
    ),
    "br then gzip": ("br, gzip", gzip.compress(b"not brotli inside"), "invalid br data"),
}


@pytest.mark.parametrize("case", list(_BROKEN))
async def test_a_broken_stream_is_refused_400_and_the_next_request_served(
    collector: Collector, session: aiohttp.ClientSession, case: str
) -> None:
    encoding, body, reason = _BROKEN[case]
    status, answer, _ = await post(session, collector, body, sdk_headers(collector, encoding))
    assert status == 400
    assert reason in answer["detail"]

    event = new_event()
    body = COMPRESS["br"](event_envelope(event))
    status, _, _ = await post(session, collector, body, sdk_headers(collector, "br"))
    assert status == 200
    assert collector.events() == [event]


async def test_a_stacked_encoding_is_undone_in_reverse(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    event = new_event()
    body = gzip.compress(brotli.compress(event_envelope(event)))
    status, _, _ = await post(session, collector, body, sdk_headers(collector, "br, gzip"))
    assert status == 200
    assert collector.events() == [event]


# -- without the `collector` extra ------------------------------------------------------------


@pytest.mark.parametrize(("encoding", "package"), [("br", "brotli"), ("zstd", "zstandard")])
async def test_without_its_package_an_encoding_is_refused_415_naming_the_extra(
    collector: Collector,
    session: aiohttp.ClientSession,
    monkeypatch: pytest.MonkeyPatch,
    encoding: str,
    package: str,
) -> None:
    body = COMPRESS[encoding](event_envelope(new_event()))
    monkeypatch.setitem(sys.modules, package, None)  # `import <package>` now fails

    status, answer, headers = await post(session, collector, body, sdk_headers(collector, encoding))

    assert status == 415
    assert f"needs the {package} package" in answer["detail"]
    assert "pip install 'errlink[collector]'" in answer["detail"]
    assert encoding not in headers["Accept-Encoding"].split(", ")
    assert "gzip" in headers["Accept-Encoding"]
    assert collector.events() == []
    assert collector.refusals.counts == {"encoding": 1}

    monkeypatch.undo()  # installed again: the same body is taken
    status, _, _ = await post(session, collector, body, sdk_headers(collector, encoding))
    assert status == 200


async def test_an_unknown_encoding_is_refused_415_listing_the_known_ones(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    status, answer, headers = await post(
        session, collector, _EVENT_BODY, sdk_headers(collector, "compress")
    )
    assert status == 415
    assert "gzip, deflate, br or zstd" in answer["detail"]
    assert headers["Accept-Encoding"] == "gzip, deflate, br, zstd"
