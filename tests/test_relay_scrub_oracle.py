"""What errlink sends leaves Relay's default data scrubbing nothing to strip.

Sentry's server (Relay) scrubs every event it receives with rules derived from a project's
default settings; a server without them (GlitchTip, a proxy, a collector) keeps what it gets.
Relay's own library (`sentry-relay`) is the oracle here: events built from generated secrets
in generated places go through errlink's real capture path to an in-memory transport, and what
errlink sent is handed to `pii_strip_event` with the default rules, for both settings of
`send_default_pii` (Relay's "scrub IP addresses" is its opposite). Relay must change nothing
(it writes a `_meta` remark for each change), and no planted secret may be in what was sent.

A second test holds realistic values that are not secrets: they must arrive untouched.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import ipaddress
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sentry_relay.processing import convert_datascrubbing_config, pii_strip_event

import errlink
from errlink import AsyncClient
from errlink._capture.scope import isolated_scope
from tests._support.transports import MemoryTransport

# Relay's rules for a project with the default data scrubbing settings.
RELAY_RULES = {
    send_default_pii: convert_datascrubbing_config(
        {
            "scrubData": True,
            "scrubDefaults": True,
            "scrubIpAddresses": not send_default_pii,
            "excludeFields": [],
            "sensitiveFields": [],
        }
    )
    for send_default_pii in (False, True)
}


def relay_changes(event: dict[str, Any], send_default_pii: bool) -> list[str]:
    """Where Relay's default scrubbing changes ``event`` (as sent): one entry per remark or
    error it writes in ``_meta``."""
    wire = json.loads(json.dumps(event))
    wire.pop("_meta", None)  # errlink's own remarks; Relay's are what is looked for
    stripped = pii_strip_event(RELAY_RULES[send_default_pii], wire)
    changes: list[str] = []

    def walk(node: Any, path: str) -> None:
        if not isinstance(node, dict):
            return
        here = node.get("")
        if isinstance(here, dict) and (here.get("rem") or here.get("err")):
            changes.append(f"{path}: {here}")
        for key, child in node.items():
            if key != "":
                walk(child, f"{path}.{key}")

    walk(stripped.get("_meta"), "")
    return changes


@pytest.fixture(autouse=True)
def _fresh_scope() -> Iterator[None]:
    with isolated_scope():
        yield


# -- secrets --------------------------------------------------------------------------------------

_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
# A random secret part: distinct enough that finding it in the event means it leaked.
_token = st.text(_ALNUM, min_size=8, max_size=24).map(lambda text: f"Sx{text}9q")


@dataclasses.dataclass(frozen=True)
class Secret:
    text: str  # as it appears in the text it is planted in
    needle: str  # what must not reach the server
    personal: bool = False  # personal data: sent when send_default_pii says so
    address: bool = False  # an IP address: in a request's URL, the server's, and kept


def _grouped(digits: str, separator: str) -> str:
    return separator.join(digits[i : i + 4] for i in range(0, len(digits), 4))


_CARDS = ["4111111111111111", "5555555555554444", "378282246310005", "6011111111111117"]


@st.composite
def _card(draw: st.DrawFn) -> Secret:
    if draw(st.booleans()):
        digits = draw(st.sampled_from(_CARDS))
    else:  # a Visa, Mastercard, Amex or Discover number's shape, Luhn-valid or not
        prefix = draw(st.sampled_from(["4", "51", "55", "65", "6011", "34", "37"]))
        length = 15 if prefix in ("34", "37") else 16
        rest = length - len(prefix)
        digits = prefix + draw(st.text("0123456789", min_size=rest, max_size=rest))
    text = draw(st.sampled_from(["", " ", "-"]).map(lambda sep: _grouped(digits, sep)))
    return Secret(text, text)


@st.composite
def _pem_key(draw: st.DrawFn) -> Secret:
    kind = draw(st.sampled_from(["RSA PRIVATE", "EC PRIVATE", "PRIVATE", "OPENSSH PRIVATE"]))
    body = draw(_token) + "+/" + draw(_token)
    lines = "\n".join(body[i : i + 16] for i in range(0, len(body), 16))
    return Secret(f"-----BEGIN {kind} KEY-----\n{lines}\n-----END {kind} KEY-----", body[:16])


@st.composite
def _url_credentials(draw: st.DrawFn) -> Secret:
    scheme = draw(st.sampled_from(["https", "postgres", "redis", "amqp", "mongodb+srv"]))
    password = draw(_token) + draw(st.sampled_from(["", "%40", ".x", "-y_z"]))
    host = draw(st.sampled_from(["db.internal:5432", "example.com", "cache"]))
    return Secret(f"{scheme}://app:{password}@{host}/path", password)


_bearer = _token.map(lambda token: Secret(f"Bearer {token}.{token[::-1]}", token))
_basic = st.tuples(_token, _token).map(
    lambda pair: Secret(
        "Basic " + base64.b64encode(f"{pair[0]}:{pair[1]}".encode()).decode(),
        base64.b64encode(f"{pair[0]}:{pair[1]}".encode()).decode(),
    )
)
_ssn = st.from_regex(r"\A[0-9]{3}-[0-9]{2}-[0-9]{4}\Z").map(lambda ssn: Secret(ssn, ssn))
_iban = st.tuples(
    st.sampled_from(["DE", "GB", "FR", "NL", "CH"]),
    st.integers(10, 99),
    st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=14, max_size=22),
).map(lambda parts: Secret(f"{parts[0]}{parts[1]}{parts[2]}", f"{parts[0]}{parts[1]}{parts[2]}"))
# Loopback addresses (127.0.0.0/8) are kept on purpose (they identify no one): see
# test_loopback_addresses_are_kept.
_ipv4 = (
    st.integers(0x01000000, 0xDFFFFFFF)
    .filter(lambda number: number >> 24 != 127)
    .map(
        lambda number: Secret(
            str(ipaddress.IPv4Address(number)), str(ipaddress.IPv4Address(number)), True, True
        )
    )
)
_ipv6 = (
    st.integers(1, 2**128 - 1)
    .map(lambda number: ipaddress.IPv6Address(number))
    .flatmap(
        lambda address: st.sampled_from([address.compressed, address.exploded]).map(
            lambda text: Secret(text, text, True, True)
        )
    )
)
_email = st.tuples(_token, st.sampled_from(["example.com", "mail.example.org", "x.io"])).map(
    lambda parts: Secret(f"{parts[0].lower()}@{parts[1]}", f"{parts[0].lower()}@{parts[1]}", True)
)
# A pair inside text whose name is a secret's: reprs, Celery's kwargs, JSON, config lines.
_SENSITIVE_NAMES = ["db_password", "secret_key", "api_key", "auth_token", "session_id", "pwd"]
_pair = st.tuples(
    st.sampled_from(_SENSITIVE_NAMES),
    _token,
    st.sampled_from(["Config({}='{}')", "{{'{}': '{}'}}", '{{"{}": "{}"}}', "{}={}&page=2"]),
).map(lambda parts: Secret(parts[2].format(parts[0], parts[1]), parts[1]))

_secret = st.one_of(
    _card(),
    _pem_key(),
    _url_credentials(),
    _bearer,
    _basic,
    _ssn,
    _iban,
    _ipv4,
    _ipv6,
    _email,
    _pair,
)

# -- text around them -----------------------------------------------------------------------------

# Words that sit close to what the rules look for, and plain ones.
_WORDS = [
    "payment", "declined", "order", "ORD-2026-000123", "v1.2.3", "2.31.0", "author", "OAuth",
    "token:", "tokens", "::", "a::b", "std::vector", "1.2.3.4", "12:30:45", "user@host", "/home",
    "x=1", "id: 7", "Bearer", "basic", "—", "é", "中文", "4111", "123-45", "GB82", "[", "]",
]  # fmt: skip
_ASCII = "".join(chr(code) for code in range(32, 127))
_around = st.lists(
    st.sampled_from(_WORDS) | st.text(_ASCII + "éü中€", max_size=12), max_size=4
).map(" ".join)


@st.composite
def _planted(draw: st.DrawFn) -> tuple[str, Secret]:
    secret = draw(_secret)
    return f"{draw(_around)} {secret.text} {draw(_around)}", secret


# Where a text goes; request fields take a text of their own kind.
_PLACES = [
    "local",
    "local in a dict",
    "local in a list",
    "extra",
    "context",
    "tag",
    "breadcrumb message",
    "breadcrumb data",
    "request url",
    "request query string",
    "request header",
    "request cookie",
    "request data",
    "request env",
    "user",
    "exception value",
    "log message",
    "log param",
]
# Names that are sensitive by themselves, for values placed under them.
_SECRET_KEYS = st.sampled_from(["X-Api-Key", "author", "OTP"]) | st.from_regex(
    r"\A[a-z]{0,4}[_-]?(password|passwd|secret|token|auth|api_key|credentials|private-key|pwd)"
    r"[_-]?[a-z]{0,4}\Z"
)


@dataclasses.dataclass
class Plan:
    """What one example captures: texts by place, and values under secret names."""

    texts: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    named: dict[str, str] = dataclasses.field(default_factory=dict)
    max_value_length: int = 1024  # shorter: values are cut, a secret too perhaps

    def at(self, place: str) -> list[str]:
        return self.texts.get(place, [])


@st.composite
def _plans(draw: st.DrawFn) -> tuple[Plan, list[tuple[str, Secret]]]:
    plan = Plan()
    secrets = []
    for _ in range(draw(st.integers(1, 4))):
        text, secret = draw(_planted())
        place = draw(st.sampled_from(_PLACES))
        plan.texts.setdefault(place, []).append(text)
        secrets.append((place, secret))
    if draw(st.booleans()):
        value = draw(_token)
        plan.named[draw(_SECRET_KEYS)] = value
        secrets.append(("named", Secret(value, value)))
    plan.max_value_length = draw(st.sampled_from([1024, 1024, 40, 90]))
    return plan, secrets


# -- capturing ------------------------------------------------------------------------------------


@dataclasses.dataclass
class Settings:
    """A dataclass whose repr shows what it holds, as frame locals often are."""

    host: str
    notes: list[str]


class PlantedError(Exception):
    """Raised by the code under capture. Its own class: a type found slow to render (the
    machine is shared) is sent as a placeholder for good, and no other test's should be."""


def _failure(text: str, texts: dict[str, str], items: list[str], named: dict[str, str]) -> None:
    settings = Settings("db", items)
    raise PlantedError(f"failed: {text} ({len(texts)} {len(items)} {settings.host} {len(named)})")


def _raised(plan: Plan) -> BaseException:
    locals_text = " | ".join(plan.at("local"))
    in_dict = {f"k{i}": text for i, text in enumerate(plan.at("local in a dict"))}
    in_dict.update(plan.named)
    try:
        _failure(locals_text, in_dict, plan.at("local in a list"), plan.named)
    except PlantedError as exc:
        exc.args = (f"{exc.args[0]} {' '.join(plan.at('exception value'))}",)
        return exc
    raise AssertionError("unreachable")


def _request(plan: Plan) -> dict[str, Any]:
    query = "&".join(
        f"q{i}={quote(text)}" for i, text in enumerate(plan.at("request query string"))
    )
    url_texts = plan.at("request url")
    return {
        "method": "POST",
        "url": url_texts[0] if url_texts else "https://shop.example/pay",
        "query_string": query,
        "headers": {
            "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0.0.0 Safari/537.36",
            **{f"X-Note-{i}": text for i, text in enumerate(plan.at("request header"))},
            **{name: value for name, value in plan.named.items() if name == "X-Api-Key"},
        },
        "cookies": {f"c{i}": text for i, text in enumerate(plan.at("request cookie"))},
        "data": {"form": plan.at("request data"), **plan.named},
        "env": {
            "SERVER_NAME": "web1",
            **{f"E{i}": t for i, t in enumerate(plan.at("request env"))},
        },
    }


async def _capture(plan: Plan, send_default_pii: bool) -> list[dict[str, Any]]:
    transport = MemoryTransport()
    async with AsyncClient(
        transport=transport,
        send_default_pii=send_default_pii,
        max_value_length=plan.max_value_length,
    ) as client:
        with isolated_scope():
            for text in plan.at("breadcrumb message"):
                errlink.add_breadcrumb(message=text, category="app")
            for text in plan.at("breadcrumb data"):
                errlink.add_breadcrumb(category="http", data={"reason": text, **plan.named})
            await client.capture_exception(
                _raised(plan),
                extra={f"x{i}": text for i, text in enumerate(plan.at("extra"))} | plan.named,
                contexts={"order": {"note": plan.at("context"), **plan.named}},
                tags={f"t{i}": text for i, text in enumerate(plan.at("tag"))},
                user={"id": "42", "username": " ".join(plan.at("user")) or "ann"},
                request=_request(plan),
            )
            params = plan.at("log param")
            await client.capture_message(
                "order failed: " + " ".join([*plan.at("log message"), *params]),
                level="error",
                logentry={"message": "order failed: " + "%s " * len(params), "params": params},
            )
        assert await client.flush(10)
    return transport.events()


def _captured(plan: Plan, send_default_pii: bool) -> list[dict[str, Any]]:
    return asyncio.run(_capture(plan, send_default_pii))


# -- the property ---------------------------------------------------------------------------------


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=_plans(), send_default_pii=st.booleans())
def test_relay_finds_nothing_left_to_strip(
    case: tuple[Plan, list[tuple[str, Secret]]], send_default_pii: bool
) -> None:
    plan, secrets = case
    events = _captured(plan, send_default_pii)
    assert len(events) == 2
    for event in events:
        assert relay_changes(event, send_default_pii) == []
    sent = json.dumps(events, ensure_ascii=False)
    # The host of a request's URL is the server's: an IP address there is kept.
    hosts = {
        secret.needle for place, secret in secrets if secret.address and place == "request url"
    }
    for _, secret in secrets:
        if secret.personal and (send_default_pii or secret.needle in hosts):
            continue
        assert secret.needle not in sent, secret  # (cut values may keep a piece of one)


def test_the_oracle_sees_what_errlink_would_have_left() -> None:
    # The oracle itself: the same event, unscrubbed, is full of what Relay strips.
    event = {
        "extra": {"password": "hunter2", "note": "card 4111 1111 1111 1111 from 10.0.0.1"},
        "logentry": {"formatted": "mail ann@example.com"},
    }
    assert len(relay_changes(event, send_default_pii=False)) == 3
    assert len(relay_changes(event, send_default_pii=True)) == 3  # IP kept, card and e-mail not


# -- what is not a secret stays -------------------------------------------------------------------

NOT_SECRETS = [
    # identifiers
    "ORD-2026-000123",
    "INV/2026/00042",
    "order #10023",
    "3f2b8c1e-9d4a-4e7b-8c2f-1a2b3c4d5e6f",
    "DE305D54-75B4-431B-ADB2-EB6B9E546014",
    hashlib.sha1(b"errlink").hexdigest(),
    hashlib.sha256(b"errlink").hexdigest(),
    "9fceb02d0ae598e95dc970b74767f19372d61af8",
    "9fceb02",
    # versions and ranges
    "2.31.0",
    "v1.4.2-rc1",
    "1.26.18",
    "20.10.24+dfsg1",
    ">=2.0,<3",
    "^1.2.3",
    "~=3.8",
    # paths
    "/home/alice/project/app.py",
    "C:\\Users\\bob\\AppData\\Local\\app.log",
    "/var/log/nginx/access.log",
    "./src/main.rs:42:7",
    # times and numbers
    "2026-01-15T10:30:00Z",
    "2026-01-15 10:30:00.123456+00:00",
    "1736937000000",
    "1736937000",
    "3.14159",
    "-17",
    "1e-09",
    "$1,299.00",
    "1,234,567.89",
    "+44 20 7946 0958",
    # URLs, HTTP, prose
    "https://example.com/api/v1/orders?page=2&sort=desc",
    "http://localhost:8000/health",
    "GET /api/v1/orders HTTP/1.1",
    "text/html; charset=utf-8",
    "payment declined: insufficient funds",
    "retrying in 5s (attempt 2/3)",
]
# Values Relay's default scrubbing strips from data values (locals, extra...), so errlink does
# too: a 4-part dotted version reads as an IPv4 address (a User-Agent's `Chrome/120.0.0.0` too,
# kept in the request's User-Agent header, as Relay keeps it there), a 16-digit number starting
# with 4 as a Visa number, and a value naming auth, a token... is filtered whole (`"oauth"`,
# which under `auth_method` is filtered by its name anyway).
RELAY_STRIPS = [
    "4.2.1.0",
    "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0.0.0",
    "4000123456789010",
    "oauth",
    "the author",
    "max_tokens=100",
]


class ValueFailure(Exception):
    """Raised with a value that is not a secret (see `PlantedError`)."""


def _raise_holding(value: str, values: list[str]) -> BaseException:
    try:
        raise ValueFailure(f"failed on {value}")
    except ValueFailure as exc:
        return exc


async def _capture_values(values: list[str]) -> list[dict[str, Any]]:
    transport = MemoryTransport()
    async with AsyncClient(transport=transport) as client:
        for value in values:
            await client.capture_exception(
                _raise_holding(value, values), extra={"value": value, "values": values}
            )
            await client.capture_message(f"order failed: {value}")
        assert await client.flush(10)
    return transport.events()


@pytest.mark.parametrize("value", NOT_SECRETS)
def test_what_is_not_a_secret_arrives_untouched(value: str) -> None:
    exception_event, message_event = asyncio.run(_capture_values([value]))
    frame_vars = exception_event["exception"]["values"][0]["stacktrace"]["frames"][-1]["vars"]
    assert frame_vars["value"] == value
    assert frame_vars["values"] == [value]
    assert exception_event["extra"] == {"value": value, "values": [value]}
    assert exception_event["exception"]["values"][0]["value"] == f"failed on {value}"
    assert message_event["logentry"]["formatted"] == f"order failed: {value}"
    assert "_meta" not in exception_event
    for event in (exception_event, message_event):
        assert relay_changes(event, send_default_pii=False) == []


@pytest.mark.parametrize("value", RELAY_STRIPS)
def test_what_relay_strips_is_filtered_as_a_data_value(value: str) -> None:
    exception_event, _ = asyncio.run(_capture_values([value]))
    assert exception_event["extra"]["value"] != value
    assert relay_changes(exception_event, send_default_pii=False) == []


def test_loopback_addresses_are_kept() -> None:
    # Unlike Relay, errlink keeps loopback addresses, without send_default_pii too: the URL of a
    # service on the same host names no one. Any other address in the same text is replaced.
    value = "GET http://127.0.0.1:8080/health from 10.1.2.3"
    exception_event, _ = asyncio.run(_capture_values([value]))
    assert exception_event["extra"]["value"] == "GET http://127.0.0.1:8080/health from [ip]"
