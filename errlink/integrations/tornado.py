"""Tornado integration: report uncaught handler errors with the request they happened in.

Usage: ``Errlink(app, dsn=...)``, then ``await errlink_ext.aclose()`` before `main()` returns.
The extension owns an `errlink.AsyncClient`, which runs on Tornado's IOLoop (asyncio), and hooks:

- an output transform (`Application.add_transform`), Tornado's per-request hook that runs before
  the handler's task starts: it gives the request a fresh scope bound to the client, with its
  `request` data built only if something is captured;
- `RequestHandler.log_exception`, which Tornado calls for every uncaught handler (and websocket
  callback) error: the exception is reported, then Tornado logs it and answers as usual. There is
  no application-level hook for this, so with ``every_handler=True`` (the default) the method is
  wrapped once per process, acting only for applications with an extension; otherwise handlers
  mix in `ErrlinkMixin`;
- `IOLoop.start`, wrapped once per process: when a loop started with it stops (`IOLoop.stop()`,
  the end of `run_sync`), the clients running on it are flushed before `start()` returns. Under
  `asyncio.run` the loop is not started this way, and asyncio cancels errlink's sender tasks as
  soon as `main()` returns: hence the explicit `aclose()` there.

`HTTPError` is reported when its status is in `capture_status_codes` (default 500-599).
"""

from __future__ import annotations

import asyncio
import functools
import weakref
from collections.abc import Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ._async_web import AsyncWebIntegration, content_length, qualified_name
from ._framework import require
from ._http_errors import DEFAULT_CAPTURE_STATUS_CODES, is_reported
from ._lazy import build_request, framework_request
from ._request import body_data, request_interface
from ._sdk import (
    INTERNAL,
    ClientCore,
    ClientOptions,
    Dsn,
    Scope,
    enter_own_scope,
    logger,
    request_ended,
)

require("tornado", distribution="tornado", extra="tornado", minimum=(6, 2))

from tornado.httputil import HTTPHeaders, HTTPServerRequest  # noqa: E402
from tornado.platform.asyncio import BaseAsyncIOLoop  # noqa: E402
from tornado.web import Application, HTTPError, OutputTransform, RequestHandler  # noqa: E402

if TYPE_CHECKING:
    from typing_extensions import Unpack


__all__ = ["Errlink", "ErrlinkMixin"]

_extensions: weakref.WeakKeyDictionary[Application, Errlink] = weakref.WeakKeyDictionary()
_HOOK_MARK = "__errlink_hook__"


class Errlink(AsyncWebIntegration):
    """The Tornado extension, one per application.

    Takes `dsn` and every client option (`environment=`, `send_default_pii=`,
    `max_request_body_size=`, ...), validated here, plus:

    - `capture_status_codes`: statuses whose `HTTPError` is reported (default
      ``range(500, 600)``; add 404 to see unknown URLs and ``HTTPError(404)``);
    - `every_handler`: report from every handler of the app (default True), else only from
      handlers that mix in `ErrlinkMixin`.

    `client` is the `AsyncClient`; it starts on the IOLoop at its first event. Under
    `asyncio.run`, call ``await aclose()`` before `main()` returns so queued events are
    delivered; a loop run by `IOLoop.start()` flushes the client itself when it stops.
    """

    name = "tornado"

    def __init__(
        self,
        app: Application | None = None,
        dsn: str | Dsn | None = None,
        *,
        capture_status_codes: Iterable[int] = DEFAULT_CAPTURE_STATUS_CODES,
        every_handler: bool = True,
        **options: Unpack[ClientOptions],
    ) -> None:
        super().__init__(dsn, capture_status_codes, options)
        if not isinstance(every_handler, bool):
            raise TypeError(f"option 'every_handler' must be True or False, not {every_handler!r}")
        self.every_handler = every_handler
        self.client = self.new_client()
        self.app: Application | None = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Application) -> None:
        if self.app is not None:
            raise RuntimeError("this Errlink extension already serves another application")
        if app in _extensions:
            raise RuntimeError("this application already has an Errlink extension")
        self.app = app
        _extensions[app] = self
        app.add_transform(_request_scope_transform(self))
        _hook_loop_start()
        if self.every_handler:
            _hook_every_handler()

    @staticmethod
    def of(app: Application) -> Errlink | None:
        """The extension set up for `app`, if any."""
        return _extensions.get(app)

    async def flush(self, timeout: float | None = None) -> bool:
        """Wait (up to `timeout` seconds) until queued events are delivered."""
        client = self.client
        return True if client is None else await client.flush(timeout)

    async def aclose(self, timeout: float | None = None) -> bool:
        """Flush within `timeout` (default: the client's `shutdown_timeout`), then close."""
        client = self.client
        return True if client is None else await client.aclose(timeout)

    def runs_on(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Whether the client's pipeline started on `loop`."""
        pipeline = None if self.client is None else self.client.core.pipeline
        return pipeline is not None and pipeline.loop is loop

    def report(self, handler: RequestHandler, exc: BaseException | None) -> None:
        """Report `exc`, uncaught in `handler`, unless it is an HTTPError with a quiet status."""
        if not isinstance(exc, Exception):
            return  # a cancelled websocket callback, say: not an error of the application
        try:
            status = exc.status_code if isinstance(exc, HTTPError) else None
            if not is_reported(status, self.capture_status_codes):
                return
            data = build_request(_request_data, handler.request, self.max_request_body_bytes)
            self.capture_unhandled_now(exc, data, qualified_name(type(handler)))
        except Exception:
            logger.warning(
                "errlink: could not report a Tornado error", exc_info=True, extra=INTERNAL
            )

    def begin_request(self, request: HTTPServerRequest) -> tuple[ClientCore, Scope] | None:
        core = self.active_core()
        if core is None:
            return None
        own = framework_request(request, _request_data, self.max_request_body_bytes)
        enter_own_scope(own, core)  # the handler's task copies this context; nothing to undo
        return core, own


class ErrlinkMixin(RequestHandler):
    """Reports this handler's uncaught errors to its application's `Errlink` extension.

    Only needed with ``Errlink(app, every_handler=False)``; list it first among the bases::

        class OrderHandler(ErrlinkMixin, tornado.web.RequestHandler): ...

    A handler that overrides `log_exception` itself must call ``super().log_exception(...)``.
    """

    def log_exception(
        self,
        typ: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        extension = _extensions.get(self.application)
        if extension is not None:
            extension.report(self, value)
        super().log_exception(typ, value, tb)


def _request_scope_transform(extension: Errlink) -> type[OutputTransform]:
    class ErrlinkRequestScope(OutputTransform):
        """Passes the output through; exists for its constructor.

        Tornado builds the transforms of a request right before it starts the handler's task,
        in the context that task copies: what is set here is what the handler sees.
        """

        def __init__(self, request: HTTPServerRequest) -> None:
            super().__init__(request)
            self._session: tuple[ClientCore, Scope] | None = None
            try:
                begun = extension.begin_request(request)
                if begun is not None and begun[1].outcome >= 0:
                    self._session = begun  # release health: count the request when it ends
            except Exception:
                logger.warning(
                    "errlink: could not set up a request's scope", exc_info=True, extra=INTERNAL
                )

        def transform_first_chunk(
            self, status_code: int, headers: HTTPHeaders, chunk: bytes, finishing: bool
        ) -> tuple[int, HTTPHeaders, bytes]:
            if finishing and self._session is not None:
                request_ended(*self._session)
            return status_code, headers, chunk

        def transform_chunk(self, chunk: bytes, finishing: bool) -> bytes:
            if finishing and self._session is not None:
                request_ended(*self._session)
            return chunk

    return ErrlinkRequestScope


def _hook_every_handler() -> None:
    wrapped = RequestHandler.log_exception
    if getattr(wrapped, _HOOK_MARK, False):
        return

    @functools.wraps(wrapped)
    def log_exception(
        self: RequestHandler,
        typ: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        extension = _extensions.get(self.application)
        if extension is not None and extension.every_handler:
            extension.report(self, value)
        wrapped(self, typ, value, tb)

    setattr(log_exception, _HOOK_MARK, True)
    RequestHandler.log_exception = log_exception  # type: ignore[method-assign]


def _hook_loop_start() -> None:
    wrapped = BaseAsyncIOLoop.start
    if getattr(wrapped, _HOOK_MARK, False):
        return

    @functools.wraps(wrapped)
    def start(self: BaseAsyncIOLoop) -> None:
        try:
            wrapped(self)
        finally:
            _flush_on_stop(self.asyncio_loop)

    setattr(start, _HOOK_MARK, True)
    BaseAsyncIOLoop.start = start  # type: ignore[method-assign]


def _flush_on_stop(loop: asyncio.AbstractEventLoop) -> None:
    """Deliver what the clients on `loop` still hold, now that `IOLoop.start()` returns.

    A flush, not a close: the loop may be started again (`run_sync`, Tornado's test cases).
    """
    if loop.is_running() or loop.is_closed():
        return
    extensions = [ext for ext in list(_extensions.values()) if ext.runs_on(loop)]
    if not extensions:
        return

    async def flush_all() -> None:
        await asyncio.gather(*(ext.flush(ext.options.shutdown_timeout) for ext in extensions))

    try:
        loop.run_until_complete(flush_all())
    except Exception:
        logger.warning(
            "errlink: could not flush when the IOLoop stopped", exc_info=True, extra=INTERNAL
        )


def _request_data(request: HTTPServerRequest, max_bytes: int | None) -> dict[str, Any]:
    headers = request.headers
    body = request.body if isinstance(request.body, bytes) else None  # a future when streamed
    return request_interface(
        url=f"{request.protocol}://{request.host}{request.path}",
        method=request.method or "GET",
        query_string=request.query,
        headers=headers.get_all(),
        cookies=headers.get("Cookie"),
        data=body_data(
            body,
            content_type=headers.get("Content-Type"),
            content_length=content_length(headers.get("Content-Length")),
            max_bytes=max_bytes,
        ),
        remote_addr=request.remote_ip,
    )
