"""AWS Lambda: report a handler's exceptions and deliver them before the runtime freezes.

`report_errors` wraps a handler (a plain function or an ``async def``). Each invocation runs in
a fresh scope carrying ``contexts.aws_lambda`` and the incoming event (API Gateway and function
URL events as a ``request``). An exception is captured and re-raised unchanged. Before the
invocation returns, the client is flushed, for no longer than the invocation has left: once
the handler returns, the runtime may freeze the process, and an event still queued would only
leave with the next invocation, if there is one. Optionally a warning is reported when an
invocation is about to time out, with the handler's stack at that moment.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import contextvars
import functools
import inspect
import logging
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, overload
from urllib.parse import urlencode

from .._core import INTERNAL, ClientCore
from .._options import build_options
from .._scope import isolated_scope, set_context, set_extra, set_request, set_transaction
from ..sync import Client, default_client, init
from ._request import body_data, header_dict, request_interface, to_text

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .._dsn import Dsn
    from .._options import ClientOptions

logger = logging.getLogger("errlink")

INTEGRATION = "aws_lambda"
Handler = TypeVar("Handler", bound=Callable[..., Any])
# The runtime needs a moment after the handler returns to post the response.
_RESPONSE_RESERVE_SECONDS = 0.1


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
    settings = _Settings(timeout_warning, float(timeout_warning_margin), include_event)
    explicit = (
        dsn is not None
        or bool(options)
        or logging_event_level != logging.ERROR
        or logging_breadcrumb_level != logging.INFO
    )
    if explicit:
        build_options(dsn, options)  # fail at import time, before the first invocation

    def decorate(function: Handler) -> Handler:
        if explicit or default_client() is None:
            init(
                dsn,
                logging_event_level=logging_event_level,
                logging_breadcrumb_level=logging_breadcrumb_level,
                **options,
            )
        client = default_client()
        if client is not None and client.enabled:
            client.core.add_integration(INTEGRATION)
        if inspect.iscoroutinefunction(function):
            return _wrap_async(function, settings)  # type: ignore[return-value]
        return _wrap_sync(function, settings)  # type: ignore[return-value]

    return decorate if handler is None else decorate(handler)


class _Settings:
    __slots__ = ("include_event", "timeout_warning", "timeout_warning_margin")

    def __init__(self, timeout_warning: bool, margin: float, include_event: bool) -> None:
        self.timeout_warning = timeout_warning
        self.timeout_warning_margin = margin
        self.include_event = include_event


def _active_client() -> Client | None:
    client = default_client()
    return client if client is not None and client.enabled else None


def _wrap_sync(handler: Callable[[Any, Any], Any], settings: _Settings) -> Callable[..., Any]:
    @functools.wraps(handler)
    def invoke(event: Any, context: Any, *args: Any, **kwargs: Any) -> Any:
        client = _active_client()
        if client is None:
            return handler(event, context, *args, **kwargs)
        with isolated_scope():
            invocation = _Invocation(client, event, context, settings)
            try:
                return handler(event, context, *args, **kwargs)
            except Exception as exc:
                invocation.report(exc)
                raise
            finally:
                invocation.finish()

    return invoke


def _wrap_async(
    handler: Callable[[Any, Any], Awaitable[Any]], settings: _Settings
) -> Callable[..., Any]:
    @functools.wraps(handler)
    def invoke(event: Any, context: Any, *args: Any, **kwargs: Any) -> Any:
        client = _active_client()
        if client is None:
            return _run(handler(event, context, *args, **kwargs))
        with isolated_scope():
            invocation = _Invocation(client, event, context, settings)

            async def reporting() -> Any:
                # Captured inside the handler's task, whose scope holds what the handler set.
                try:
                    return await handler(event, context, *args, **kwargs)
                except Exception as exc:
                    invocation.report(exc)
                    raise

            try:
                return _run(reporting())
            finally:
                invocation.finish()

    return invoke


class _Invocation:
    """One invocation's scope data, timeout watch and final flush. Never raises."""

    def __init__(self, client: Client, event: Any, context: Any, settings: _Settings) -> None:
        self.client = client
        self.context = context
        self.started = time.monotonic()
        self.deadline = _deadline(context)
        self.timer: threading.Timer | None = None
        self.function_name = ""
        try:
            self.function_name = to_text(getattr(context, "function_name", None) or "")
            if self.function_name:
                set_transaction(self.function_name)
            set_context(INTEGRATION, self.lambda_context())
            if settings.include_event:
                _attach_event(event, client.core)
            if settings.timeout_warning:
                self._watch_timeout(settings.timeout_warning_margin)
        except Exception:
            logger.warning(
                "errlink: could not prepare the Lambda scope", exc_info=True, extra=INTERNAL
            )

    def lambda_context(self) -> dict[str, Any]:
        context = self.context
        info: dict[str, Any] = {}
        for name in (
            "function_name",
            "function_version",
            "invoked_function_arn",
            "aws_request_id",
            "log_group_name",
            "log_stream_name",
        ):
            value = getattr(context, name, None)
            if value is not None:
                info[name] = to_text(value)
        memory = getattr(context, "memory_limit_in_mb", None)
        if memory is not None:
            info["memory_limit_in_mb"] = int(memory) if str(memory).isdigit() else to_text(memory)
        remaining = _remaining_seconds(self.deadline)
        if remaining is not None:
            info["remaining_time_in_millis"] = int(remaining * 1000)
        info["execution_duration_in_millis"] = int((time.monotonic() - self.started) * 1000)
        return info

    def report(self, exc: BaseException) -> None:
        try:
            contexts = {INTEGRATION: self.lambda_context()}
        except Exception:
            contexts = {}
        self.client.core.capture_exception(
            exc, handled=False, mechanism=INTEGRATION, contexts=contexts
        )

    def finish(self) -> None:
        timer = self.timer
        if timer is not None:
            timer.cancel()
        self._flush()

    def _flush(self) -> None:
        try:
            budget = self.client.options.shutdown_timeout
            remaining = _remaining_seconds(self.deadline)
            if remaining is not None:
                budget = min(budget, remaining - _RESPONSE_RESERVE_SECONDS)
            if budget > 0:
                self.client.flush(budget)
        except Exception:
            logger.warning("errlink: flush at the end of the invocation failed", extra=INTERNAL)

    def _watch_timeout(self, margin: float) -> None:
        remaining = _remaining_seconds(self.deadline)
        if remaining is None or remaining <= margin:
            return
        handler_thread = threading.get_ident()
        scope = contextvars.copy_context()  # the timer thread reports with this invocation's scope
        timer = threading.Timer(
            remaining - margin, lambda: scope.run(self._warn_timeout, handler_thread)
        )
        timer.name = "errlink-lambda-timeout"
        timer.daemon = True
        self.timer = timer
        timer.start()

    def _warn_timeout(self, handler_thread: int) -> None:
        try:
            core: ClientCore = self.client.core
            name = self.function_name or "the Lambda function"
            core.capture_message(
                f"{name} is about to time out",
                "warning",
                stack_from=sys._current_frames().get(handler_thread),
                contexts={INTEGRATION: self.lambda_context()},
                tags={"aws_lambda.timeout_warning": "true"},
            )
            self._flush()
        except Exception:
            logger.warning("errlink: Lambda timeout warning failed", exc_info=True, extra=INTERNAL)


def _deadline(context: Any) -> float | None:
    """The invocation's deadline on the monotonic clock, from the runtime's remaining time."""
    remaining_ms = getattr(context, "get_remaining_time_in_millis", None)
    if not callable(remaining_ms):
        return None
    try:
        return time.monotonic() + float(remaining_ms()) / 1000
    except Exception:
        return None


def _remaining_seconds(deadline: float | None) -> float | None:
    return None if deadline is None else deadline - time.monotonic()


# -- the incoming event --------------------------------------------------------------------------


def _attach_event(event: Any, core: ClientCore) -> None:
    request = _http_request(event, core.options.max_request_body_bytes) if _is_http(event) else None
    if request is not None:
        set_request(request)
    elif event is not None:
        set_extra("aws_lambda_event", event)  # a reference: scrubbed and bounded if sent


def _is_http(event: Any) -> bool:
    if not isinstance(event, Mapping):
        return False
    http = event.get("requestContext", {})
    http = http.get("http") if isinstance(http, Mapping) else None
    return isinstance(event.get("httpMethod"), str) or isinstance(http, Mapping)


def _http_request(event: Mapping[str, Any], max_body_bytes: int | None) -> dict[str, Any]:
    """The `request` of an API Gateway (REST or HTTP API), function URL or ALB event."""
    request_context = event.get("requestContext") or {}
    http = request_context.get("http") or {}  # HTTP API (payload 2.0) and function URLs
    headers = header_dict(event.get("headers") or {})
    lower = {name.lower(): value for name, value in headers.items()}
    method = http.get("method") or event.get("httpMethod") or "GET"
    path = event.get("rawPath") or event.get("path") or http.get("path") or "/"
    host = lower.get("host") or request_context.get("domainName") or "localhost"
    scheme = lower.get("x-forwarded-proto", "https").split(",")[0].strip() or "https"
    if "rawQueryString" in event:
        query = event.get("rawQueryString") or ""
    else:
        multi = event.get("multiValueQueryStringParameters")
        single = event.get("queryStringParameters")
        pairs = (
            [(key, value) for key, values in multi.items() for value in values or ()]
            if isinstance(multi, Mapping)
            else list(single.items())
            if isinstance(single, Mapping)
            else []
        )
        query = urlencode(pairs)
    cookies = event.get("cookies")
    identity = request_context.get("identity") or {}
    body = event.get("body")
    raw: bytes | str | None = body if isinstance(body, str) else None
    if raw is not None and event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(raw)
        except ValueError:
            pass  # keep the text as sent
    content_length = len(raw.encode("utf-8") if isinstance(raw, str) else raw) if raw else None
    return request_interface(
        url=f"{scheme}://{host}{path}",
        method=method,
        query_string=query,
        headers=headers,
        cookies="; ".join(map(str, cookies)) if isinstance(cookies, list) else lower.get("cookie"),
        data=body_data(
            raw,
            content_type=lower.get("content-type"),
            content_length=content_length,
            max_bytes=max_body_bytes,
        ),
        remote_addr=http.get("sourceIp") or identity.get("sourceIp"),
    )


# -- async handlers ------------------------------------------------------------------------------


class _Loops(threading.local):
    loop: asyncio.AbstractEventLoop | None = None


_loops = _Loops()
_created: list[asyncio.AbstractEventLoop] = []


def _run(coroutine: Awaitable[Any]) -> Any:
    """Run on a loop kept across invocations (one per thread): clients bound to it stay usable
    in warm invocations."""
    loop = _loops.loop
    if loop is None or loop.is_closed():
        loop = _loops.loop = asyncio.new_event_loop()
        _created.append(loop)
    return loop.run_until_complete(coroutine)


@atexit.register
def _close_loops() -> None:
    for loop in _created:
        if not loop.is_closed() and not loop.is_running():
            loop.close()
