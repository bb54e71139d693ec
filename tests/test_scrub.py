"""Scrubber: secrets by key name, secrets inside text, and the send_default_pii policy.

The text rules are checked here one by one; `test_relay_scrub_oracle.py` checks them all
together against Relay's own default scrubbing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from errlink._capture.scrub import Scrubber
from errlink._capture.sensitive import DEFAULT_DENYLIST, FILTERED
from errlink._capture.serialize import Meta, Serializer

# -- key names ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "PASSWORD",
        "db_password",
        "userPassword",
        "passwd",
        "pwd",
        "passphrase",
        "secret",
        "client_secret",
        "token",
        "refresh_token",
        "access_token",
        "X-Auth-Token",
        "api_key",
        "apikey",
        "X-Api-Key",
        "API KEY",
        "api.key",
        "access_key",
        "aws_access_key_id",
        "private_key",
        "auth",
        "Authorization",
        "Proxy-Authorization",
        "credentials",
        "cookie",
        "Set-Cookie",
        "session",
        "sessionid",
        "session_id",
        "csrftoken",
        "X-CSRF-Token",
        "xsrf",
        "jwt",
        "bearer",
        b"password",
        # what Relay's default scrubbing filters by name (any name holding "auth" or "token")
        "author",
        "authority",
        "mysql_pwd",
        "OTP",
        "two-factor",
        "my_tokens",
        "phpsessid",
        "su",
        "\u017fecret",  # with a long s, still `secret` to a case-insensitive match
    ],
)
def test_sensitive_keys(key: object) -> None:
    assert Scrubber().is_sensitive_key(key)


@pytest.mark.parametrize(
    "key", ["username", "user", "name", "id", "host", "cookies", "spinner", "otp_length", 1, None]
)
def test_harmless_keys(key: object) -> None:
    assert not Scrubber().is_sensitive_key(key)


def test_extra_keys_match_whole_names_in_any_spelling() -> None:
    scrubber = Scrubber(extra_keys=["ssn_number", "Phone"])
    assert scrubber.is_sensitive_key("SSN-Number")
    assert scrubber.is_sensitive_key("phone")
    assert not scrubber.is_sensitive_key("phone_model")


def test_default_denylist_is_exposed() -> None:
    assert {"password", "token", "auth", "cookie"} <= DEFAULT_DENYLIST


# -- card numbers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4111111111111111", FILTERED),
        ("card 4111 1111 1111 1111 ok", f"card {FILTERED} ok"),
        ("card 4111-1111-1111-1111.", f"card {FILTERED}."),
        ("amex 378282246310005", f"amex {FILTERED}"),
        ("mc=5555555555554444&visa=4012888888881881", f"mc={FILTERED}&visa={FILTERED}"),
        ("4111 1111 1111 1111 2024", f"{FILTERED} 2024"),
        ("card 4111\t1111\n1111 1111.", f"card {FILTERED}."),
    ],
)
def test_luhn_valid_card_numbers_are_filtered(text: str, expected: str) -> None:
    assert Scrubber().scrub_text(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Visa, Mastercard, Discover (16 digits) and Amex (15) shapes: no Luhn check, as Relay
        ("order 4111111111111112", f"order {FILTERED}"),
        ("pi 0.4111111111111112", f"pi 0.{FILTERED}"),
        ("id 5212-3456-7890-1234 ok", f"id {FILTERED} ok"),
        ("6011 0000 0000 0001", FILTERED),
        ("3712 345678 90123", FILTERED),
        ("4111 1 2 3 4 5 6 7 8 9 0 1 2", FILTERED),
    ],
)
def test_card_shaped_numbers_are_filtered_without_the_luhn_check(text: str, expected: str) -> None:
    assert Scrubber().scrub_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "order 2111111111111112",  # fails the Luhn check, and no network's shape
        "ts 1700000000000 ms",  # a millisecond timestamp
        "id 0000000000000000",  # zero padded
        "big 1234567890123456789012345",  # a long digit run is not a card
        "pi 0.2111111111111111",  # decimals are not cards
        "ref a4111111111111112",  # glued to a letter: no card-shaped number
        "ids 41111111111111120",  # 17 digits
        "on 2024-01-15 at 10:30",
        "short 4111",
        "",
    ],
)
def test_other_digit_runs_are_kept(text: str) -> None:
    assert Scrubber().scrub_text(text) == text


def test_card_spans_are_positions_in_the_result() -> None:
    text, spans = Scrubber().scrub_text_spans("a 4111111111111111 b 5555 5555 5555 4444")
    assert text == f"a {FILTERED} b {FILTERED}"
    assert spans == [(2, 12), (15, 25)]


def test_scrub_text_leaves_non_text_alone() -> None:
    assert Scrubber().scrub_text(None) is None  # type: ignore[arg-type]


# -- secrets inside text -------------------------------------------------------------------------

PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA0Z3VS5JJcds3xf\n-----END RSA PRIVATE KEY-----"
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # PEM keys: the body only; a key cut off before its END line, to the end
        (f"key: {PEM} ok", f"key: {PEM.split(chr(10))[0]}\n{FILTERED}\n{PEM.split(chr(10))[2]} ok"),
        (
            "-----BEGIN PUBLIC KEY-----abc-----END PUBLIC KEY-----",
            f"-----BEGIN PUBLIC KEY-----{FILTERED}-----END PUBLIC KEY-----",
        ),
        ("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADAN", f"-----BEGIN PRIVATE KEY-----\n{FILTERED}"),
        # URL credentials: the password only
        ("db postgres://app:hunter2@db:5432/shop", f"db postgres://app:{FILTERED}@db:5432/shop"),
        ("https://bob@example.com/x", "https://bob@example.com/x"),  # a user, not an e-mail
        ("mongodb+srv://u:p%40ss@c.net/db", f"mongodb+srv://u:{FILTERED}@c.net/db"),
        # authorization values
        ("sent Bearer abc.def-ghi to", f"sent {FILTERED} to"),
        ("Basic dXNlcjpwYXNz", f"Basic {FILTERED}"),
        ("basic information", "basic information"),  # no base64 of user:password
        ("Authorization: Token abc123 rest", f"Authorization: {FILTERED} rest"),
        # numbers
        ("ssn 123-45-6789.", f"ssn {FILTERED}."),
        ("phone 1234-56-7890", "phone 1234-56-7890"),
        ("iban DE89370400440532013000 ok", f"iban {FILTERED} ok"),
        ("sku XY12345678901234", "sku XY12345678901234"),  # no IBAN country
        # sensitive pairs: the value only
        (
            "Config(db_password='hunter2', host='db')",
            f"Config(db_password='{FILTERED}', host='db')",
        ),
        ("{'api_key': 'k-1', 'n': 2}", f"{{'api_key': '{FILTERED}', 'n': 2}}"),
        ('{"password": "x", "user": "bob"}', f'{{"password": "{FILTERED}", "user": "bob"}}'),
        ("secret_key=abc&x=1", f"secret_key={FILTERED}&x=1"),
        ("session_id: abc", f"session_id: {FILTERED}"),
        ("password='[Filtered]'", "password='[Filtered]'"),
        # addresses, without send_default_pii
        ("from 203.0.113.9:443", "from [ip]:443"),
        ("host 2001:db8::1 down", "host [ip] down"),
        ("mail ann@example.com now", "mail [email] now"),
        (
            "Mozilla/5.0 Chrome/120.0.0.0 Safari/537.36",
            "Mozilla/5.0 Chrome/120.0.0.0 Safari/537.36",
        ),
    ],
)
def test_secrets_inside_text(text: str, expected: str) -> None:
    assert Scrubber().scrub_text(text) == expected


def test_addresses_are_kept_with_send_default_pii_but_not_in_messages() -> None:
    scrubber = Scrubber(send_default_pii=True)
    text = "ann@example.com from 203.0.113.9"
    assert scrubber.scrub_text(text) == text
    assert scrubber.scrub_value(text) == text
    # Relay replaces e-mail addresses in a log entry's message whatever the project's settings.
    assert scrubber.scrub_message(text) == "[email] from 203.0.113.9"
    assert Scrubber().scrub_message(text) == "[email] from [ip]"


@pytest.mark.parametrize(
    ("text", "as_text"),
    [
        ("wrong password", "wrong password"),
        ("OAuth2 callback", "OAuth2 callback"),
        ("otp", "otp"),
        ("Two_Factor", "Two_Factor"),
        ("the author", "the author"),
        ("max_tokens=100", f"max_tokens={FILTERED}"),  # a sensitive name: its value, as text
    ],
)
def test_a_data_value_that_names_a_secret_is_filtered_whole(text: str, as_text: str) -> None:
    assert Scrubber().scrub_value(text) == FILTERED
    assert Scrubber().scrub_text(text) == as_text  # as text (a message, a URL), it is kept


def test_a_placeholder_that_joins_a_name_to_its_separator_is_caught() -> None:
    # `token<card>=`: no `token...=` until the card (with its spaces) is replaced.
    assert Scrubber().scrub_value("token4111 1111 1111 1111=") == FILTERED


def test_text_spans_are_positions_in_the_result() -> None:
    text, spans = Scrubber().scrub_text_spans("a 10.0.0.1 b ann@example.com c 123-45-6789")
    assert text == f"a [ip] b [email] c {FILTERED}"
    assert [text[start:end] for start, end in spans] == ["[ip]", "[email]", FILTERED]


def test_request_texts_are_moved_out_of_the_data() -> None:
    scrubber = Scrubber()
    request = scrubber.scrub_request(
        {
            "url": "https://shop.example/oauth/callback?code=1",
            "query_string": "code=1",
            "headers": {"User-Agent": "Chrome/120.0.0.0", "X-Auth-Method": "oauth"},
        }
    )
    assert scrubber.request_texts(request) == (
        {"url": "https://shop.example/oauth/callback?code=1", "query_string": "code=1"},
        {"User-Agent": "Chrome/120.0.0.0"},
    )
    assert request == {"headers": {"X-Auth-Method": FILTERED}}


def test_the_end_of_a_cut_value_is_scrubbed_again() -> None:
    # `1.2.3.456` is no address, but cut to `1.2.3.4` it would be one.
    meta: Meta = {}
    text = "x" * 13 + " 1.2.3.456 and more"
    result = Serializer(max_value_length=24, scrubber=Scrubber()).normalize(text, meta)
    assert result == "x" * 13 + " [ip]..."
    assert meta == {
        "": {"len": len(text), "rem": [["!config", "s", 14, 18], ["!limit", "s", 18, 21]]}
    }


# -- query strings --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("a=1&password=x&b=2", "a=1&password=%5BFiltered%5D&b=2"),
        ("API_KEY=abc", "API_KEY=%5BFiltered%5D"),
        ("pass%77ord=x&q=search+term", "pass%77ord=%5BFiltered%5D&q=search+term"),
        ("cc=4111+1111+1111+1111&n=2", "cc=%5BFiltered%5D&n=2"),
        ("&&flag&=x&a==b&token=", "&&flag&=x&a==b&token=%5BFiltered%5D"),
        ("", ""),
    ],
)
def test_query_string(query: str, expected: str) -> None:
    assert Scrubber().scrub_query_string(query) == expected


def test_query_string_odd_types() -> None:
    assert Scrubber().scrub_query_string(b"token=1") == "token=%5BFiltered%5D"  # type: ignore[arg-type]
    assert Scrubber().scrub_query_string(None) == ""  # type: ignore[arg-type]


# -- headers and cookies --------------------------------------------------------------------------

HEADERS = {
    "User-Agent": "curl/8",
    "Cookie": "sessionid=abc; theme=dark",
    "Set-Cookie": "csrftoken=xyz; Path=/; HttpOnly",
    "Authorization": "Bearer abc.def",
    "Proxy-Authorization": "Basic Zm9v",
    "X-Forwarded-For": "203.0.113.9",
    "X-Real-Ip": "203.0.113.9",
    "Forwarded": "for=203.0.113.9",
    "X-Api-Key": "k-123",
    "X-Note": "card 4111111111111111",
}


def test_headers_without_pii() -> None:
    assert Scrubber().scrub_headers(HEADERS) == {
        "User-Agent": "curl/8",
        "X-Api-Key": FILTERED,
        "X-Note": f"card {FILTERED}",
    }


def test_headers_with_pii() -> None:
    assert Scrubber(send_default_pii=True).scrub_headers(HEADERS) == {
        "User-Agent": "curl/8",
        "Cookie": f"sessionid={FILTERED}; theme=dark",
        "Set-Cookie": f"csrftoken={FILTERED}; Path=/; HttpOnly",
        "Authorization": FILTERED,
        "Proxy-Authorization": FILTERED,
        "X-Forwarded-For": "203.0.113.9",
        "X-Real-Ip": "203.0.113.9",
        "Forwarded": "for=203.0.113.9",
        "X-Api-Key": FILTERED,
        "X-Note": f"card {FILTERED}",
    }


def test_headers_as_pairs_with_odd_values() -> None:
    pairs: list[Any] = [
        ("Accept", "a/b"),
        ("Accept", "c/d"),
        (b"X-Raw", b"bytes"),
        ("X-None", None),
        ("broken",),
        "junk",
        ("cookie", "a=1"),
    ]
    assert Scrubber().scrub_headers(pairs) == {
        "Accept": "a/b, c/d",
        "X-Raw": "bytes",
        "X-None": "",
    }
    assert Scrubber().scrub_headers(None) == {}  # type: ignore[arg-type]
    assert Scrubber().scrub_headers(42) == {}  # type: ignore[arg-type]


def test_cookies() -> None:
    cookies = {"sessionid": "abc", "theme": "dark", "csrftoken": "x"}
    assert Scrubber().scrub_cookies(cookies) == {}
    assert Scrubber().scrub_cookies("sessionid=abc") == ""
    assert Scrubber(send_default_pii=True).scrub_cookies(cookies) == {
        "sessionid": FILTERED,
        "theme": "dark",
        "csrftoken": FILTERED,
    }
    assert Scrubber(send_default_pii=True).scrub_cookies("sessionid=abc; theme=dark") == (
        f"sessionid={FILTERED}; theme=dark"
    )
    assert Scrubber(send_default_pii=True).scrub_cookies(None) == {}  # type: ignore[arg-type]


# -- request --------------------------------------------------------------------------------------


def _request(**overrides: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "url": "https://bob:hunter2@example.com/pay?token=t1&page=2",
        "method": "POST",
        "query_string": "token=t1&page=2",
        "headers": {"Cookie": "sessionid=s", "Content-Type": "application/json"},
        "cookies": {"sessionid": "s", "theme": "dark"},
        "data": {"user": {"name": "bob", "password": "pw"}, "items": [{"api_key": "k"}]},
        "env": {"REMOTE_ADDR": "203.0.113.9", "SERVER_NAME": "web1"},
    }
    request.update(overrides)
    return request


def test_request_without_pii() -> None:
    original = _request()
    scrubbed = Scrubber().scrub_request(original)
    assert scrubbed == {
        "url": f"https://bob:{FILTERED}@example.com/pay?token=%5BFiltered%5D&page=2",
        "method": "POST",
        "query_string": "token=%5BFiltered%5D&page=2",
        "headers": {"Content-Type": "application/json"},
        "data": {"user": {"name": "bob", "password": FILTERED}, "items": [{"api_key": FILTERED}]},
        "env": {"SERVER_NAME": "web1"},
    }
    assert original == _request()  # the caller's dict is left alone


def test_request_with_pii() -> None:
    scrubbed = Scrubber(send_default_pii=True).scrub_request(_request())
    assert scrubbed["cookies"] == {"sessionid": FILTERED, "theme": "dark"}
    assert scrubbed["headers"] == {
        "Cookie": f"sessionid={FILTERED}",
        "Content-Type": "application/json",
    }
    assert scrubbed["env"] == {"REMOTE_ADDR": "203.0.113.9", "SERVER_NAME": "web1"}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("user=bob&password=pw", "user=bob&password=%5BFiltered%5D"),
        (
            '{"user": "bob", "secret": {"a": 1}, "list": [{"token": "t"}]}',
            json.dumps({"user": "bob", "secret": FILTERED, "list": [{"token": FILTERED}]}),
        ),
        (b'{"password": "pw"}', json.dumps({"password": FILTERED})),
        ('{"password": broken json', FILTERED),  # names a password: a value Relay filters
        ("free text with 4111 1111 1111 1111", f"free text with {FILTERED}"),
        ("x" * 200_000, FILTERED),  # too big to check cheaply: withheld
        (12, 12),
    ],
)
def test_request_body_forms(data: object, expected: object) -> None:
    assert Scrubber().scrub_request({"data": data}) == {"data": expected}


def test_request_odd_input() -> None:
    scrubber = Scrubber()
    assert scrubber.scrub_request(None) == {}  # type: ignore[arg-type]
    assert scrubber.scrub_request({"headers": 5, "data": None, "url": b"http://h/?pwd=1"}) == {
        "headers": {},
        "data": None,
        "url": "http://h/?pwd=%5BFiltered%5D",
    }
    assert scrubber.scrub_request({"query_string": [("token", "t"), ("a", "1")]}) == {
        "query_string": [["token", FILTERED], ["a", "1"]]
    }


# -- user and breadcrumb data ---------------------------------------------------------------------

USER = {"id": "42", "username": "bob", "email": "bob@example.com", "ip_address": "203.0.113.9"}


def test_user_without_pii() -> None:
    assert Scrubber().scrub_user({**USER, "password": "x"}) == {
        "id": "42",
        "username": "bob",
        "password": FILTERED,
    }


def test_user_with_pii() -> None:
    assert Scrubber(send_default_pii=True).scrub_user(USER) == USER
    assert Scrubber().scrub_user(None) == {}  # type: ignore[arg-type]


def test_breadcrumb_data() -> None:
    data = {
        "url": "https://api.example.com/v1?session=abc&x=1",
        "method": "GET",
        "status_code": 200,
        "headers": {"Authorization": "Bearer t", "Accept": "*/*"},
        "note": "charged 5555555555554444",
        "nested": [{"refresh_token": "r"}, ("a", "b")],
    }
    assert Scrubber().scrub_mapping(data) == {
        "url": "https://api.example.com/v1?session=%5BFiltered%5D&x=1",
        "method": "GET",
        "status_code": 200,
        "headers": {"Authorization": FILTERED, "Accept": "*/*"},
        "note": f"charged {FILTERED}",
        "nested": [{"refresh_token": FILTERED}, ["a", "b"]],
    }
    assert Scrubber().scrub_mapping(None) == {}  # type: ignore[arg-type]
    # A URL naming an API key is a data value Relay filters whole, scrubbed query or not.
    assert Scrubber().scrub_mapping({"url": "https://h/v1?api_key=abc"}) == {"url": FILTERED}


def test_cyclic_data_does_not_loop_forever() -> None:
    cyclic: dict[str, Any] = {}
    cyclic["self"] = cyclic
    result = Scrubber().scrub_mapping(cyclic)
    assert isinstance(result["self"], dict)


# -- through the serializer (frame locals, extra) -------------------------------------------------


def test_locals_and_extra_through_the_serializer() -> None:
    serializer = Serializer(scrubber=Scrubber(extra_keys=["pin_code"]))
    meta: Meta = {}
    local_vars = {
        "user": "bob",
        "password": "pw",
        "pin_code": 1234,
        "headers": {"X-Api-Key": "k", "Accept": "*/*"},
        "message": "card 4111 1111 1111 1111",
        "session": object(),
    }
    result = serializer.normalize_mapping(local_vars, meta)
    assert result == {
        "user": "bob",
        "password": FILTERED,
        "pin_code": FILTERED,
        "headers": {"X-Api-Key": FILTERED, "Accept": "*/*"},
        "message": f"card {FILTERED}",
        "session": FILTERED,
    }
    assert meta == {
        "password": {"": {"rem": [["!config", "s"]]}},
        "pin_code": {"": {"rem": [["!config", "s"]]}},
        "headers": {"X-Api-Key": {"": {"rem": [["!config", "s"]]}}},
        "message": {"": {"rem": [["!config", "s", 5, 15]]}},
        "session": {"": {"rem": [["!config", "s"]]}},
    }


def test_an_env_emptied_by_pii_removal_is_left_out() -> None:
    from errlink._capture.scrub import Scrubber

    request = {"url": "http://h/", "env": {"REMOTE_ADDR": "10.0.0.1"}}
    assert Scrubber().scrub_request(request) == {"url": "http://h/"}
    assert Scrubber(send_default_pii=True).scrub_request(request)["env"] == {
        "REMOTE_ADDR": "10.0.0.1"
    }
