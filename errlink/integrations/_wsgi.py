"""What the sync web integrations (Flask, Django) share: reading the environ, settings errors.

A request pays for errlink with a `request_scope` and a `LazyRequest` (`_lazy`): the protocol's
`request` dict (and the user) is only built when an event is captured. The helpers read a WSGI
environ, or Django's `request.META`, which carries the same CGI-style keys under WSGI and ASGI
alike. Environ values are "WSGI strings" (the raw bytes decoded as latin-1); they are re-decoded as
UTF-8, with replacement characters for invalid bytes, so non-ASCII paths, query strings and headers
read right.

Both integrations are configured from the framework's settings; a bad value must fail at start-up
with a message naming the setting the user wrote, which `invalid_setting` works out.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from ._request import to_text
from ._sdk import INIT_ONLY_OPTIONS, IncomingTrace, build_options, name_hint
from .logging import level_number

_HEADER_KEYS_WITHOUT_PREFIX = {"CONTENT_TYPE": "Content-Type", "CONTENT_LENGTH": "Content-Length"}
_ENV_KEYS = ("REMOTE_ADDR", "SERVER_NAME", "SERVER_PORT")
_DEFAULT_PORTS = {"http": "80", "https": "443"}
_TRACE_KEYS = {
    "sentry-trace": "HTTP_SENTRY_TRACE",
    "baggage": "HTTP_BAGGAGE",
    "traceparent": "HTTP_TRACEPARENT",
}


def wsgi_text(value: object) -> str:
    """A WSGI string (bytes decoded as latin-1) as the UTF-8 text it was meant to be."""
    if isinstance(value, str):
        try:
            return value.encode("latin-1").decode("utf-8", "replace")
        except UnicodeEncodeError:  # already real text: the server decoded it itself
            return value
    return to_text(value)


def environ_headers(environ: Mapping[Any, Any]) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = []
    for key, value in environ.items():
        if not isinstance(key, str):
            continue
        if key.startswith("HTTP_"):
            name = key[5:].replace("_", "-").title()
        else:
            fixed = _HEADER_KEYS_WITHOUT_PREFIX.get(key)
            if fixed is None or not value:
                continue
            name = fixed
        headers.append((name, wsgi_text(value)))
    return headers


def environ_trace(environ: Mapping[str, Any]) -> IncomingTrace:
    """The request's trace, continued from its headers when first needed."""
    return IncomingTrace(lambda name: environ.get(_TRACE_KEYS[name]))


def environ_url(
    environ: Mapping[str, Any], *, scheme: str | None = None, path: str | None = None
) -> str:
    """The request URL without its query string, as the client asked for it."""
    scheme = scheme or to_text(environ.get("wsgi.url_scheme") or "http")
    host = environ.get("HTTP_HOST")
    if host:
        host = wsgi_text(host)
    else:
        host = to_text(environ.get("SERVER_NAME") or "localhost")
        port = to_text(environ.get("SERVER_PORT") or "")
        if port and port != _DEFAULT_PORTS.get(scheme):
            host = f"{host}:{port}"
    if path is None:
        path = wsgi_text(environ.get("SCRIPT_NAME") or "") + wsgi_text(
            environ.get("PATH_INFO") or ""
        )
    return f"{scheme}://{host}{path or '/'}"


def environ_env(environ: Mapping[str, Any]) -> dict[str, str]:
    """The few CGI variables worth sending; REMOTE_ADDR is dropped later unless PII is on."""
    return {key: to_text(environ[key]) for key in _ENV_KEYS if environ.get(key)}


def parse_cookies(header: object) -> dict[str, str]:
    """A `Cookie` header as a dict; malformed pieces are skipped, never fatal."""
    cookies: dict[str, str] = {}
    for piece in wsgi_text(header).split(";"):
        name, equals, value = piece.partition("=")
        name = name.strip()
        if equals and name:
            cookies[name] = value.strip().strip('"')
    return cookies


def content_length(value: object) -> int | None:
    try:
        length = int(to_text(value).strip())
    except ValueError:
        return None
    return length if length >= 0 else None


def over_limit(length: int | None, max_bytes: int | None) -> bool:
    return max_bytes is not None and length is not None and length > max_bytes


INIT_SETTINGS = ("logging_event_level", "logging_breadcrumb_level", "excepthook")


def setting_hint(name: str, known: Collection[str], spell: Callable[[str], str] = repr) -> str:
    """What the unknown setting `name` probably meant, as `` (did you mean ...?)``, or ""."""
    hint = name_hint(name, known, init_only=INIT_ONLY_OPTIONS, spell=spell)
    return f" ({hint})" if hint else ""


def with_hints(names: Iterable[str], known: Collection[str]) -> str:
    """Unknown setting names for a message, each with what it probably meant."""
    return ", ".join(f"{name!r}{setting_hint(name, known)}" for name in names)


def check_init_settings(values: Mapping[str, Any], where: Callable[[str], str]) -> None:
    """Validate the `errlink.init` arguments an integration passes through from its settings."""
    for name in ("logging_event_level", "logging_breadcrumb_level"):
        if name in values:
            try:
                level_number(name, values[name])
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"errlink: {where(name)} is invalid: {exc}") from exc
    if "excepthook" in values and not isinstance(values["excepthook"], bool):
        raise TypeError(f"errlink: {where('excepthook')} must be True or False")


def invalid_setting(
    error: Exception, values: Mapping[str, Any], where: Callable[[str], str]
) -> Exception:
    """`error` (from building client options) restated to name the setting that caused it."""
    for name, value in values.items():
        own = _option_error(name, value)
        if own is not None:
            return type(own)(f"errlink: {where(name)} is invalid: {own}")
    return type(error)(f"errlink: invalid settings: {error}")


def _option_error(name: str, value: Any) -> Exception | None:
    try:
        if name == "dsn":
            build_options(value, {}, env={})
        else:
            build_options(None, {name: value}, env={})
    except (TypeError, ValueError) as exc:
        return exc
    return None
