"""Removing secrets and personal data from event parts before they leave the process.

Two kinds of rule apply:

* key rules: a value stored under a sensitive-looking name (``password``, ``X-Api-Key``,
  ``sessionid``, ``author``...) is replaced by ``[Filtered]``;
* text rules (`text_secrets`): card numbers, PEM key bodies, URL passwords, bearer and basic
  credentials, social security numbers, IBANs and the values of sensitive ``name=value`` pairs
  inside any string are replaced; without ``send_default_pii``, so are IP and e-mail addresses.

Text comes in three kinds, each with its own `TextRules`:

* a data value (a local, ``extra``, a context, a header, a breadcrumb's data...): the text rules,
  and a value that names a secret (``"wrong password"``, ``"OAuth"``) is filtered whole, as
  Relay's default scrubbing filters it;
* text (exception messages, tags, URLs, message templates, a User-Agent): the text rules only;
* a message (a log entry's formatted message, a log record's body): the text rules, and e-mail
  addresses even with ``send_default_pii``, as Relay filters them there.

On top of those, ``send_default_pii`` decides whether cookies, client IP addresses, e-mail addresses
and credentials carried in ``Authorization`` headers are sent at all.

Every public method accepts odd input (``None``, bytes, lists of pairs) and degrades rather than
raising: this code runs on the host application's error path.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import quote_plus, unquote_plus, urlsplit, urlunsplit

from .sensitive import FILTERED, KeyVerdicts, ScanBudget, normalize_key
from .text_secrets import Span, TextRules

_FILTERED_IN_URL = quote_plus(FILTERED)

_COOKIE_HEADERS = frozenset({"cookie", "setcookie"})
_AUTH_HEADERS = frozenset({"authorization", "proxyauthorization"})
_CLIENT_IP_HEADERS = frozenset(
    {"xforwardedfor", "xrealip", "forwarded", "trueclientip", "cfconnectingip", "xclientip"}
)
_CLIENT_IP_ENV = frozenset(
    {"remoteaddr", "httpxforwardedfor", "httpxrealip", "httpforwarded", "httptrueclientip"}
)
_USER_PII = ("ip_address", "email")
_URL_KEYS = frozenset({"url", "query_string", "http.query"})
_USER_AGENT = "useragent"
# Request fields that are text rather than data values (see `Scrubber.request_texts`).
_REQUEST_TEXTS = ("url", "query_string")

# Bodies longer than this are not parsed on the capture path; they are withheld instead, since
# what they hold cannot be checked cheaply.
_MAX_BODY_CHARS = 100_000
_MAX_NESTING = 64


def _as_text(value: object) -> str:
    """A best-effort str for header/cookie/query values of unexpected types."""
    if type(value) is str:
        return value
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    if value is None:
        return ""
    try:
        return str(value)
    except Exception:
        return f"<unprintable {type(value).__name__} object>"


class Scrubber:
    """Applies the scrubbing rules; one instance per client, safe to share between threads."""

    def __init__(self, *, extra_keys: Iterable[str] = (), send_default_pii: bool = False) -> None:
        self.send_default_pii = send_default_pii
        # Keys a user adds must match the whole (normalized) name: predictable, no surprises.
        self._verdicts = KeyVerdicts(extra_keys)
        # `is_sensitive_key` for keys already known to be exact `str`: a plain dict lookup, for
        # the serializer's inner loop.
        self.sensitive_str_key: Callable[[str], bool] = self._verdicts.__getitem__
        addresses = not send_default_pii
        self._texts = TextRules(
            self.sensitive_str_key,
            addresses=addresses,
            emails=addresses,
            named_values=False,
            product_versions=True,
        )
        self._messages = TextRules(
            self.sensitive_str_key,
            addresses=addresses,
            emails=True,
            emails_in_urls=True,
            named_values=False,
            product_versions=True,
        )
        self._values = TextRules(
            self.sensitive_str_key, addresses=addresses, emails=addresses, named_values=True
        )
        # A request's URL and User-Agent: text whose addresses are the server's, or versions.
        self._urls = TextRules(
            self.sensitive_str_key, addresses=False, emails=addresses, named_values=False
        )
        # What the serializer applies: to data values, and to text it makes (keys, str()).
        self.value_rules = self._values
        self.text_rules = self._texts

    def for_text(self) -> Scrubber:
        """This scrubber for a serializer whose values are all text (tags, URLs, templates)."""
        view = copy.copy(self)
        view.value_rules = self._texts
        return view

    def for_urls(self) -> Scrubber:
        """This scrubber for a serializer whose values are all a request's URL, query string or
        User-Agent: text, in which an IP address is the server's, or a version."""
        view = copy.copy(self)
        view.value_rules = self._urls
        return view

    def for_messages(self) -> Scrubber:
        """This scrubber for a serializer whose values are all messages (a log entry's
        formatted message)."""
        view = copy.copy(self)
        view.value_rules = self._messages
        return view

    # -- keys -----------------------------------------------------------------------------------

    def is_sensitive_key(self, key: object) -> bool:
        if type(key) is not str:
            if isinstance(key, str):
                key = str.__str__(key)
            elif isinstance(key, bytes | bytearray):
                key = bytes(key).decode("latin-1")
            else:
                return False
        return self._verdicts[key]

    def sensitive_pair_name(self, name: object) -> bool:
        """Whether the value paired with `name` in a ``(name, value)`` pair is left out: a
        sensitive key (an ASGI or HTTP header list in a frame's locals, say), or, without
        ``send_default_pii``, a header naming the client's address."""
        if type(name) is bytes:
            name = name.decode("latin-1")
        if type(name) is not str:
            return False
        if self._verdicts[name]:
            return True
        return not self.send_default_pii and normalize_key(name) in _CLIENT_IP_HEADERS

    # -- text -----------------------------------------------------------------------------------

    def scrub_text(self, text: str) -> str:
        """``text`` (an exception message, a URL, a name) with every secret in it replaced; see
        the module doc. Anything that is not a str comes back as it is."""
        rules = self._texts
        if type(text) is not str or len(text) < rules.shortest:
            return text
        return rules.scrub(text)[0]

    def scrub_text_spans(
        self, text: str, budget: ScanBudget | None = None, known: Iterable[Span] = ()
    ) -> tuple[str, list[Span]]:
        """Like `scrub_text`, also returning the ``(start, end)`` of each placeholder it wrote,
        as positions in the returned text (the serializer records them in ``_meta``).

        ``budget``: see `sensitive.card_spans`; ``known``: see `TextRules.scrub`."""
        return self._texts.scrub(text, budget, known)

    def scrub_value(self, text: str) -> str:
        """``text`` as a data value: `scrub_text`, and filtered whole when it names a secret."""
        rules = self._values
        if type(text) is not str or len(text) < rules.shortest:
            return text
        return rules.scrub(text)[0]

    def scrub_value_spans(
        self, text: str, budget: ScanBudget | None = None, known: Iterable[Span] = ()
    ) -> tuple[str, list[Span]]:
        """`scrub_value` with spans, as `scrub_text_spans`."""
        return self._values.scrub(text, budget, known)

    def scrub_message(self, text: str) -> str:
        """``text`` as a message (a log record's body): `scrub_text`, and e-mail addresses
        filtered even with ``send_default_pii``."""
        rules = self._messages
        if type(text) is not str or len(text) < rules.shortest:
            return text
        return rules.scrub(text)[0]

    # -- query strings and forms ----------------------------------------------------------------

    def scrub_query_string(self, qs: str) -> str:
        """Filters values of sensitive parameters and secrets in values (each a data value),
        keeping order and layout.

        A filtered value is written URL-encoded (``%5BFiltered%5D``) so the result stays a valid
        query string.
        """
        return self._scrub_query(qs, self._values)

    def _scrub_query(self, qs: str, rules: TextRules) -> str:
        try:
            qs = _as_text(qs)
            if not qs:
                return qs
            return "&".join(self._scrub_query_part(part, rules) for part in qs.split("&"))
        except Exception:
            return FILTERED

    def _scrub_query_part(self, part: str, rules: TextRules) -> str:
        name, equals, value = part.partition("=")
        if not equals:
            return part
        if self.is_sensitive_key(unquote_plus(name)):
            return f"{name}={_FILTERED_IN_URL}"
        if len(value) >= rules.shortest:
            decoded = unquote_plus(value)
            scrubbed = rules.scrub(decoded)[0]
            if scrubbed != decoded:
                return f"{name}={quote_plus(scrubbed)}"
        return part

    # -- headers and cookies --------------------------------------------------------------------

    def scrub_headers(
        self, headers: Mapping[str, str] | Iterable[tuple[str, str]]
    ) -> dict[str, str]:
        """Headers as a dict (repeated names joined with ``", "``), scrubbed and, without
        ``send_default_pii``, stripped of cookies, credentials and client addresses."""
        result: dict[str, str] = {}
        for raw_name, raw_value in _pairs(headers):
            name = _as_text(raw_name)
            value = self._scrub_header(name, _as_text(raw_value))
            if value is None:
                continue
            previous = result.get(name)
            result[name] = value if previous is None else f"{previous}, {value}"
        return result

    def _scrub_header(self, name: str, value: str) -> str | None:
        """The value to keep for one header, or None to drop the header."""
        key = normalize_key(name)
        pii = self.send_default_pii
        if key in _COOKIE_HEADERS:
            if not pii:
                return None
            return (
                self._scrub_set_cookie(value)
                if key == "setcookie"
                else self._scrub_cookie_header(value)
            )
        if key in _AUTH_HEADERS:
            return FILTERED if pii else None
        if key in _CLIENT_IP_HEADERS and not pii:
            return None
        if self.is_sensitive_key(name):
            return FILTERED
        if key == _USER_AGENT:  # text: `Chrome/120.0.0.0` is a version, not an address
            return self._urls.scrub(value)[0]
        return self.scrub_value(value)

    def scrub_cookies(self, cookies: Mapping[str, str] | str) -> dict[str, str] | str:
        """Cookies (a mapping or a ``Cookie`` header string) with sensitive ones filtered.

        Without ``send_default_pii`` no cookie is kept at all: an empty dict or string comes back.
        """
        try:
            if isinstance(cookies, str | bytes | bytearray):
                text = _as_text(cookies)
                return self._scrub_cookie_header(text) if self.send_default_pii else ""
            if not self.send_default_pii:
                return {}
            return {
                _as_text(name): FILTERED
                if self.is_sensitive_key(name)
                else self.scrub_value(_as_text(value))
                for name, value in _pairs(cookies)
            }
        except Exception:
            return {} if not isinstance(cookies, str) else ""

    def _scrub_cookie_header(self, header: str) -> str:
        return "; ".join(self._scrub_cookie(part.strip()) for part in header.split(";"))

    def _scrub_cookie(self, cookie: str) -> str:
        """One ``name=value``: its value filtered under a sensitive name, else scrubbed as a data
        value (a server reads each cookie's value as one)."""
        name, equals, value = cookie.partition("=")
        if not equals:
            return self.scrub_value(cookie)
        if self.is_sensitive_key(name.strip()):
            return f"{name.strip()}={FILTERED}"
        return f"{name}={self.scrub_value(value)}"

    def _scrub_set_cookie(self, header: str) -> str:
        # Only the first `name=value` pair is the cookie; the rest are attributes (Path, Expires).
        cookie, semicolon, attributes = header.partition(";")
        return f"{self._scrub_cookie(cookie)}{semicolon}{self.scrub_text(attributes)}"

    # -- whole interfaces -----------------------------------------------------------------------

    def scrub_request(self, request: dict[str, Any]) -> dict[str, Any]:
        """A scrubbed copy of a protocol ``request`` (url, method, query_string, headers, cookies,
        data, env); other keys are copied through."""
        untrusted: object = request
        if not isinstance(untrusted, Mapping):
            return {}
        result: dict[str, Any] = {}
        for key, value in request.items():
            try:
                scrubbed = self._scrub_request_field(key, value)
            except Exception:
                scrubbed = FILTERED
            if scrubbed is not _DROP and not (key == "env" and not scrubbed):
                result[key] = scrubbed  # an env left empty by PII removal is left out
        return result

    def request_texts(self, request: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Moves out of a scrubbed ``request`` the fields that are text rather than data values:
        its URL, a query string given as text, the User-Agent header. They were scrubbed as text
        (a URL naming `/oauth/` is kept, and Relay leaves them alone too); the serializer must
        not filter them again as data values (see `for_urls`). Returns ``(fields, headers)``."""
        texts = {
            name: request.pop(name) for name in _REQUEST_TEXTS if isinstance(request.get(name), str)
        }
        headers = request.get("headers")
        agents: dict[str, Any] = {}
        if isinstance(headers, dict):
            for name in [name for name in headers if normalize_key(str(name)) == _USER_AGENT]:
                agents[name] = headers.pop(name)
        return texts, agents

    def _scrub_request_field(self, key: object, value: Any) -> Any:
        if value is None:
            return None
        if key == "url":
            return self._scrub_url(_as_text(value))
        if key == "query_string":
            if isinstance(value, Mapping):
                return self.scrub_mapping(value)
            if isinstance(value, str | bytes | bytearray):
                return self.scrub_query_string(_as_text(value))
            return [
                [_as_text(name), FILTERED if self.is_sensitive_key(name) else _as_text(item)]
                for name, item in _pairs(value)
            ]
        if key == "headers":
            return self.scrub_headers(value)
        if key == "cookies":
            return self.scrub_cookies(value) if self.send_default_pii else _DROP
        if key == "data":
            return self._scrub_body(value)
        if key == "env":
            return self._scrub_env(value)
        return self._scrub_deep(value, 0)

    def _scrub_url(self, url: str) -> str:
        """A URL (text; its host is kept, an IP address too): its password and its query's
        secrets filtered."""
        try:
            parts = urlsplit(url)
        except ValueError:
            return self._urls.scrub(url)[0]
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, host = netloc.rpartition("@")
            user, colon, _ = userinfo.partition(":")
            netloc = f"{user}:{FILTERED}@{host}" if colon else netloc
        query = self._scrub_query(parts.query, self._texts) if parts.query else ""
        if netloc != parts.netloc or query != parts.query:
            url = urlunsplit(parts._replace(netloc=netloc, query=query))
        return self._urls.scrub(url)[0]

    def _scrub_body(self, data: Any) -> Any:
        if isinstance(data, Mapping | list | tuple):
            return self._scrub_deep(data, 0)
        if isinstance(data, bytes | bytearray | memoryview):
            data = bytes(data[: _MAX_BODY_CHARS + 1]).decode("utf-8", "replace")
        if not isinstance(data, str):
            return data
        if len(data) > _MAX_BODY_CHARS:
            return FILTERED
        stripped = data.strip()
        if stripped[:1] in ("{", "["):
            try:
                parsed = json.loads(stripped)
            except ValueError:
                return self.scrub_value(data)
            return json.dumps(self._scrub_deep(parsed, 0), ensure_ascii=False)
        if "=" in stripped and not any(char.isspace() for char in stripped):
            return self.scrub_query_string(stripped)
        return self.scrub_value(data)

    def _scrub_env(self, env: Any) -> Any:
        if not isinstance(env, Mapping):
            return env
        result: dict[str, Any] = {}
        for name, value in env.items():
            if not self.send_default_pii and normalize_key(_as_text(name)) in _CLIENT_IP_ENV:
                continue
            if self.is_sensitive_key(name):
                result[name] = FILTERED
            else:
                result[name] = self.scrub_value(value) if type(value) is str else value
        return result

    def scrub_user(self, user: dict[str, Any]) -> dict[str, Any]:
        """A scrubbed copy of the protocol ``user``; without ``send_default_pii`` the IP address
        and e-mail are dropped."""
        untrusted: object = user
        if not isinstance(untrusted, Mapping):
            return {}
        scrubbed = self.scrub_mapping(user)
        if not self.send_default_pii:
            for name in _USER_PII:
                scrubbed.pop(name, None)
        return scrubbed

    def scrub_mapping(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """Deep copy of already JSON-like data with sensitive keys and card numbers filtered."""
        untrusted: object = data
        if not isinstance(untrusted, Mapping):
            return {}
        try:
            result = self._scrub_deep(untrusted, 0)
        except Exception:
            return {}
        return result if isinstance(result, dict) else {}

    def _scrub_deep(self, value: Any, depth: int) -> Any:
        value_type = type(value)
        if value_type is str:
            return self.scrub_value(value)
        if depth >= _MAX_NESTING:
            return value  # runaway nesting or a cycle; the serializer bounds it later
        if value_type is dict or isinstance(value, Mapping):
            return {key: self._scrub_entry(key, item, depth + 1) for key, item in value.items()}
        if value_type is list or value_type is tuple:
            return [self._scrub_deep(item, depth + 1) for item in value]
        return value

    def _scrub_entry(self, key: object, value: Any, depth: int) -> Any:
        if self.is_sensitive_key(key):
            return FILTERED
        if type(value) is str and key in _URL_KEYS:
            # Breadcrumbs of HTTP calls carry secrets in their URLs' query strings.
            if key == "url":
                return self.scrub_value(self._scrub_url(value))
            return self.scrub_query_string(value)
        return self._scrub_deep(value, depth)


class _Drop:
    """Marks a request field that must not be sent at all."""


_DROP: Any = _Drop()


def _pairs(items: object) -> Iterable[tuple[Any, Any]]:
    """(name, value) pairs from a mapping, a list of pairs or a multidict; junk is skipped."""
    if isinstance(items, Mapping):
        try:
            return list(items.items())
        except Exception:
            return []
    if items is None or isinstance(items, str | bytes | bytearray):
        return []
    pairs: list[tuple[Any, Any]] = []
    try:
        for item in items:  # type: ignore[attr-defined]
            if isinstance(item, tuple | list) and len(item) == 2:
                pairs.append((item[0], item[1]))  # noqa: PERF401 (keeps pairs read before a fault)
    except Exception:
        return pairs
    return pairs
