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

_INTEGRATION = "aiohttp_client"
_CATEGORY = "aiohttp"


class _Request:
    """What errlink keeps about one request between aiohttp's trace signals."""

    __slots__ = ("outgoing",)

    def __init__(self, trace_request_ctx: Any = None) -> None:
        self.outgoing: _outgoing.Outgoing | None = None


async def _on_request_start(
    session: aiohttp.ClientSession, context: Any, params: aiohttp.TraceRequestStartParams
) -> None:
    core = _outgoing.client_for(_INTEGRATION)
    if core is None:
        return
    url = params.url
    outgoing = _outgoing.start(core, _CATEGORY, params.method, url, url.host)
    if outgoing is None:
        return
    if outgoing.propagate:
        try:
            headers = params.headers
            for name, value in outgoing.headers(headers.__contains__).items():
                headers[name] = value  # the request's own CIMultiDict
        except Exception:
            logger.warning("errlink: could not add trace headers", exc_info=True, extra=INTERNAL)
    context.outgoing = outgoing


async def _on_request_end(
    session: aiohttp.ClientSession, context: Any, params: aiohttp.TraceRequestEndParams
) -> None:
    outgoing = context.outgoing
    if outgoing is not None:
        context.outgoing = None
        outgoing.finish(params.response.status, hint={"response": params.response})


async def _on_request_exception(
    session: aiohttp.ClientSession, context: Any, params: aiohttp.TraceRequestExceptionParams
) -> None:
    outgoing = context.outgoing
    if outgoing is not None:
        context.outgoing = None
        outgoing.finish(error=params.exception)


def _trace_config() -> aiohttp.TraceConfig:
    config = aiohttp.TraceConfig(trace_config_ctx_factory=_Request)  # type: ignore[arg-type]
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
