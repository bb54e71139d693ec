"""The `request` dict integrations attach, for the awkward inputs a real server can send."""

from __future__ import annotations

from errlink.integrations._request import body_data, header_dict, request_interface


def test_json_and_form_bodies_are_parsed() -> None:
    assert body_data(
        b'{"a": 1}', content_type="application/json", content_length=8, max_bytes=None
    ) == {"a": 1}
    assert body_data(
        b"user=bob&password=x",
        content_type="application/x-www-form-urlencoded; charset=utf-8",
        content_length=None,
        max_bytes=10_000,
    ) == {"user": "bob", "password": "x"}


def test_body_over_the_limit_is_described_not_included() -> None:
    huge = b"x" * 50_000
    assert body_data(huge, content_type="text/plain", content_length=None, max_bytes=10_000) == (
        "[request body of 50000 bytes left out: over max_request_body_size]"
    )
    assert body_data(huge, content_type="text/plain", content_length=None, max_bytes=0) is None
    assert (
        body_data(huge, content_type="text/plain", content_length=None, max_bytes=None)
        == huge.decode()
    )


def test_binary_and_multipart_bodies_are_described() -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))
    assert body_data(png, content_type="image/png", content_length=None, max_bytes=None) == (
        f"[binary body of {len(png)} bytes left out]"
    )
    assert (
        body_data(
            b"--b\r\n...",
            content_type="multipart/form-data; boundary=b",
            content_length=9,
            max_bytes=None,
        )
        == "[multipart body of 9 bytes left out]"
    )


def test_invalid_json_falls_back_to_text() -> None:
    assert (
        body_data(b"{nope", content_type="application/json", content_length=None, max_bytes=None)
        == "{nope"
    )


def test_invalid_utf8_and_non_text_headers_become_text() -> None:
    request = request_interface(
        url="http://h/p",
        method="post",
        query_string=b"q=\xff\xfe&x=1",
        headers=[(b"x-raw", b"\xff bytes"), ("X-Num", 5), ("Accept", "a"), ("Accept", "b")],
        cookies={"sessionid": b"abc"},
        remote_addr="10.1.2.3",
    )
    assert request["method"] == "POST"
    assert request["query_string"] == "q=\ufffd\ufffd&x=1"
    assert request["headers"] == {"X-Raw": "\ufffd bytes", "X-Num": "5", "Accept": "a, b"}
    assert request["cookies"] == {"sessionid": "abc"}
    assert request["env"] == {"REMOTE_ADDR": "10.1.2.3"}


def test_header_dict_accepts_mappings() -> None:
    assert header_dict({"Content-Type": "text/html"}) == {"Content-Type": "text/html"}
