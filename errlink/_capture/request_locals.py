"""Request data met in frame locals, shown under the rules the event's ``request`` follows.

A web or Lambda frame holds the request in its locals in many shapes: a WSGI environ (Django's
``request.META`` too), an ASGI scope (which Starlette's and FastAPI's ``Request`` are mappings
over), an API Gateway, function URL or ALB event, a framework's request object (whose repr shows
the URL with its query string), werkzeug's headers, Celery's task request. Without this module the
serializer's key rules would catch the ``Cookie`` and ``Authorization`` values in them, but not the
client's address, the secrets of a query string or the password inside a JSON body.

`RequestLocals` recognises those shapes and hands the serializer a privacy-safe view of each, which
the serializer then walks like any other value (key rules, card numbers, size limits):

* mappings by a marker key (`REQUEST_MARKERS`), which the serializer looks for in every mapping
  it walks, then by their shape;
* objects by their type's module and name, never by importing a framework;
* a frame's locals named like a request body (``body``, ``body_bytes``...), scrubbed as one.

Without ``send_default_pii`` client addresses are filtered wherever their names appear as keys
(``REMOTE_ADDR``, ``X-Forwarded-For``...): `sensitive_key` is the serializer's key rule.
Every method degrades rather than raises: this runs on the host application's error path.
"""

from __future__ import annotations

import base64
import binascii
import re
import socket
from collections.abc import Callable, Mapping
from typing import Any

from .scrub import _CLIENT_IP_HEADERS, Scrubber
from .sensitive import FILTERED, normalize_key

# A mapping holding one of these keys may be request data; `RequestLocals.mapping_view` decides.
REQUEST_MARKERS = frozenset({"asgi", "REQUEST_METHOD", "requestContext", "httpMethod"})

# Key names (normalized: lower case, no separators) whose value is the client's address: the
# HTTP headers the scrubber drops from a request, their CGI variables (``HTTP_X_FORWARDED_FOR``)
# and the peer itself.
ADDRESS_KEYS = (
    _CLIENT_IP_HEADERS
    | {f"http{name}" for name in _CLIENT_IP_HEADERS}
    | {"remoteaddr", "remotehost"}
)
# Locals holding a raw request body, scrubbed like the ``request``'s ``data``.
_BODY_LOCALS = frozenset({"body", "body_bytes", "raw_body", "request_body"})
# CGI variables that carry the query string: alone, or after the path.
_ENVIRON_QUERY = "QUERY_STRING"
_ENVIRON_URIS = ("REQUEST_URI", "RAW_URI")
# Frameworks whose request objects' reprs are scrubbed (a class of these packages named
# ``...Request`` or ``...RequestContext``, or a subclass of one).
_WEB_PACKAGES = frozenset(
    {
        "aiohttp",
        "bottle",
        "django",
        "falcon",
        "fastapi",
        "flask",
        "litestar",
        "pyramid",
        "quart",
        "sanic",
        "starlette",
        "tornado",
        "webob",
        "werkzeug",
    }
)
_QUERY_IN_TEXT = re.compile(r"\?([^\s'\"<>()\[\]]*)")
# `remote_ip='203.0.113.9'` in Tornado's request repr.
_ADDRESS_IN_REPR = re.compile(r"\b(remote_ip|remote_addr)=(['\"])[^'\"]*\2")
_PEER_IN_SOCKET = re.compile(r", raddr=(\([^)]*\)|'[^']*'|\S+?)(?=[,>])")
_CACHE_SIZE = 4096
_MAX_CACHED_KEY_LEN = 256

# What an object of a recognised type is shown as.
_SCRUBBED_REPR = "repr"  # its repr, query strings and client addresses filtered
_HEADER_PAIRS = "pairs"  # werkzeug's headers: (name, value) pairs, which the serializer filters
_ATTRIBUTES = "vars"  # its attributes, walked as a mapping (Celery's task request)
_WITHHELD = "withheld"  # a cache of the whole request (Litestar's scope state): its type only
_SOCKET = "socket"  # a socket: its repr, without the peer's address unless PII is allowed
_PROXIED = "proxied"  # werkzeug's LocalProxy (`flask.request`): the object it stands for


def _view_kind(value_type: type) -> str | None:
    """How objects of `value_type` are shown, or None for the serializer's usual way."""
    try:
        if issubclass(value_type, socket.socket):
            return _SOCKET
        if issubclass(value_type, Mapping):
            return None  # walked as a mapping: Starlette's Request is one over its scope
        for cls in value_type.__mro__:
            package = cls.__module__.partition(".")[0]
            name = cls.__name__
            if package in _WEB_PACKAGES:
                if name.endswith(("Request", "RequestContext")):
                    return _SCRUBBED_REPR
                if package == "werkzeug" and name == "Headers":
                    return _HEADER_PAIRS
                if package == "werkzeug" and name == "LocalProxy":
                    return _PROXIED
                if package == "litestar" and name == "ScopeState":
                    return _WITHHELD
            elif package == "celery" and cls.__module__ == "celery.app.task" and name == "Context":
                return _ATTRIBUTES
    except Exception:
        return None
    return None


def is_request_object_type(value_type: type) -> bool:
    """Whether objects of `value_type` are shown through `RequestLocals.object_view`."""
    return _view_kind(value_type) is not None


def _is_asgi_scope(mapping: Mapping[Any, Any]) -> bool:
    try:
        return type(mapping.get("asgi")) is dict and mapping.get("type") in ("http", "websocket")
    except Exception:
        return False


def _is_wsgi_environ(mapping: Mapping[Any, Any]) -> bool:
    return isinstance(mapping.get("REQUEST_METHOD"), str) and (
        "wsgi.version" in mapping or "SERVER_NAME" in mapping or "PATH_INFO" in mapping
    )


def _is_http_event(mapping: Mapping[Any, Any]) -> bool:
    """An API Gateway (REST or HTTP API), function URL or ALB event."""
    return isinstance(mapping.get("requestContext"), Mapping) or isinstance(
        mapping.get("httpMethod"), str
    )


class _KeyVerdicts(dict[str, bool]):
    """Key -> filtered or not: the scrubber's sensitive keys, plus, without PII, the names of
    client addresses. Computed on first sight, then looked up at C speed."""

    __slots__ = ("_addresses", "_sensitive")

    def __init__(self, sensitive: Callable[[str], bool], addresses: bool) -> None:
        super().__init__()
        self._sensitive = sensitive
        self._addresses = addresses

    def __missing__(self, key: str) -> bool:
        verdict = self._sensitive(key) or (self._addresses and normalize_key(key) in ADDRESS_KEYS)
        if len(key) <= _MAX_CACHED_KEY_LEN:
            if len(self) >= _CACHE_SIZE:
                self.clear()
            self[key] = verdict
        return verdict


class RequestLocals:
    """Privacy-safe views of request data for one scrubber (one client); thread-safe."""

    __slots__ = ("_kinds", "_pii", "_scrubber", "sensitive_key")

    def __init__(self, scrubber: Scrubber) -> None:
        self._scrubber = scrubber
        self._pii = scrubber.send_default_pii
        self._kinds: dict[type, str | None] = {}
        # The serializer's key rule for str keys.
        self.sensitive_key: Callable[[str], bool] = _KeyVerdicts(
            scrubber.sensitive_str_key, not self._pii
        ).__getitem__

    # -- mappings -------------------------------------------------------------------------------

    def mapping_view(self, mapping: Mapping[Any, Any]) -> Mapping[Any, Any]:
        """`mapping` itself, or a scrubbed copy when it is request data; call it only for a
        mapping holding one of `REQUEST_MARKERS`."""
        try:
            if _is_asgi_scope(mapping):
                return self._asgi_scope(mapping)
            if _is_wsgi_environ(mapping):
                return self._wsgi_environ(mapping)
            if _is_http_event(mapping):
                return self._http_event(mapping)
        except Exception:
            return {"request data": FILTERED}  # cannot tell what it holds: nothing of it leaves
        return mapping

    def _asgi_scope(self, scope: Mapping[Any, Any]) -> dict[Any, Any]:
        # Its headers are (name, value) pairs, which the serializer filters by name.
        safe = dict(scope)
        query = safe.get("query_string")
        if isinstance(query, bytes | str) and query:
            safe["query_string"] = self._query(query)
        if not self._pii and "client" in safe:
            safe["client"] = FILTERED
        return safe

    def _wsgi_environ(self, environ: Mapping[Any, Any]) -> dict[Any, Any]:
        # Client addresses and cookies go by the key rule; only texts holding a query remain.
        safe = dict(environ)
        query = safe.get(_ENVIRON_QUERY)
        if isinstance(query, str) and query:
            safe[_ENVIRON_QUERY] = self._query(query)
        for name in _ENVIRON_URIS:
            uri = safe.get(name)
            if isinstance(uri, str) and "?" in uri:
                safe[name] = self.scrub_queries_in_text(uri)
        return safe

    def _http_event(self, event: Mapping[Any, Any]) -> dict[Any, Any]:
        # Headers, multi-value headers and query parameters are mappings: the key rule filters
        # their secrets and, without PII, the client addresses (X-Forwarded-For).
        safe = dict(event)
        raw_query = safe.get("rawQueryString")
        if isinstance(raw_query, str) and raw_query:
            safe["rawQueryString"] = self._query(raw_query)
        if "cookies" in safe:
            safe["cookies"] = self._cookie_list(safe["cookies"])
        if "body" in safe:
            safe["body"] = self._event_body(safe["body"], bool(safe.get("isBase64Encoded")))
        context = safe.get("requestContext")
        if isinstance(context, Mapping):
            safe["requestContext"] = self._request_context(context)
        return safe

    def _request_context(self, context: Mapping[Any, Any]) -> Mapping[Any, Any]:
        if self._pii:
            return context
        safe = dict(context)
        for part in ("identity", "http"):  # REST API; HTTP API and function URLs
            found = safe.get(part)
            if isinstance(found, Mapping) and "sourceIp" in found:
                safe[part] = {**found, "sourceIp": FILTERED}
        if "authorizer" in safe:
            safe["authorizer"] = FILTERED  # the caller's identity: JWT claims, IAM principal
        return safe

    def _cookie_list(self, cookies: Any) -> Any:
        """The ``cookies`` of a payload 2.0 event: ``["name=value", ...]``."""
        if not self._pii:
            return FILTERED
        if not isinstance(cookies, list):
            return cookies
        return [self._scrubber.scrub_cookies(c) if isinstance(c, str) else c for c in cookies]

    def _event_body(self, body: Any, base64_encoded: bool) -> Any:
        if not isinstance(body, str) or not body:
            return body
        if base64_encoded:
            try:
                body = base64.b64decode(body, validate=True).decode("utf-8")
            except (binascii.Error, ValueError):
                return FILTERED  # binary, or not base64 after all: nothing to check it by
        return self.scrub_body(body)

    # -- a frame's locals -----------------------------------------------------------------------

    def frame_view(self, f_locals: Mapping[str, Any]) -> Mapping[str, Any]:
        """A frame's locals, with a raw request body (a local named like one) scrubbed."""
        try:
            if f_locals.keys().isdisjoint(_BODY_LOCALS):
                return f_locals
            safe = dict(f_locals)
            for name in _BODY_LOCALS.intersection(safe):
                value = safe[name]
                if isinstance(value, str | bytes | bytearray | memoryview):
                    safe[name] = self.scrub_body(value)
            return safe
        except Exception:
            return f_locals

    def scrub_body(self, body: Any) -> Any:
        """A request body (JSON, a form, text) as the ``request``'s ``data`` shows it."""
        return self._scrubber.scrub_request({"data": body}).get("data")

    # -- objects --------------------------------------------------------------------------------

    def object_view(self, value: object) -> object:
        """What the serializer shows for an object whose type `is_request_object_type`."""
        value_type = type(value)
        kinds = self._kinds
        kind = kinds.get(value_type)
        if kind is None:
            if len(kinds) >= _CACHE_SIZE:
                kinds.clear()
            kind = kinds[value_type] = _view_kind(value_type)
        try:
            if kind == _PROXIED:
                return value._get_current_object()  # type: ignore[attr-defined]
            if kind == _HEADER_PAIRS:
                return list(value.items())  # type: ignore[attr-defined]
            if kind == _ATTRIBUTES:
                return vars(value)
            if kind == _WITHHELD:
                return object.__repr__(value)
            text = repr(value)
            if type(text) is not str:
                text = str.__str__(text)
            if kind == _SOCKET:
                return text if self._pii else _PEER_IN_SOCKET.sub("", text)
            return self.scrub_repr(text)
        except Exception:
            return f"<{value_type.__name__}>"

    def scrub_repr(self, text: str) -> str:
        """A request object's repr with its query strings scrubbed and, without PII, the
        client's address filtered."""
        if "?" in text:
            text = self.scrub_queries_in_text(text)
        if not self._pii and "remote_" in text:
            text = _ADDRESS_IN_REPR.sub(rf"\1=\2{FILTERED}\2", text)
        return text

    def scrub_queries_in_text(self, text: str) -> str:
        """`text` with every ``?query`` in it scrubbed (a URL, a path, a repr holding either)."""
        return _QUERY_IN_TEXT.sub(lambda found: "?" + self._query(found.group(1)), text)

    def _query(self, query: str | bytes) -> str:
        text = query.decode("utf-8", "replace") if isinstance(query, bytes) else query
        return self._scrubber.scrub_query_string(text)
