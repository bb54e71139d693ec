"""Breadcrumbs and trace headers for the aiohttp client, through aiohttp's own extension points.

aiohttp 3.12 and later: a client middleware, the innermost of the session's, so one breadcrumb
per request that goes out (each hop of a redirect, each retry a user middleware makes), with
what went out on it. Older aiohttp: a `TraceConfig` (one breadcrumb per call, redirects
included). A middleware costs aiohttp far less: with any `TraceConfig`, aiohttp sends a dozen
signals per request, each with a parameters object.

Both are given to a session when it is made, so the one patch is `ClientSession.__init__`.
Sessions made before the hook (before `errlink.init()` or the first `AsyncClient`) are left as
they are, and so is a request given its own ``middlewares=`` (aiohttp then uses those instead
of the session's).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from .._sdk import INTERNAL, logger
from . import _outgoing

_INTEGRATION = "aiohttp_client"
_begin = _outgoing.begin


class _Outgoing(_outgoing.Outgoing):
    __slots__ = ()
    category = "aiohttp"


async def _record(
    request: aiohttp.ClientRequest,
    handler: Callable[[aiohttp.ClientRequest], Awaitable[aiohttp.ClientResponse]],
) -> aiohttp.ClientResponse:
    """The client middleware: a breadcrumb for the request, and its trace headers."""
    # `original_url`: `url` lost its fragment.
    outgoing = _begin(_INTEGRATION, _Outgoing, request.method, request.original_url)
    if outgoing is None:
        return await handler(request)
    if outgoing.propagate:
        _add_headers(request.headers, outgoing)
    try:
        response = await handler(request)
    except BaseException as exc:
        outgoing.finish(None, exc)
        raise
    outgoing.finish(response.status, None, None, response)
    return response


def _add_headers(headers: Any, outgoing: _outgoing.Outgoing) -> None:
    """Add the trace headers to a request's own CIMultiDict, keeping those already set."""
    try:
        for name, value in outgoing.header_items():
            if name not in headers:
                headers[name] = value
    except Exception:
        logger.warning("errlink: could not add trace headers", exc_info=True, extra=INTERNAL)


# With a TraceConfig, each request's trace context is aiohttp's default, a SimpleNamespace;
# errlink's request is its `outgoing` attribute, absent until one is recorded.


async def _on_request_start(
    session: aiohttp.ClientSession, context: Any, params: aiohttp.TraceRequestStartParams
) -> None:
    outgoing = _begin(_INTEGRATION, _Outgoing, params.method, params.url)
    if outgoing is None:
        return
    if outgoing.propagate:
        _add_headers(params.headers, outgoing)  # the request's own CIMultiDict
    context.outgoing = outgoing


async def _on_request_end(
    session: aiohttp.ClientSession, context: Any, params: aiohttp.TraceRequestEndParams
) -> None:
    outgoing = context.__dict__.pop("outgoing", None)
    if outgoing is not None:
        response = params.response
        outgoing.finish(response.status, None, None, response)


async def _on_request_exception(
    session: aiohttp.ClientSession, context: Any, params: aiohttp.TraceRequestExceptionParams
) -> None:
    outgoing = context.__dict__.pop("outgoing", None)
    if outgoing is not None:
        outgoing.finish(None, params.exception)


def _trace_config() -> aiohttp.TraceConfig:
    config = aiohttp.TraceConfig()
    config.on_request_start.append(_on_request_start)
    config.on_request_end.append(_on_request_end)
    config.on_request_exception.append(_on_request_exception)
    config.freeze()
    return config


def takes_middlewares() -> bool:
    """Whether this aiohttp's sessions take client middlewares (3.12 and later)."""
    try:
        return "middlewares" in inspect.signature(aiohttp.ClientSession.__init__).parameters
    except (TypeError, ValueError):
        return False


def hook() -> Callable[[], None]:
    """Patch `ClientSession.__init__`: sessions get a client middleware where aiohttp takes
    them, else a `TraceConfig`."""
    session = aiohttp.ClientSession
    original = session.__init__
    if takes_middlewares():

        @functools.wraps(original)
        def errlink_init(self: aiohttp.ClientSession, *args: Any, **kwargs: Any) -> None:
            middlewares = tuple(kwargs.get("middlewares") or ())
            if _record not in middlewares:
                kwargs["middlewares"] = (*middlewares, _record)  # the innermost
            original(self, *args, **kwargs)

    else:
        config = _trace_config()

        @functools.wraps(original)
        def errlink_init(self: aiohttp.ClientSession, *args: Any, **kwargs: Any) -> None:
            configs = list(kwargs.get("trace_configs") or ())
            if config not in configs:
                configs.append(config)
            kwargs["trace_configs"] = configs
            original(self, *args, **kwargs)

    session.__init__ = errlink_init  # type: ignore[method-assign]

    def undo() -> None:
        session.__init__ = original  # type: ignore[method-assign]

    return undo
