"""Breadcrumbs and trace headers for the aiohttp client, through aiohttp's own `TraceConfig`.

A `TraceConfig` is given to a session when it is made, so the one patch is
`ClientSession.__init__`, appending errlink's to the session's trace configs. Sessions made
before the hook (before `errlink.init()` or the first `AsyncClient`) are left as they are.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import aiohttp

from .._sdk import INTERNAL, logger
from . import _outgoing
from ._gate import client_for

_INTEGRATION = "aiohttp_client"


class _Outgoing(_outgoing.Outgoing):
    __slots__ = ()
    category = "aiohttp"


# Each request's trace context is aiohttp's default, a SimpleNamespace; errlink's request is its
# `outgoing` attribute, absent until one is recorded.


async def _on_request_start(
    session: aiohttp.ClientSession, context: Any, params: aiohttp.TraceRequestStartParams
) -> None:
    core = client_for(_INTEGRATION)
    if core is None:
        return
    url = params.url
    outgoing = _outgoing.start(core, _Outgoing, params.method, url, url.host)
    if outgoing is None:
        return
    if outgoing.propagate:
        try:
            headers = params.headers  # the request's own CIMultiDict
            for name, value in outgoing.header_items():
                if name not in headers:
                    headers[name] = value
        except Exception:
            logger.warning("errlink: could not add trace headers", exc_info=True, extra=INTERNAL)
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


def hook() -> Callable[[], None]:
    session = aiohttp.ClientSession
    original = session.__init__
    config = _trace_config()

    @functools.wraps(original)
    def errlink_init(
        self: aiohttp.ClientSession,
        *args: Any,
        trace_configs: list[aiohttp.TraceConfig] | None = None,
        **kwargs: Any,
    ) -> None:
        configs = list(trace_configs or ())
        if config not in configs:
            configs.append(config)
        original(self, *args, trace_configs=configs, **kwargs)

    session.__init__ = errlink_init  # type: ignore[method-assign]

    def undo() -> None:
        session.__init__ = original  # type: ignore[method-assign]

    return undo
