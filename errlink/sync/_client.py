"""The synchronous `Client`: builds events in the calling thread, sends from the loop thread."""

from __future__ import annotations

import concurrent.futures
import os
import sys
import threading
import time
import weakref
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .._assembly import assemble_core, reset_core_after_fork
from .._delivery.pipeline import Pipeline
from .._face import ClientFace
from .._log import INTERNAL, logger
from .._options import Hint, build_options
from . import _exit_paths, _warmup
from ._bridge import loop_thread, running_loop_thread

if TYPE_CHECKING:
    from typing_extensions import Self, Unpack

    from .._options import ClientOptions
    from .._wire.dsn import Dsn

_live_clients: weakref.WeakSet[Client] = weakref.WeakSet()


class Client(ClientFace):
    """An error-reporting client for synchronous code (any thread).

    Capturing builds the event in the calling thread and hands it to the process's background
    loop thread in O(1); it never waits for the network and never raises. `flush()` blocks the
    caller until what was captured before it is delivered or dropped, or the timeout passes.
    """

    def __init__(self, dsn: str | Dsn | None = None, **options: Unpack[ClientOptions]) -> None:
        self._started: Pipeline | None = None
        self._start_lock = threading.Lock()
        self._core = assemble_core(build_options(dsn, options), start=self._start_pipeline)
        self._closed = False
        _live_clients.add(self)
        pipeline = self._core.pipeline
        if pipeline is not None:
            # What is queued when the process ends through os._exit or SIGTERM is flushed or
            # written to the outbox then (see `_exit_paths.py`).
            _exit_paths.watch(self)
            # The loop thread imports the send path now, not at the first capture (and drains
            # what an earlier run left in the outbox without waiting for one).
            self._start_pipeline(pipeline)

    def capture_exception(
        self, exc: BaseException | None = None, **event_fields: Any
    ) -> str | None:
        """Report `exc` (default: the exception being handled). Returns the event id or None."""
        if self._closed:
            return None
        if exc is None:
            exc = sys.exc_info()[1]
        return self._core.capture_exception(exc, **event_fields)

    def capture_message(self, message: str, level: str = "info", **event_fields: Any) -> str | None:
        """Report a message at `level` (fatal, error, warning, info, debug, or a logging level
        name or number)."""
        if self._closed:
            return None
        stack_from = sys._getframe(1) if self.options.attach_stacktrace else None
        return self._core.capture_message(message, level, stack_from=stack_from, **event_fields)

    def capture_event(self, event: Mapping[str, Any], hint: Hint | None = None) -> str | None:
        """Report a hand-made event dict (completed with ids, scope and defaults)."""
        if self._closed:
            return None
        return self._core.capture_event(event, hint)

    def capture_feedback(
        self,
        message: str,
        name: str | None = None,
        email: str | None = None,
        associated_event_id: str | None = None,
    ) -> str | None:
        """Send what a person said (about the event `associated_event_id`, when given) as a
        `feedback` item. Returns its id, or None when it was not queued."""
        if self._closed:
            return None
        return self._core.capture_feedback(message, name, email, associated_event_id)

    def flush(self, timeout: float | None = None) -> bool:
        """Block until everything captured before this call is delivered or dropped.

        Returns False if `timeout` seconds (None: `shutdown_timeout`) passed first.
        """
        timeout = self.options.shutdown_timeout if timeout is None else timeout
        pipeline = self._core.pipeline
        if pipeline is None or self._started is not pipeline:
            return True  # nothing was ever submitted
        return self._run_on_loop("flush", lambda: pipeline.flush(timeout), timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Flush within `timeout` (default `shutdown_timeout`), then stop. Idempotent."""
        if self._closed:
            return True
        self._closed = True
        _live_clients.discard(self)
        _exit_paths.unwatch(self)
        timeout = self.options.shutdown_timeout if timeout is None else timeout
        pipeline = self._core.pipeline
        if pipeline is None or self._started is not pipeline:
            return True
        return self._run_on_loop("close", lambda: pipeline.aclose(timeout), timeout)

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------------------

    def _start_pipeline(self, pipeline: Pipeline) -> None:
        with self._start_lock:
            if self._started is pipeline:
                return
            self._started = pipeline
        thread = loop_thread()

        def start() -> None:
            try:
                pipeline.start(thread.loop)
            finally:
                _warmup.end()

        _warmup.begin()
        try:
            thread.call_soon(start)
        except BaseException:
            _warmup.end()
            raise

    def _run_on_loop(self, what: str, make_coro: Any, timeout: float) -> bool:
        thread = running_loop_thread()
        if thread is None:
            return self._core.snapshot().pending == 0
        try:
            return bool(thread.run(make_coro, timeout + 0.5))
        except concurrent.futures.TimeoutError:
            return False
        except RuntimeError as exc:
            logger.error("errlink: %s() failed: %s", what, exc, extra=INTERNAL)
            return False

    def _after_fork_in_child(self) -> None:
        self._start_lock = threading.Lock()
        self._started = None
        reset_core_after_fork(self._core)


def close_all(timeout: float | None = None) -> None:
    """Close every live sync client, sharing one deadline (used at interpreter exit)."""
    clients = list(_live_clients)
    if not clients:
        return
    budget = max(c.options.shutdown_timeout for c in clients) if timeout is None else timeout
    deadline = time.monotonic() + budget
    for client in clients:
        client.close(max(0.0, deadline - time.monotonic()))


def _after_fork_in_child() -> None:
    for client in list(_live_clients):
        client._after_fork_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)
