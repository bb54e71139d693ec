"""`ErrlinkMiddleware` (one scope per request) and the `got_request_exception` receiver."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from .._lazy import LazyMapping, LazyRequest, scope_is_for
from .._sdk import (
    INTERNAL,
    Options,
    current_client,
    logger,
    new_scope,
    request_scope,
    set_transaction,
)
from .._wsgi import environ_trace
from . import _config
from ._context import request_context, transaction_name, user_context


class ErrlinkMiddleware:
    """Runs each request in its own errlink scope, bound to the current client.

    Under ASGI it stays async (no thread hop). The app puts it first in ``MIDDLEWARE`` at
    start-up; list it yourself to choose another place.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response
        self._is_async = iscoroutinefunction(get_response)
        # Django adapts process_view to the handler's mode; matching it avoids a thread hop.
        self.process_view: Callable[..., Any]
        if self._is_async:
            markcoroutinefunction(self)
            self.process_view = self._process_view_async
        else:
            self.process_view = self._process_view

    def __call__(self, request: Any) -> Any:
        if self._is_async:
            return self.__acall__(request)
        core = current_client()
        if core is None or not core.enabled:
            return self.get_response(request)
        lazy_request, user = _lazy_context(request, core.options)
        trace = environ_trace(request.META)
        with request_scope(core, request=lazy_request, user=user, trace=trace):
            return self.get_response(request)

    async def __acall__(self, request: Any) -> Any:
        core = current_client()
        get_response: Callable[[Any], Awaitable[Any]] = self.get_response
        if core is None or not core.enabled:
            return await get_response(request)
        lazy_request, user = _lazy_context(request, core.options)
        trace = environ_trace(request.META)
        with request_scope(core, request=lazy_request, user=user, trace=trace):
            return await get_response(request)

    def _process_view(self, request: Any, view: Any, args: Any, kwargs: Any) -> None:
        _name_transaction(request, view)

    async def _process_view_async(self, request: Any, view: Any, args: Any, kwargs: Any) -> None:
        _name_transaction(request, view)


def _lazy_context(request: Any, options: Options) -> tuple[LazyRequest, LazyMapping | None]:
    lazy_request = LazyRequest(request, request_context, options.max_request_body_bytes)
    user = LazyMapping(lambda: user_context(request)) if options.send_default_pii else None
    return lazy_request, user


def _name_transaction(request: Any, view: Any) -> None:
    if not scope_is_for(request):
        return  # outside our scope (middleware listed after a short-circuiting one, say)
    try:
        name = transaction_name(_config.current, request, view)
    except Exception:
        logger.warning("errlink: could not name the transaction", exc_info=True, extra=INTERNAL)
        return
    if name:
        set_transaction(name)


def on_request_exception(sender: Any, request: Any = None, **_: Any) -> None:
    """Django's `got_request_exception`: the exception is the one being handled right now."""
    exc = sys.exc_info()[1]
    core = current_client()
    if exc is None or core is None:
        return
    if request is None or scope_is_for(request):
        core.capture_exception(exc, handled=False, mechanism="django")
        return
    fields: dict[str, Any] = {}
    try:
        fields = _fields_without_middleware(request, core.options)
    except Exception:
        logger.warning("errlink: could not read the request", exc_info=True, extra=INTERNAL)
    with new_scope() as scope:
        # No middleware scope: the report still continues the request's incoming trace.
        meta = getattr(request, "META", None)
        if scope.trace is None and isinstance(meta, dict):
            scope.trace = environ_trace(meta)
        core.capture_exception(exc, handled=False, mechanism="django", **fields)


def _fields_without_middleware(request: Any, options: Options) -> dict[str, Any]:
    # The middleware did not run for this request (MIDDLEWARE overridden, or a middleware
    # before ours failed): attach here what it would have put on the scope.
    lazy_request, user = _lazy_context(request, options)
    fields: dict[str, Any] = {"request": lazy_request}
    if user is not None:
        fields["user"] = user
    match = getattr(request, "resolver_match", None)
    if match is not None:
        name = transaction_name(_config.current, request, match.func)
        if name:
            fields["transaction"] = name
    return fields
