"""What the Flask and Django (WSGI) tests share: the secrets they send, and requests no HTTP client
library would send (invalid UTF-8, huge and binary bodies), written byte for byte to a real
server, with what errlink must make of them."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integrations._raw_http import raw_request, serve_wsgi

FLUSH_TIMEOUT = 30.0
# A card-free secret long enough to be noticed if it leaked.
PASSWORD = "hunter2-correct-horse"
AUTHORIZATION = "Bearer tok-5f2b9c"

RawRequest = tuple[str, bytes, bytes, list[bytes]]


def awkward_requests(
    *, slash: bytes, order_form: bytes, session_cookie: bytes, failing_get: bytes
) -> list[RawRequest]:
    """Sent to an app with /hello (200), /orders/<id> (fails on a form post) and /raw (fails),
    `slash` ending each path: a page; an order form with a password, credentials and cookies
    (`session_cookie` the framework's session cookie); a huge text body; a binary body;
    `failing_get` with an invalid query and header; a query and target that are not UTF-8."""
    return [
        ("GET", b"/hello" + slash, b"", []),
        (
            "POST",
            b"/orders/9" + slash,
            order_form + b"&password=" + PASSWORD.encode(),
            [
                b"Content-Type: application/x-www-form-urlencoded",
                b"Authorization: " + AUTHORIZATION.encode(),
                b"Cookie: " + session_cookie + b"=s3cr3t-session; theme=dark",
            ],
        ),
        ("POST", b"/raw" + slash, b"y" * 200_000, [b"Content-Type: text/plain"]),
        (
            "POST",
            b"/raw" + slash,
            b"\x89PNG\r\n\x1a\n\x00\x00" + bytes(range(256)),
            [b"Content-Type: image/png"],
        ),
        ("GET", failing_get + b"?q=%ff", b"", [b"X-Raw: \xff\xfe caf\xc3\xa9"]),
        ("POST", b"/raw" + slash + b"?q=%ff%fe&raw=\xff\xfe", b"", [b"X-Raw: \xff\xfe"]),
    ]


def send_over_a_real_server(
    app: Any, requests: list[RawRequest]
) -> tuple[int, list[tuple[int, bytes]]]:
    """`requests` sent to `app` served on 127.0.0.1, stopped after: (its port, the responses)."""
    server, thread = serve_wsgi(app)
    try:
        return server.port, [
            raw_request(server.port, *request, timeout=FLUSH_TIMEOUT) for request in requests
        ]
    finally:
        server.shutdown()
        thread.join(FLUSH_TIMEOUT)
        server.server_close()


def _by_url_and_body(event: dict[str, Any]) -> tuple[str, str]:
    request = event["request"]  # events are sent concurrently: arrival order varies
    return (request["url"].rstrip("/").rsplit("/", 1)[-1], str(request.get("data", "")))


def assert_awkward_requests_handled(
    without_errlink: list[tuple[int, bytes]],
    with_errlink: list[tuple[int, bytes]],
    statuses: list[int],
    events: list[dict[str, Any]],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The responses are the same with errlink as without, with `statuses`; of the four events
    (the order, the bad query, the binary body and the huge body), the bodies were left out and
    the invalid UTF-8 replaced. Returns the order's and the bad query's events."""
    assert with_errlink == without_errlink
    assert [status for status, _ in with_errlink] == statuses

    order, bad_query, binary, huge = sorted(events, key=_by_url_and_body)
    assert order["exception"]["values"][-1]["stacktrace"]["frames"][-1]["in_app"] is True
    assert huge["request"]["data"] == (
        "[request body of 200000 bytes left out: over max_request_body_size]"
    )
    assert binary["request"]["data"] == "[binary body of 266 bytes left out]"
    assert bad_query["request"]["query_string"].startswith("q=%ff%fe&raw=")
    assert bad_query["request"]["headers"]["X-Raw"] == "\ufffd\ufffd"
    return order, bad_query


def assert_order_error_reported_without_pii(
    event: dict[str, Any], mechanism: str
) -> dict[str, Any]:
    """The event of the test client's POST /orders/7?ref=mail&token=abc (quantity 5, a password,
    `AUTHORIZATION`, X-Request-Id r-1, a session cookie), whose view raised ValueError("too many:
    5"): reported by `mechanism`, without personal data. Returns the view's frame."""
    exc = event["exception"]["values"][-1]
    assert (exc["type"], exc["value"]) == ("ValueError", "too many: 5")
    assert (exc["mechanism"]["type"], exc["mechanism"]["handled"]) == (mechanism, False)
    view: dict[str, Any] = exc["stacktrace"]["frames"][-1]
    assert view["in_app"] is True
    assert view["vars"]["quantity"] == 5
    assert any(not frame["in_app"] for frame in exc["stacktrace"]["frames"])  # the framework's

    req = event["request"]
    assert req["method"] == "POST"
    assert req["query_string"] == "ref=mail&token=%5BFiltered%5D"
    assert req["headers"]["X-Request-Id"] == "r-1"
    # Without send_default_pii: no credentials, cookies or client address at all.
    assert "Authorization" not in req["headers"]
    assert "Cookie" not in req["headers"]
    assert "cookies" not in req
    assert "REMOTE_ADDR" not in req.get("env", {})
    assert "user" not in event
    return view


def record_calls(monkeypatch: pytest.MonkeyPatch, owner: object, name: str) -> list[object]:
    """`owner.name` wrapped for the test: the list fills with the first argument of each call."""
    calls: list[object] = []
    original = getattr(owner, name)

    def recording(first: object, *args: Any) -> Any:
        calls.append(first)
        return original(first, *args)

    monkeypatch.setattr(owner, name, recording)
    return calls
