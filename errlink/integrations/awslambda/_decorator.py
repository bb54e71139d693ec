"""`report_errors`: the process default client at cold start, and the handler's wrapper."""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar, overload

from .._sdk import (
    Client,
    ClientOptions,
    Dsn,
    build_options,
    default_client,
    ensure_default_client,
    isolated_scope,
)
from ._invocation import INTEGRATION, Invocation, Settings
from ._loop import run

if TYPE_CHECKING:
    from typing_extensions import Unpack


Handler = TypeVar("Handler", bound=Callable[..., Any])


@overload
def report_errors(handler: Handler, /) -> Handler: ...


@overload
def report_errors(
    handler: None = None,
    /,
    *,
    dsn: str | Dsn | None = None,
    timeout_warning: bool = True,
    timeout_warning_margin: float = 1.0,
    include_event: bool = True,
    logging_event_level: int | str | None = logging.ERROR,
    logging_breadcrumb_level: int | str | None = logging.INFO,
    **options: Unpack[ClientOptions],
) -> Callable[[Handler], Handler]: ...


def report_errors(
    handler: Callable[..., Any] | None = None,
    /,
    *,
    dsn: str | Dsn | None = None,
    timeout_warning: bool = True,
    timeout_warning_margin: float = 1.0,
    include_event: bool = True,
    logging_event_level: int | str | None = logging.ERROR,
    logging_breadcrumb_level: int | str | None = logging.INFO,
    **options: Unpack[ClientOptions],
) -> Any:
    """Decorate a Lambda handler: ``@report_errors`` or ``@report_errors(dsn=..., ...)``.

    At decoration (the cold start) this calls ``errlink.init(dsn, **options)``, unless neither
    `dsn` nor any option is given and ``errlink.init()`` already ran; with no DSN anywhere
    (argument, ``ERRLINK_DSN`` or ``SENTRY_DSN``) the wrapper only calls the handler.
    `timeout_warning` reports a warning `timeout_warning_margin` seconds before the
    invocation's deadline. `include_event` attaches the incoming event. ``async def``
    handlers run on an event loop kept for the life of the process.
    """
    if timeout_warning_margin < 0:
        raise ValueError(
            f"timeout_warning_margin must be >= 0 seconds, not {timeout_warning_margin!r}"
        )
    settings = Settings(timeout_warning, float(timeout_warning_margin), include_event)
    explicit = (
        dsn is not None
        or bool(options)
        or logging_event_level != logging.ERROR
        or logging_breadcrumb_level != logging.INFO
    )
    if explicit:
        build_options(dsn, options)  # fail at import time, before the first invocation

    def decorate(function: Handler) -> Handler:
        ensure_default_client(
            INTEGRATION,
            dsn,
            replace=explicit,
            logging_event_level=logging_event_level,
            logging_breadcrumb_level=logging_breadcrumb_level,
            **options,
        )
        if inspect.iscoroutinefunction(function):
            return _wrap_async(function, settings)  # type: ignore[return-value]
        return _wrap_sync(function, settings)  # type: ignore[return-value]

    return decorate if handler is None else decorate(handler)


def _active_client() -> Client | None:
    client = default_client()
    return client if client is not None and client.enabled else None


def _wrap_sync(handler: Callable[[Any, Any], Any], settings: Settings) -> Callable[..., Any]:
    @functools.wraps(handler)
    def invoke(event: Any, context: Any, *args: Any, **kwargs: Any) -> Any:
        client = _active_client()
        if client is None:
            return handler(event, context, *args, **kwargs)
        with isolated_scope():
            invocation = Invocation(client, event, context, settings)
            try:
                return handler(event, context, *args, **kwargs)
            except Exception as exc:
                invocation.report(exc)
                raise
            finally:
                invocation.finish()

    return invoke


def _wrap_async(
    handler: Callable[[Any, Any], Awaitable[Any]], settings: Settings
) -> Callable[..., Any]:
    @functools.wraps(handler)
    def invoke(event: Any, context: Any, *args: Any, **kwargs: Any) -> Any:
        client = _active_client()
        if client is None:
            return run(handler(event, context, *args, **kwargs))
        with isolated_scope():
            invocation = Invocation(client, event, context, settings)

            async def reporting() -> Any:
                # Captured inside the handler's task, whose scope holds what the handler set.
                try:
                    return await handler(event, context, *args, **kwargs)
                except Exception as exc:
                    invocation.report(exc)
                    raise

            try:
                return run(reporting())
            finally:
                invocation.finish()

    return invoke
