"""Errors of asyncio tasks nobody awaited, reported when they happen.

An exception in a task that nothing awaits only reaches asyncio's "Task exception was never
retrieved" log line, and only once the task is garbage-collected, which may be never. An
`AsyncClient` watches its loop for these:

- a task factory (chained to the one installed before, if any) adds a done callback to every
  task created where the client is bound (inside ``async with client``, an integration's
  request, an ASGI lifespan): a server's own tasks, created where nothing is bound, cost one
  check. When a task ends with an exception, the callback waits `GRACE` seconds: an awaiter, a
  `gather` or a `wait` caller that reads the result takes it within that time. If nobody did,
  the exception is reported, with mechanism ``asyncio``, and left unretrieved, so that asyncio
  still logs it as before;
- the loop's exception handler (chained to the previous one, which still runs) reports the
  exception of anything else the loop reports: an exception in a callback, a protocol, or a task
  collected before the grace ended. The client's dedupe makes one event of each exception,
  whichever path sees it first; the logging handler, whatever client it reports to, skips
  asyncio's log line for an exception reported here.

`uninstall` puts the previous factory and handler back when they are still the loop's ones;
otherwise ours stay in the chain as pass-throughs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Generator
from typing import Any

from ._capture.core import ClientCore
from ._capture.dedupe import mark_task_error_reported
from ._capture.scope import current_scope
from ._log import INTERNAL, logger

# Long enough for an awaiter woken by the task's end to read its result, even a caller of
# `asyncio.wait` that looks at the finished set on its next step.
GRACE = 0.05

Report = Callable[[BaseException], object]
TaskFactory = Callable[..., "asyncio.Future[Any]"]
ExceptionHandler = Callable[[asyncio.AbstractEventLoop, dict[str, Any]], object]


class TaskErrorWatch:
    """Reports failures of tasks nobody awaited on `loop`, created where `client` is bound,
    through `report`."""

    def __init__(self, loop: asyncio.AbstractEventLoop, report: Report, client: ClientCore) -> None:
        self._loop = loop
        self._report = report
        self._client = client
        self._active = False
        self._previous_factory: TaskFactory | None = None
        self._previous_handler: ExceptionHandler | None = None
        self._new_task: TaskFactory | None = None

    def install(self) -> None:
        loop = self._loop
        self._previous_factory = loop.get_task_factory()
        self._previous_handler = loop.get_exception_handler()
        self._new_task = self._task_factory()
        loop.set_task_factory(self._new_task)
        loop.set_exception_handler(self._on_loop_error)
        self._active = True

    def uninstall(self) -> None:
        """Restore what `install` replaced, unless something replaced it after us."""
        self._active = False
        loop = self._loop
        if loop.is_closed():
            return
        if loop.get_task_factory() is self._new_task:
            loop.set_task_factory(self._previous_factory)
        if loop.get_exception_handler() == self._on_loop_error:
            loop.set_exception_handler(self._previous_handler)

    # -- the task factory -----------------------------------------------------------------------

    def _task_factory(self) -> TaskFactory:
        # A closure over what it reads: it runs for every task the loop creates (a server's
        # task per request included), so its common path is a call and one check.
        previous = self._previous_factory
        client = self._client
        on_done = self._on_task_done
        scope = current_scope
        new_task_of_class = asyncio.Task
        watch = self

        def new_task(
            loop: asyncio.AbstractEventLoop,
            coro: Coroutine[Any, Any, Any] | Generator[Any, None, Any],
            context: Any = None,
            **kwargs: Any,
        ) -> asyncio.Future[Any]:
            if context is not None:
                kwargs["context"] = context
            if previous is not None:
                task = previous(loop, coro, **kwargs)
            elif kwargs:
                task = new_task_of_class(coro, loop=loop, **kwargs)
            else:  # a server's task per request (uvloop passes ``context=None``): no merging
                task = new_task_of_class(coro, loop=loop)
            if scope().client is client and watch._active:
                task.add_done_callback(on_done)
            return task

        return new_task

    def _on_task_done(self, task: asyncio.Future[Any]) -> None:
        # `_log_traceback` is asyncio's own "nobody retrieved the exception yet" flag; reading it
        # (unlike `exception()`) leaves the task as it is.
        if self._active and getattr(task, "_log_traceback", False):
            self._loop.call_later(GRACE, self._check, task)

    def _check(self, task: asyncio.Future[Any]) -> None:
        if not getattr(task, "_log_traceback", False):
            return  # somebody took the exception meanwhile
        exc = getattr(task, "_exception", None)
        if isinstance(exc, BaseException):
            self._safely_report(exc)

    # -- the loop's exception handler -------------------------------------------------------------

    def _on_loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if self._active and isinstance(exc, Exception):
            self._safely_report(exc)
        previous = self._previous_handler
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    def _safely_report(self, exc: BaseException) -> None:
        try:
            self._report(exc)
            mark_task_error_reported(exc)
        except Exception:
            logger.warning(
                "errlink: could not report an asyncio task's error", exc_info=True, extra=INTERNAL
            )
