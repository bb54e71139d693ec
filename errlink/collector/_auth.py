"""Finding the public key a client presents: auth header, query string, or envelope `dsn`."""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from .._wire.dsn import Dsn
from ._errors import Rejected

_SENTRY_SCHEME = "sentry "


def parse_sentry_auth(value: str) -> dict[str, str]:
    """The fields of `Sentry sentry_version=7, sentry_key=KEY, ...` (empty when not that form)."""
    text = value.strip()
    if text[: len(_SENTRY_SCHEME)].lower() != _SENTRY_SCHEME:
        return {}
    fields: dict[str, str] = {}
    for part in text[len(_SENTRY_SCHEME) :].split(","):
        name, sep, field_value = part.partition("=")
        if sep:
            fields[name.strip()] = field_value.strip().strip('"')
    return fields


def key_from_request(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """The public key sent in `X-Sentry-Auth`, `Authorization: Sentry ...` or `?sentry_key=`."""
    for header in ("X-Sentry-Auth", "Authorization"):
        value = headers.get(header)
        if value:
            key = parse_sentry_auth(value).get("sentry_key")
            if key:
                return key
    return query.get("sentry_key") or None


def key_from_envelope_dsn(dsn: object) -> str | None:
    """The public key of the `dsn` envelope header, the fallback when the request carries none."""
    if dsn is None:
        return None
    if not isinstance(dsn, str):
        raise Rejected(401, "envelope header 'dsn' is not a string")
    try:
        return Dsn.parse(dsn).public_key
    except ValueError as exc:
        raise Rejected(401, f"envelope header 'dsn' is not a valid DSN: {exc}") from None


def check_key(presented: str | None, expected: str) -> None:
    if presented is None:
        raise Rejected(401, "missing public key (X-Sentry-Auth header, sentry_key, or dsn)")
    if not hmac.compare_digest(_utf8(presented), _utf8(expected)):
        raise Rejected(401, "invalid public key")


def _utf8(text: str) -> bytes:
    # Header values may carry undecodable bytes as surrogates; compare them byte for byte.
    return text.encode("utf-8", "surrogatepass")
