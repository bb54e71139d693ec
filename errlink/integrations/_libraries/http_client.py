"""Breadcrumbs and trace headers for the standard library's `http.client`.

`http.client` has no hooks, so this patches `HTTPConnection` (which urllib, urllib3 and
requests all use underneath) in one place: `putrequest` notes the request, `endheaders` adds
the trace headers the caller did not set (every header is known by then), `getresponse`
records the outcome, as does `endheaders` when connecting or sending fails.
"""

from __future__ import annotations

import functools
import http.client
from collections.abc import Callable
from typing import Any

from .._sdk import INTERNAL, logger
from . import _outgoing

_INTEGRATION = "http_client"
_CATEGORY = "httplib"
_ATTRIBUTE = "_errlink_outgoing"


def hook() -> Callable[[], None]:
    connection = http.client.HTTPConnection
    putrequest = connection.putrequest
    endheaders = connection.endheaders
    getresponse = connection.getresponse

    def errlink_putrequest(self: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        result = putrequest(self, method, url, *args, **kwargs)
        core = _outgoing.client_for(_INTEGRATION)
        if core is not None:
            tunnel = getattr(self, "_tunnel_host", None)
            host, port = (
                (tunnel, getattr(self, "_tunnel_port", None))
                if tunnel
                else (
                    self.host,
                    self.port,
                )
            )
            default = getattr(self, "default_port", http.client.HTTP_PORT)
            full_url = functools.partial(_full_url, host, port, default, url)  # text when needed
            setattr(self, _ATTRIBUTE, _outgoing.start(core, _CATEGORY, method, full_url, host))
        elif self.__dict__.get(_ATTRIBUTE) is not None:
            setattr(self, _ATTRIBUTE, None)
        return result

    def errlink_endheaders(self: Any, *args: Any, **kwargs: Any) -> Any:
        outgoing: _outgoing.Outgoing | None = self.__dict__.get(_ATTRIBUTE)
        if outgoing is None:
            return endheaders(self, *args, **kwargs)
        if outgoing.propagate:
            _add_headers(self, outgoing)
        try:
            return endheaders(self, *args, **kwargs)
        except Exception as exc:
            setattr(self, _ATTRIBUTE, None)
            outgoing.finish(error=exc, hint={"connection": self})
            raise

    def errlink_getresponse(self: Any) -> Any:
        outgoing: _outgoing.Outgoing | None = self.__dict__.get(_ATTRIBUTE)
        if outgoing is None:
            return getresponse(self)
        setattr(self, _ATTRIBUTE, None)
        try:
            response = getresponse(self)
        except Exception as exc:
            outgoing.finish(error=exc, hint={"connection": self})
            raise
        outgoing.finish(response.status, hint={"connection": self, "response": response})
        return response

    connection.putrequest = errlink_putrequest  # type: ignore[method-assign]
    connection.endheaders = errlink_endheaders  # type: ignore[method-assign]
    connection.getresponse = errlink_getresponse  # type: ignore[method-assign]

    def undo() -> None:
        connection.putrequest = putrequest  # type: ignore[method-assign]
        connection.endheaders = endheaders  # type: ignore[method-assign]
        connection.getresponse = getresponse  # type: ignore[method-assign]

    return undo


def _full_url(host: str, port: int | None, default: int, url: str) -> str:
    if "://" in url[:12]:
        return url  # the absolute form, sent to a proxy
    scheme = "https" if default == http.client.HTTPS_PORT else "http"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    netloc = host if port in (None, default) else f"{host}:{port}"
    return f"{scheme}://{netloc}{url if url.startswith('/') else '/' + url}"


def _add_headers(connection: Any, outgoing: _outgoing.Outgoing) -> None:
    # The caller's headers are already in the output buffer, one b"Name: value" line each
    # after the request line.
    lines = getattr(connection, "_buffer", None) or []
    present = {
        line.partition(b":")[0].strip().lower().decode("latin-1")
        for line in lines[1:]
        if isinstance(line, bytes)
    }
    try:
        for name, value in outgoing.headers(present.__contains__).items():
            connection.putheader(name, value)
    except Exception:
        logger.warning("errlink: could not add trace headers", exc_info=True, extra=INTERNAL)
