"""One test per security promise of docs/security.md, each through real parts.

Events go through a real client to a real collector and are checked as the collector stored
them; TLS is checked against a real TLS server on 127.0.0.1 with a certificate made for the
test; the collector's limits are checked over real HTTP.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import socket
import ssl
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import errlink
from errlink import AsyncClient, Dsn, TransportError
from errlink._delivery.http import HttpTransport
from errlink.collector import Collector
from tests._support import wait_until_async

# Made at run time, so that no source line a stack frame shows (context lines) contains them.
LOCAL, EXTRA, CONTEXT, CRUMB, HEADER = (uuid.uuid4().hex for _ in range(5))
CARD = "4111 1111 1111 1111"


def stored_text(collector: Collector) -> str:
    return json.dumps(collector.events())


# -- secrets and personal data -------------------------------------------------------------------


def failed_payment() -> ValueError:
    def pay(password: str) -> None:
        card_number = CARD  # a local holding a card number
        raise ValueError(f"payment failed for card {card_number}")

    try:
        pay(LOCAL)
    except ValueError as exc:
        return exc
    raise AssertionError("unreachable")


async def test_secrets_are_scrubbed_in_every_event_location(collector: Collector) -> None:
    async with AsyncClient(collector.dsn) as client:
        errlink.set_extra("db_password", EXTRA)
        errlink.set_context("service", {"api_key": CONTEXT, "region": "eu"})
        errlink.add_breadcrumb(message="login", data={"password": CRUMB})
        request = {
            "url": "https://shop.example/pay",
            "method": "POST",
            "query_string": f"token={HEADER}&page=2",
            "headers": {"Authorization": f"Bearer {HEADER}", "X-Api-Key": HEADER},
            "cookies": {"sessionid": HEADER},
            "data": {"password": HEADER, "card": CARD},
        }
        await client.capture_exception(failed_payment(), request=request)
        await client.capture_message(f"charged {CARD}", extra={"refresh_token": EXTRA})
        assert await client.flush(10)
    events = await collector.wait_for_events(2)
    text = json.dumps(events)
    for secret in (LOCAL, EXTRA, CONTEXT, CRUMB, HEADER, CARD, CARD.replace(" ", "")):
        assert secret not in text, secret
    assert text.count("[Filtered]") >= 8
    # What is not secret is still there.
    frames = events[0]["exception"]["values"][0]["stacktrace"]["frames"]
    assert frames[-1]["function"].endswith("pay")
    assert events[0]["request"]["url"] == "https://shop.example/pay"
    assert "page=2" in events[0]["request"]["query_string"]


@pytest.mark.parametrize("send_default_pii", [False, True])
async def test_personal_data_only_with_send_default_pii(
    collector: Collector, send_default_pii: bool
) -> None:
    async with AsyncClient(collector.dsn, send_default_pii=send_default_pii) as client:
        errlink.set_user({"id": "42", "email": "ann@example.com", "ip_address": "203.0.113.9"})
        request = {
            "url": "https://shop.example/",
            "headers": {"Cookie": "theme=dark", "X-Forwarded-For": "203.0.113.9"},
            "cookies": {"theme": "dark"},
            "env": {"REMOTE_ADDR": "203.0.113.9"},
        }
        await client.capture_message("who was it", request=request)
        assert await client.flush(10)
    (event,) = await collector.wait_for_events(1)
    user, request = event["user"], event["request"]
    assert user["id"] == "42"
    sent = {
        "e-mail": user.get("email") == "ann@example.com",
        "user IP": user.get("ip_address") == "203.0.113.9",
        "cookies": request.get("cookies") == {"theme": "dark"},
        "forwarded-for header": request["headers"].get("X-Forwarded-For") == "203.0.113.9",
        "remote address": request.get("env", {}).get("REMOTE_ADDR") == "203.0.113.9",
    }
    assert sent == dict.fromkeys(sent, send_default_pii)
    # The Cookie header is secret-named: filtered even with send_default_pii.
    assert "theme=dark" not in json.dumps(event)


async def test_the_dsn_secret_never_reaches_logs_exceptions_or_the_outbox(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "topsecretkey123"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: connections are refused
    dsn = f"http://public:{secret}@127.0.0.1:{port}/1"
    messages: list[str] = []
    with caplog.at_level(logging.DEBUG, logger="errlink"):
        client = AsyncClient(dsn, debug=True, outbox=tmp_path / "o.sqlite3", http_timeout=1.0)
        messages += [repr(client.options), repr(client.options.dsn), str(client.options.dsn)]
        await client.capture_message("hello")
        await wait_until_async(lambda: client.stats.in_outbox == 1, 20)
        await client.aclose(2)
        transport = HttpTransport(Dsn.parse(dsn), http_timeout=1.0)
        try:
            await transport.send(_envelope())
        except TransportError as exc:
            messages.append(str(exc))
        finally:
            await transport.aclose()
        for bad in (f"ftp://public:{secret}@host/1", f"http://public:{secret}@host/"):
            with pytest.raises(ValueError) as raised:
                AsyncClient(bad)
            messages.append(str(raised.value))
    messages += [record.getMessage() for record in caplog.records]
    messages += [str(record.exc_info[1]) for record in caplog.records if record.exc_info]
    # The log really covered the failure, and the errors were really raised.
    assert any("send failed" in m for m in messages)
    assert sum("invalid dsn" in m for m in messages) == 2
    assert any("sending to 127.0.0.1" in m for m in messages)
    assert not [m for m in messages if secret in m]
    assert not files_containing(tmp_path, secret.encode())


def files_containing(directory: Path, needle: bytes) -> list[Path]:
    return [path for path in directory.iterdir() if needle in path.read_bytes()]


def _envelope() -> Any:
    from errlink._wire.envelope import Envelope

    envelope = Envelope({"event_id": "0" * 32})
    envelope.add_json("event", {"event_id": "0" * 32})
    return envelope


# -- TLS ------------------------------------------------------------------------------------------


def make_certificate(directory: Path, name: str, san: str) -> tuple[Path, Path]:
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", f"/CN={name}",
            "-addext", f"subjectAltName={san}",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


class TlsEndpoint:
    """An HTTPS envelope endpoint on 127.0.0.1 that answers 200 and counts what it got."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.received = 0
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._context.load_cert_chain(cert, key)
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> TlsEndpoint:
        app = web.Application()
        app.router.add_post("/api/{project}/envelope/", self._receive)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self._context)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _receive(self, request: web.Request) -> web.Response:
        await request.read()
        self.received += 1
        return web.json_response({})

    def dsn(self) -> str:
        return f"https://key@127.0.0.1:{self.port}/1"


@pytest.fixture
async def tls_endpoint(tmp_path: Path) -> AsyncIterator[tuple[TlsEndpoint, Path]]:
    cert, key = make_certificate(tmp_path, "loopback", "IP:127.0.0.1")
    endpoint = await TlsEndpoint(cert, key).start()
    yield endpoint, cert
    await endpoint.stop()


async def _deliver_one(dsn: str, **options: Any) -> AsyncClient:
    client = AsyncClient(dsn, http_timeout=5.0, **options)
    await client.capture_message("over TLS")
    await client.aclose(3)
    return client


async def test_tls_certificates_are_verified_by_default(
    tls_endpoint: tuple[TlsEndpoint, Path],
) -> None:
    endpoint, cert = tls_endpoint
    refused = await _deliver_one(endpoint.dsn())
    assert refused.stats.sent == 0
    assert endpoint.received == 0
    trusted = await _deliver_one(endpoint.dsn(), ca_certs=str(cert))
    assert trusted.stats.sent == 1
    assert endpoint.received == 1


async def test_tls_host_names_are_verified(tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path, "elsewhere", "DNS:elsewhere.example")
    endpoint = await TlsEndpoint(cert, key).start()
    try:
        client = await _deliver_one(endpoint.dsn(), ca_certs=str(cert))
        assert client.stats.sent == 0  # a trusted certificate, but for another name
        assert endpoint.received == 0
    finally:
        await endpoint.stop()


async def test_only_an_explicit_false_turns_verification_off_and_it_warns(
    tls_endpoint: tuple[TlsEndpoint, Path], caplog: pytest.LogCaptureFixture
) -> None:
    endpoint, _cert = tls_endpoint
    for look_alike in ("false", "0", 0, None, "", "no"):
        with pytest.raises(TypeError, match="verify_tls"):
            AsyncClient(endpoint.dsn(), verify_tls=look_alike)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="errlink"):
        client = await _deliver_one(endpoint.dsn(), verify_tls=False)
    assert client.stats.sent == 1
    warnings = [r.getMessage() for r in caplog.records if "verify_tls=False" in r.getMessage()]
    assert warnings
    assert f"127.0.0.1:{endpoint.port}" in warnings[0]


def test_no_environment_variable_turns_verification_off(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ERRLINK_VERIFY_TLS", "SENTRY_VERIFY_TLS", "ERRLINK_CA_CERTS"):
        monkeypatch.setenv(name, "false")
    assert errlink.Client("https://key@example.com/1").options.verify_tls is True


# -- the collector -------------------------------------------------------------------------------


def _outward_address() -> str:
    """This host's address on its default route (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))
        address: str = probe.getsockname()[0]
    return address


async def test_the_collector_listens_on_loopback_only_by_default(tmp_path: Path) -> None:
    async with Collector(db_path=tmp_path / "c.db") as collector:
        assert collector.host == "127.0.0.1"
        outward = _outward_address()
        assert not outward.startswith("127.")
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((outward, collector.port), timeout=5).close()
        socket.create_connection(("127.0.0.1", collector.port), timeout=5).close()


def _auth(key: str) -> dict[str, str]:
    return {
        "X-Sentry-Auth": f"Sentry sentry_version=7, sentry_key={key}",
        "Content-Type": "application/x-sentry-envelope",
    }


def _envelope_body(event_id: str = "a" * 32, dsn: str | None = None) -> bytes:
    header: dict[str, Any] = {"event_id": event_id}
    if dsn is not None:
        header["dsn"] = dsn
    payload = json.dumps({"event_id": event_id, "message": "hi"}).encode()
    item = json.dumps({"type": "event", "length": len(payload)}).encode()
    return json.dumps(header).encode() + b"\n" + item + b"\n" + payload + b"\n"


async def test_the_collector_refuses_a_wrong_key(collector: Collector) -> None:
    url = f"{collector.url}/api/1/envelope/"
    wrong_dsn = f"http://intruder@127.0.0.1:{collector.port}/1"
    async with aiohttp.ClientSession() as session:
        async with session.post(url, data=_envelope_body(), headers=_auth("intruder")) as answer:
            assert answer.status == 401
        headers = {"Content-Type": "application/x-sentry-envelope"}
        body = _envelope_body(dsn=wrong_dsn)
        async with session.post(url, data=body, headers=headers) as answer:
            assert answer.status == 401
        async with session.post(url, data=_envelope_body(), headers=_auth("errlink")) as answer:
            assert answer.status == 200
    assert [e["event_id"] for e in collector.events()] == ["a" * 32]


async def test_the_collector_caps_bodies_before_and_after_decompression(tmp_path: Path) -> None:
    limit = 1024 * 1024
    async with Collector(
        db_path=tmp_path / "c.db",
        public_key="errlink",
        max_body_bytes=limit,
        max_decompressed_bytes=limit,
    ) as collector:
        url = f"{collector.url}/api/1/envelope/"
        padding = b" " * (limit + 1)
        bomb = gzip.compress(_envelope_body() + b"\n" * (200 * limit), compresslevel=9)
        assert len(bomb) < limit // 4  # small on the wire, 200 MB once inflated
        async with aiohttp.ClientSession(auto_decompress=False) as session:
            async with session.post(
                url, data=io.BytesIO(_envelope_body() + padding), headers=_auth("errlink")
            ) as answer:
                assert answer.status == 413
            headers = {**_auth("errlink"), "Content-Encoding": "gzip"}
            async with session.post(url, data=io.BytesIO(bomb), headers=headers) as answer:
                assert answer.status == 413
            async with session.post(url, data=_envelope_body(), headers=_auth("errlink")) as ok:
                assert ok.status == 200  # and it still serves
        assert collector.event_count() == 1
