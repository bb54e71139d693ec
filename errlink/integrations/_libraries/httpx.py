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

from .._sdk import INTERNAL, ClientCore, logger
from . import _outgoing

_INTEGRATION = "httpx"
_CATEGORY = "httpx"


def hook() -> Callable[[], None]:
    sync_send = httpx.Client.send
    async_send = httpx.AsyncClient.send

    def errlink_send(self: httpx.Client, request: httpx.Request, *args: Any, **kwargs: Any) -> Any:
        core = _outgoing.client_for(_INTEGRATION)
        outgoing = None if core is None else _start(core, request)
        if outgoing is None:
            return sync_send(self, request, *args, **kwargs)
        try:
            response = sync_send(self, request, *args, **kwargs)
        except Exception as exc:
            outgoing.finish(error=exc, hint={"request": request})
            raise
        outgoing.finish(response.status_code, hint={"request": request, "response": response})
        return response

    async def errlink_async_send(
        self: httpx.AsyncClient, request: httpx.Request, *args: Any, **kwargs: Any
    ) -> Any:
        core = _outgoing.client_for(_INTEGRATION)
        outgoing = None if core is None else _start(core, request)
        if outgoing is None:
            return await async_send(self, request, *args, **kwargs)
        try:
            response = await async_send(self, request, *args, **kwargs)
        except Exception as exc:
            outgoing.finish(error=exc, hint={"request": request})
            raise
        outgoing.finish(response.status_code, hint={"request": request, "response": response})
        return response

    httpx.Client.send = errlink_send  # type: ignore[method-assign]
    httpx.AsyncClient.send = errlink_async_send  # type: ignore[method-assign]

    def undo() -> None:
        httpx.Client.send = sync_send  # type: ignore[method-assign]
        httpx.AsyncClient.send = async_send  # type: ignore[method-assign]

    return undo


def _start(core: ClientCore, request: httpx.Request) -> _outgoing.Outgoing | None:
    url = request.url
    outgoing = _outgoing.start(core, _CATEGORY, request.method, url, url.host)
    if outgoing is not None and outgoing.propagate:
        try:
            headers = request.headers
            for name, value in outgoing.headers(headers.__contains__).items():
                headers[name] = value
        except Exception:
            logger.warning("errlink: could not add trace headers", exc_info=True, extra=INTERNAL)
    return outgoing
