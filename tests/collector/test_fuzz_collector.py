"""Fuzzing the collector over real HTTP: malformed input gets a 4xx, never a 5xx or a hang.

One collector serves the whole module; every example is a real request over a socket with a
timeout, so a hang fails the test. Bodies are random bytes, damaged envelopes, compressed
garbage and valid envelopes; headers, paths and query strings are mixed from valid and random
parts. A valid envelope with the right key must still be accepted afterwards.
"""

from __future__ import annotations

import gzip
import http.client
import json
import zlib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from errlink.collector import CollectorThread

REQUEST_TIMEOUT = 20.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorThread]:
    path: Path = tmp_path_factory.mktemp("fuzz-collector") / "c.db"
    with CollectorThread(db_path=path, public_key="errlink", max_body_bytes=64 * 1024) as started:
        yield started


def envelope(event: object, key_in_dsn: str | None = None) -> bytes:
    header: dict[str, object] = {"event_id": "b" * 32}
    if key_in_dsn is not None:
        header["dsn"] = f"http://{key_in_dsn}@127.0.0.1/1"
    payload = json.dumps(event).encode()
    item = json.dumps({"type": "event", "length": len(payload)}).encode()
    return json.dumps(header).encode() + b"\n" + item + b"\n" + payload + b"\n"


_header_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
_keys = st.sampled_from(["errlink", "wrong", ""]) | _header_text
_bodies = st.one_of(
    st.binary(max_size=300),
    st.builds(envelope, st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5))),
    st.builds(lambda b: gzip.compress(b), st.binary(max_size=200)),
    st.builds(lambda b: zlib.compress(b), st.binary(max_size=200)),
    st.builds(
        lambda b: gzip.compress(envelope({"message": "x"}))[: len(b)], st.binary(max_size=60)
    ),
    st.just(b"\n" * 100),
    st.just(b"[" * 5000),
    st.just(gzip.compress(b"\x00" * 5_000_000)),  # inflates past the limit
    st.just(b"x" * (64 * 1024 + 1)),  # over the raw body limit
)
_paths = st.sampled_from(
    [
        "/api/1/envelope/",
        "/api/1/store/",
        "/api/2/envelope/",
        "/api/0/events/",
        "/api/0/stats/",
        "/api/0/events/" + "b" * 32 + "/",
        "/",
    ]
) | st.builds(lambda t: "/" + quote(t), st.text(max_size=30))
_queries = st.dictionaries(
    st.sampled_from(["sentry_key", "limit", "offset", "sentry_version", "x"]),
    _header_text,
    max_size=3,
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    method=st.sampled_from(["POST", "GET", "PUT", "DELETE", "OPTIONS", "HEAD"]),
    path=_paths,
    query=_queries,
    key=_keys,
    encoding=st.sampled_from(["", "gzip", "deflate", "identity", "br", "gzip, gzip"])
    | _header_text,
    content_type=st.sampled_from(["application/x-sentry-envelope", "application/json", ""]),
    body=_bodies,
)
def test_any_request_gets_an_answer_below_500(
    server: CollectorThread,
    method: str,
    path: str,
    query: dict[str, str],
    key: str,
    encoding: str,
    content_type: str,
    body: bytes,
) -> None:
    headers = {"X-Sentry-Auth": f"Sentry sentry_version=7, sentry_key={key}"}
    if encoding:
        headers["Content-Encoding"] = encoding
    if content_type:
        headers["Content-Type"] = content_type
    target = path + ("?" + urlencode(query) if query else "")
    status = request(server, method, target, headers, body)
    assert status < 500, (method, target, headers, body[:80])
    assert status != 200 or method in ("POST", "GET", "HEAD", "OPTIONS")


def request(
    server: CollectorThread, method: str, target: str, headers: dict[str, str], body: bytes
) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=REQUEST_TIMEOUT)
    try:
        connection.request(method, target, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    except (ConnectionResetError, BrokenPipeError):
        # The server may close early on an oversized body; that is an answer, not a crash, as
        # long as it keeps serving (checked by the test below and by every later example).
        return 413
    finally:
        connection.close()


def test_a_valid_envelope_is_still_accepted_after_the_fuzzing(server: CollectorThread) -> None:
    headers = {
        "X-Sentry-Auth": "Sentry sentry_version=7, sentry_key=errlink",
        "Content-Type": "application/x-sentry-envelope",
    }
    body = envelope({"event_id": "c" * 32, "message": "still fine"})
    assert request(server, "POST", "/api/1/envelope/", headers, body) == 200
    assert request(server, "POST", "/api/1/envelope/", {"Content-Encoding": "gzip", **headers},
                   gzip.compress(body)) == 200  # fmt: skip
    assert any(event.get("message") == "still fine" for event in server.events())
