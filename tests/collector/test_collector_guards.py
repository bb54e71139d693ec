"""Attacks on the collector over real HTTP on 127.0.0.1: what one request, one web page or a
pile of idle connections can do to it, and that it refuses them (see docs/security.md)."""

from __future__ import annotations

import asyncio
import gzip
import io
import logging
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from errlink._wire.dsn import Dsn
from errlink._wire.envelope import Envelope
from errlink.collector import Collector, _decode
from errlink.collector._refusals import client_name
from tests._support.collector import CollectorProcess

# Generous guard against a hang; the tests wait for positive signals well within it.
GUARD_SECONDS = 20.0


def event_envelope(**header: Any) -> tuple[dict[str, Any], bytes]:
    event = {"event_id": uuid.uuid4().hex, "message": "hello", "level": "error"}
    built = Envelope({"event_id": event["event_id"], **header})
    built.add_json("event", event)
    return event, built.to_bytes()


def auth(collector: Collector) -> dict[str, str]:
    return {"X-Sentry-Auth": Dsn.parse(collector.dsn).auth_header()}


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


async def post(
    session: aiohttp.ClientSession, url: str, body: bytes | io.BytesIO, headers: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    async with session.post(url, data=body, headers=headers) as response:
        return response.status, await response.json()


def envelope_url(collector: Collector) -> str:
    return f"{collector.url}/api/1/envelope/"


# -- a random key ----------------------------------------------------------------------------


async def test_each_collector_has_its_own_random_key_and_the_old_default_is_refused(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    async with (
        Collector(db_path=tmp_path / "a.db") as one,
        Collector(db_path=tmp_path / "b.db") as two,
    ):
        assert one.public_key != two.public_key
        assert len(one.public_key) == 32
        assert Dsn.parse(one.dsn).public_key == one.public_key
        _, body = event_envelope()
        old_default = {"X-Sentry-Auth": "Sentry sentry_version=7, sentry_key=errlink"}
        status, _ = await post(session, envelope_url(one), body, old_default)
        assert status == 401
        status, _ = await post(session, envelope_url(one), body, auth(one))
        assert status == 200


# -- item 7: gzip members --------------------------------------------------------------------


async def test_a_keyless_compressed_envelope_is_refused_before_anything_is_inflated(
    collector: Collector, session: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    inflated: list[int] = []
    real_inflate = _decode.inflate

    def counting_inflate(data: bytes, *args: Any) -> bytes:
        inflated.append(len(data))
        return real_inflate(data, *args)

    monkeypatch.setattr(_decode, "inflate", counting_inflate)
    _, body = event_envelope(dsn=collector.dsn)  # the key would be in the envelope header
    members = b"".join(gzip.compress(b"") for _ in range(10_000)) + gzip.compress(body)

    status, answer = await post(
        session, envelope_url(collector), members, {"Content-Encoding": "gzip"}
    )

    assert status == 401
    assert "X-Sentry-Auth" in answer["detail"]
    assert inflated == []
    assert collector.events() == []
    # With the key in the header the same client is served (and its envelope inflated).
    status, _ = await post(
        session,
        envelope_url(collector),
        gzip.compress(body),
        {"Content-Encoding": "gzip", **auth(collector)},
    )
    assert status == 200
    assert len(inflated) == 1


async def test_thousands_of_gzip_members_are_refused_and_a_few_accepted(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    event, body = event_envelope()
    headers = {"Content-Encoding": "gzip", **auth(collector)}
    many = b"".join(gzip.compress(b"") for _ in range(5_000)) + gzip.compress(body)
    status, answer = await post(session, envelope_url(collector), many, headers)
    assert status == 400
    assert "gzip members" in answer["detail"]

    few = b"".join(gzip.compress(b"") for _ in range(10)) + gzip.compress(body)
    status, _ = await post(session, envelope_url(collector), few, headers)
    assert status == 200
    assert collector.events() == [event]


def test_members_shorter_and_longer_than_a_feed_step_inflate_exactly() -> None:
    # The body is fed in slices: a member may end inside one, or span several.
    body = b"".join(gzip.compress(b"x") for _ in range(_decode.MAX_GZIP_MEMBERS))
    assert _decode.inflate(body, 16 + 15, 1024, "gzip") == b"x" * _decode.MAX_GZIP_MEMBERS
    big = gzip.compress(bytes(range(256)) * 4096) * 2
    assert _decode.inflate(big, 16 + 15, 4 * 1024 * 1024, "gzip") == bytes(range(256)) * 8192


async def test_a_long_list_of_content_encodings_is_refused(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    _, body = event_envelope()
    for _ in range(3):
        body = gzip.compress(body)
    headers = {"Content-Encoding": "gzip, gzip, gzip", **auth(collector)}
    status, answer = await post(session, envelope_url(collector), body, headers)
    assert status == 415
    assert "Content-Encoding" in answer["detail"]


# -- item 8: DNS rebinding and cross-site writes ---------------------------------------------


@pytest.mark.parametrize("path", ["/", "/api/0/events/", "/api/0/stats/", "/api/1/envelope/"])
async def test_a_rebound_host_name_is_refused_everywhere(
    collector: Collector, session: aiohttp.ClientSession, path: str
) -> None:
    _, body = event_envelope()
    method = "POST" if "envelope" in path else "GET"
    headers = {"Host": f"evil.example:{collector.port}", **auth(collector)}
    async with session.request(method, collector.url + path, data=body, headers=headers) as r:
        assert r.status == 421
        assert "evil.example" in (await r.json())["detail"]
    assert collector.events() == []

    for host in (f"127.0.0.1:{collector.port}", f"localhost:{collector.port}", "LOCALHOST."):
        headers["Host"] = host
        async with session.request(method, collector.url + path, data=body, headers=headers) as r:
            assert r.status == 200, host


async def test_an_allowed_host_name_is_served(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    async with Collector(db_path=tmp_path / "c.db", allowed_hosts=["devbox.lan"]) as collector:
        for host, expected in (("devbox.lan:80", 200), ("evil.example", 421)):
            async with session.get(collector.url + "/", headers={"Host": host}) as response:
                assert response.status == expected


async def test_a_collector_on_every_address_accepts_ip_literals_only(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    async with Collector(host="0.0.0.0", db_path=tmp_path / "c.db") as collector:
        for host, expected in (("192.0.2.7:8000", 200), ("[::1]", 200), ("evil.example", 421)):
            async with session.get(collector.url + "/", headers={"Host": host}) as response:
                assert response.status == expected, host


async def test_a_cross_site_text_plain_post_is_refused(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    # What a page's `fetch(url, {method: "POST", mode: "no-cors", body})` sends: no preflight.
    _, body = event_envelope()
    url = f"{envelope_url(collector)}?sentry_key={collector.public_key}"
    for browser in ({"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        headers = {"Content-Type": "text/plain;charset=UTF-8", **browser}
        status, answer = await post(session, url, body, headers)
        assert status == 403
        assert "browser" in answer["detail"]
    assert collector.events() == []
    assert collector.request_statuses == {}


async def test_an_allowed_browser_origin_is_served_and_can_read_the_answer(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    origin = "http://localhost:3000"
    async with Collector(db_path=tmp_path / "c.db", allowed_origins=[origin]) as collector:
        event, body = event_envelope()
        url = f"{envelope_url(collector)}?sentry_key={collector.public_key}"
        headers = {"Content-Type": "text/plain;charset=UTF-8", "Origin": origin}
        async with session.post(url, data=body, headers=headers) as response:
            assert response.status == 200
            assert response.headers["Access-Control-Allow-Origin"] == origin
        headers["Origin"] = "http://evil.example"
        status, _ = await post(session, url, body, headers)
        assert status == 403
        assert collector.events() == [event]


# -- item 9: idle, half-open and too many connections ----------------------------------------


async def read_until_closed(reader: asyncio.StreamReader) -> bytes:
    return await asyncio.wait_for(reader.read(), GUARD_SECONDS)


async def test_half_open_connections_are_closed_and_the_cap_refuses_more(
    tmp_path: Path, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="errlink.collector")
    cap = 4
    async with Collector(
        db_path=tmp_path / "c.db", max_connections=cap, idle_timeout=0.5
    ) as collector:
        half_open = []
        for _ in range(cap):
            reader, writer = await asyncio.open_connection("127.0.0.1", collector.port)
            writer.write(b"POST /api/1/envelope/ HTT")  # half a request line, then nothing
            await writer.drain()
            half_open.append((reader, writer))
        # Every slot is held: three more connections are answered 503 and closed at once.
        for _ in range(3):
            reader, writer = await asyncio.open_connection("127.0.0.1", collector.port)
            answer = await read_until_closed(reader)
            assert answer.startswith(b"HTTP/1.1 503 ")
            writer.close()
        # The half-open ones are closed by the collector, without an answer.
        for reader, writer in half_open:
            assert await read_until_closed(reader) == b""
            writer.close()
        # Then a normal client is served again.
        async with session.get(f"{collector.url}/api/0/stats/") as response:
            assert response.status == 200
    # Each kind is logged once, however many connections it concerned.
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2, messages
    assert "refused a connection: 4 are open" in messages[0]
    assert "sent no whole request within 0.5s" in messages[1]
    assert collector.refusals.counts == {"connections": 3, "idle": cap}


async def test_a_body_that_never_arrives_is_answered_408(tmp_path: Path) -> None:
    async with Collector(db_path=tmp_path / "c.db", body_timeout=0.3) as collector:
        reader, writer = await asyncio.open_connection("127.0.0.1", collector.port)
        head = (
            f"POST /api/1/envelope/?sentry_key={collector.public_key} HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{collector.port}\r\nContent-Length: 1000\r\n\r\n"
        )
        writer.write(head.encode() + b"{}\n")
        # Answered, and closed without waiting for the rest of the body.
        answer = await read_until_closed(reader)
        assert answer.startswith(b"HTTP/1.1 408 ")
        assert b"did not arrive within 0.3s" in answer
        writer.close()
        assert collector.request_statuses == {408: 1}


async def test_each_kind_of_refusal_is_logged_once(
    collector: Collector, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="errlink.collector")
    _, body = event_envelope()
    url = f"{envelope_url(collector)}?sentry_key={collector.public_key}"
    for _ in range(20):
        async with session.get(collector.url + "/", headers={"Host": "evil.example"}) as r:
            assert r.status == 421
        status, _ = await post(session, url, body, {"Origin": "http://evil.example"})
        assert status == 403
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2, messages
    assert "'evil.example'" in messages[0]
    assert "'http://evil.example'" in messages[1]
    assert collector.refusals.counts == {"host": 20, "origin": 20}
    summary = collector.refusals.summary()
    assert (summary["host"]["status"], summary["origin"]["status"]) == (421, 403)
    assert summary["host"]["count"] == 20


# -- item 11: items per envelope -------------------------------------------------------------


async def test_an_envelope_of_100000_items_is_refused_413(
    collector: Collector, session: aiohttp.ClientSession
) -> None:
    body = b"{}\n" + b'{"type":"session"}\n{}\n' * 100_000  # 2.2 MB
    status, answer = await post(session, envelope_url(collector), io.BytesIO(body), auth(collector))
    assert status == 413
    assert "100000 items" in answer["detail"]
    assert collector.ignored_items == {}
    event, body = event_envelope()
    status, _ = await post(session, envelope_url(collector), body, auth(collector))
    assert status == 200
    assert collector.events() == [event]


def test_the_new_options_are_validated() -> None:
    for options, message in [
        ({"max_connections": 0}, "max_connections must be a positive integer"),
        ({"max_envelope_items": -1}, "max_envelope_items must be a positive integer"),
        ({"idle_timeout": 0}, "idle_timeout must be a positive number"),
        ({"body_timeout": float("inf")}, "body_timeout must be a positive number"),
        ({"allowed_hosts": [""]}, "allowed_hosts must hold non-empty strings"),
    ]:
        with pytest.raises(ValueError, match=message):
            Collector(**options)
    with pytest.raises(TypeError, match="allowed_origins must be a list"):
        Collector(allowed_origins="http://localhost:3000")


# -- issue 23: refusals are visible ----------------------------------------------------------

SENTRY_PYTHON = "sentry.python/2.76.0"


def sdk_auth(key: str) -> dict[str, str]:
    """The auth header sentry-sdk sends, naming itself."""
    return {
        "X-Sentry-Auth": f"Sentry sentry_version=7, sentry_key={key}, sentry_client={SENTRY_PYTHON}"
    }


async def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + GUARD_SECONDS
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        await asyncio.sleep(0.01)


async def test_each_kind_of_refused_request_is_logged_once_with_its_reason_and_client(
    tmp_path: Path, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="errlink.collector")
    async with Collector(db_path=tmp_path / "c.db", max_body_bytes=4096) as collector:
        sdk = sdk_auth(collector.public_key)
        _, body = event_envelope()
        url = envelope_url(collector)
        # kind: (url, body, headers, status, the reason given)
        attempts = {
            "encoding": (
                url,
                body,
                {**sdk, "Content-Encoding": "compress"},
                415,
                "unsupported Content-Encoding 'compress'",
            ),
            "too-large": (url, bytes(5000), sdk, 413, "exceeds the limit of 4096 bytes"),
            "auth": (url, body, sdk_auth("wrong"), 401, "invalid public key"),
            "malformed": (url, b"{not json\n", sdk, 400, "malformed envelope"),
            "project": (f"{collector.url}/api/2/envelope/", body, sdk, 404, "unknown project '2'"),
        }
        for _ in range(3):
            for target, data, headers, expected, _ in attempts.values():
                status, _ = await post(session, target, data, headers)
                assert status == expected
        # A client without X-Sentry-Auth is named by its User-Agent.
        status, _ = await post(session, f"{url}?sentry_key=wrong", body, {"User-Agent": "curl/8"})
        assert status == 401

        async with session.get(f"{collector.url}/api/0/stats/") as response:
            stats = await response.json()

    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == len(attempts), lines
    for _, _, _, status, reason in attempts.values():
        [line] = [text for text in lines if f"with {status}: " in text]
        assert reason in line
        assert f"from {SENTRY_PYTHON} " in line
    counts = {"encoding": 3, "too-large": 3, "auth": 4, "malformed": 3, "project": 3}
    assert collector.refusals.counts == counts
    assert {kind: refusal["count"] for kind, refusal in stats["refusals"].items()} == counts
    assert stats["refusals"]["auth"] == {
        "count": 4,
        "status": 401,
        "reason": "invalid public key",
        "client": "curl/8",
    }
    assert stats["refusals"]["encoding"]["client"] == SENTRY_PYTHON
    assert stats["requests"] == {"400": 3, "401": 4, "404": 3, "413": 3, "415": 3}


async def test_failures_on_purpose_are_answers_not_refusals(
    tmp_path: Path, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="errlink.collector")
    async with Collector(
        db_path=tmp_path / "c.db", fail_rate=1.0, fail_status=429, max_body_bytes=4096
    ) as collector:
        _, body = event_envelope()
        status, _ = await post(session, envelope_url(collector), body, auth(collector))
        assert status == 429
        # Reading the body is still guarded while a failure is injected.
        status, _ = await post(session, envelope_url(collector), bytes(5000), {})
        assert status == 413
    assert collector.request_statuses == {429: 1, 413: 1}
    assert collector.refusals.counts == {"too-large": 1}
    assert len(caplog.records) == 1


async def test_a_client_that_disconnects_mid_body_is_not_a_server_error(
    collector: Collector, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger: no traceback anywhere
    _, body = event_envelope()
    head = (
        "POST /api/1/envelope/ HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{collector.port}\r\n"
        f"X-Sentry-Auth: {sdk_auth(collector.public_key)['X-Sentry-Auth']}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    for _ in range(3):
        _, writer = await asyncio.open_connection("127.0.0.1", collector.port)
        writer.write(head + body[: len(body) // 2])  # headers, half the body, then gone
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    await wait_until(lambda: collector.refusals.counts["disconnected"] == 3)

    assert collector.request_statuses == {}  # no answer, and above all no 500
    assert [record for record in caplog.records if record.exc_info] == []
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings
    assert f"a client ({SENTRY_PYTHON}) closed its connection" in warnings[0]
    status, _ = await post(session, envelope_url(collector), body, auth(collector))
    assert status == 200
    assert collector.request_statuses == {200: 1}


def test_errlink_serve_prints_a_refusal_once_even_when_quiet(tmp_path: Path) -> None:
    with CollectorProcess(db=tmp_path / "e.db", capture_stderr=True) as serve:  # -q
        dsn = Dsn.parse(serve.dsn)
        assert f"stats:    http://{dsn.netloc}/stats/" in serve.banner
        assert "note:" not in serve.banner  # the test extra brings brotli and zstandard
        _, body = event_envelope()
        headers = {**sdk_auth(dsn.public_key), "Content-Encoding": "compress"}
        for _ in range(2):
            request = urllib.request.Request(dsn.envelope_url, body, headers)
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=10)
            assert refused.value.code == 415
            refused.value.close()
        assert serve.stats()["refusals"]["encoding"]["count"] == 2
        _, stderr = serve.stop()
    assert serve.returncode == 0, stderr
    [line] = [text for text in stderr.splitlines() if "refused" in text]
    assert f"refused a request from {SENTRY_PYTHON} with 415: unsupported Content-Encoding" in line


def test_a_client_name_cannot_forge_log_lines() -> None:
    escape = {"User-Agent": "evil\x1b[2J\x07" + "x" * 200}
    assert client_name(escape, {}) == "evil?[2J?" + "x" * 91 + "..."
    auth_header = {"X-Sentry-Auth": "Sentry sentry_key=k, sentry_client=sentry.ruby/5.17.0"}
    assert client_name({**auth_header, **escape}, {}) == "sentry.ruby/5.17.0"
    assert client_name({}, {"sentry_client": "sentry.javascript.browser/8.0.0"}) == (
        "sentry.javascript.browser/8.0.0"
    )
    assert client_name({}, {}) == "an unnamed client"
