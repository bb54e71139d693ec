"""Breadcrumbs and trace headers for the standard library's `http.client`.

`http.client` has no hooks, so this patches `HTTPConnection` (which urllib, urllib3 and
requests all use underneath) in one place: `putrequest` notes the request, `endheaders` adds
the trace headers the caller did not set (every header is known by then), `getresponse`
records the outcome, as does `endheaders` when connecting or sending fails.
"""

from __future__ import annotations

import http.client
from collections.abc import Callable
from typing import Any

from .._sdk import INTERNAL, logger
from . import _outgoing

_INTEGRATION = "http_client"
_ATTRIBUTE = "_errlink_outgoing"
_HTTPS_PORT = http.client.HTTPS_PORT

# What a request's URL is made from, only if needed: (host, port, default port, target).
_Target = tuple[str, int | None, int, str]


class _Outgoing(_outgoing.Outgoing):
    __slots__ = ()
    category = "httplib"
    subject_key = "connection"

    @staticmethod
    def text(url: object) -> str:
        return _full_url(*url) if type(url) is tuple else str(url)


def hook() -> Callable[[], None]:
    connection = http.client.HTTPConnection
    putrequest = connection.putrequest
    endheaders = connection.endheaders
    getresponse = connection.getresponse

    # The signatures are the standard library's own (stable since Python 3.6): spelled out
    # rather than *args/**kwargs, which would cost a tuple and a dict per call.
    def errlink_putrequest(
        self: Any,
        method: str,
        url: str,
        skip_host: bool = False,
        skip_accept_encoding: bool = False,
    ) -> None:
        putrequest(self, method, url, skip_host, skip_accept_encoding)
        outgoing = _begin(self, method, url)
        if outgoing is not None or self.__dict__.get(_ATTRIBUTE) is not None:
            self.__dict__[_ATTRIBUTE] = outgoing

    def errlink_endheaders(
        self: Any, message_body: Any = None, *, encode_chunked: bool = False
    ) -> None:
        outgoing: _outgoing.Outgoing | None = self.__dict__.get(_ATTRIBUTE)
        if outgoing is None:
            return endheaders(self, message_body, encode_chunked=encode_chunked)
        if outgoing.propagate:
            _add_headers(self, outgoing)
        try:
            return endheaders(self, message_body, encode_chunked=encode_chunked)
        except Exception as exc:
            self.__dict__[_ATTRIBUTE] = None
            outgoing.finish(None, exc, self)
            raise

    def errlink_getresponse(self: Any) -> Any:
        outgoing: _outgoing.Outgoing | None = self.__dict__.get(_ATTRIBUTE)
        if outgoing is None:
            return getresponse(self)
        self.__dict__[_ATTRIBUTE] = None
        try:
            response = getresponse(self)
        except Exception as exc:
            outgoing.finish(None, exc, self)
            raise
        outgoing.finish(response.status, None, self, response)
        return response

    connection.putrequest = errlink_putrequest  # type: ignore[method-assign]
    connection.endheaders = errlink_endheaders  # type: ignore[method-assign]
    connection.getresponse = errlink_getresponse  # type: ignore[method-assign]

    def undo() -> None:
        connection.putrequest = putrequest  # type: ignore[method-assign]
        connection.endheaders = endheaders  # type: ignore[method-assign]
        connection.getresponse = getresponse  # type: ignore[method-assign]

    return undo


def _begin(connection: Any, method: str, url: str) -> _outgoing.Outgoing | None:
    try:
        tunnel = connection._tunnel_host
        host = tunnel or connection.host
        port = connection._tunnel_port if tunnel else connection.port
        target: _Target = (host, port, connection.default_port, url)  # text only when needed
        return _outgoing.begin(_INTEGRATION, _Outgoing, method, target)
    except Exception:
        logger.warning(
            "errlink: could not record an outgoing request", exc_info=True, extra=INTERNAL
        )
        return None


def _full_url(host: str, port: int | None, default: int, url: str) -> str:
    if "://" in url[:12]:
        return url  # the absolute form, sent to a proxy
    scheme = "https" if default == _HTTPS_PORT else "http"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    netloc = host if port in (None, default) else f"{host}:{port}"
    return f"{scheme}://{netloc}{url if url.startswith('/') else '/' + url}"


def _add_headers(connection: Any, outgoing: _outgoing.Outgoing) -> None:
    # The caller's headers are already in the output buffer, one b"Name: value" line each
    # after the request line; errlink's go after them the same way `putheader` would put them
    # (the values are ASCII and checked when made).
    try:
        lines = connection._buffer
        present = {
            line.partition(b":")[0].strip().lower() for line in lines[1:] if type(line) is bytes
        }
        for name, value in outgoing.encoded_headers():
            if name not in present:
                lines.append(b"%s: %s" % (name, value))
    except Exception:
        logger.warning("errlink: could not add trace headers", exc_info=True, extra=INTERNAL)
