"""Breadcrumbs and trace headers for httpx, sync and async.

httpx's event hooks belong to each client instance, set when it is made, so the process-wide
place is `Client.send` and `AsyncClient.send`, which every request goes through (``get``,
``request``, ``stream``). A request followed through redirects is one breadcrumb, with the
final status.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from .._sdk import INTERNAL, logger
from . import _outgoing

_INTEGRATION = "httpx"
_begin = _outgoing.begin


class _Request(_outgoing.Outgoing):
    __slots__ = ()
    category = "httpx"
    subject_key = "request"


def hook() -> Callable[[], None]:
    sync_send = httpx.Client.send
    async_send = httpx.AsyncClient.send

    # After `request`, httpx's `send` takes keywords only (stream, auth, follow_redirects):
    # no *args tuple to make per request, and whatever keywords an httpx version has pass on.
    def errlink_send(self: httpx.Client, request: httpx.Request, **kwargs: Any) -> Any:
        outgoing = _begin(_INTEGRATION, _Request, request.method, request.url)
        if outgoing is None:
            return sync_send(self, request, **kwargs)
        if outgoing.propagate:
            _add_headers(request.headers, outgoing)
        try:
            response = sync_send(self, request, **kwargs)
        except Exception as exc:
            outgoing.finish(None, exc, request)
            raise
        outgoing.finish(response.status_code, None, request, response)
        return response

    async def errlink_async_send(
        self: httpx.AsyncClient, request: httpx.Request, **kwargs: Any
    ) -> Any:
        outgoing = _begin(_INTEGRATION, _Request, request.method, request.url)
        if outgoing is None:
            return await async_send(self, request, **kwargs)
        if outgoing.propagate:
            _add_headers(request.headers, outgoing)
        try:
            response = await async_send(self, request, **kwargs)
        except Exception as exc:
            outgoing.finish(None, exc, request)
            raise
        outgoing.finish(response.status_code, None, request, response)
        return response

    httpx.Client.send = errlink_send  # type: ignore[method-assign]
    httpx.AsyncClient.send = errlink_async_send  # type: ignore[method-assign]

    def undo() -> None:
        httpx.Client.send = sync_send  # type: ignore[method-assign]
        httpx.AsyncClient.send = async_send  # type: ignore[method-assign]

    return undo


def _add_headers(headers: httpx.Headers, outgoing: _outgoing.Outgoing) -> None:
    try:
        _add_missing(headers, outgoing)
    except Exception:
        logger.warning("errlink: could not add trace headers", exc_info=True, extra=INTERNAL)


def _add_missing(headers: httpx.Headers, outgoing: _outgoing.Outgoing) -> None:
    # httpx keeps a request's headers as a list of (name, lower-case name, value) in bytes.
    # Setting them one by one through the mapping scans that list twice per header, more than
    # all the rest of the hook: when the list is there, add to it directly.
    items = getattr(headers, "_list", None)
    if type(items) is not list:
        for name, value in outgoing.headers(headers.__contains__).items():
            headers[name] = value
        return
    present = {item[1] for item in items}
    for raw_name, raw_value in outgoing.encoded_headers():
        if raw_name not in present:
            items.append((raw_name, raw_name, raw_value))
