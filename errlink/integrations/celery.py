"""Celery: report failing tasks, one scope per task, logging as breadcrumbs.

`setup(app)` connects receivers to Celery's own signals. The client is created in the worker
process (``worker_init``, and ``worker_process_init`` for pool children started as fresh
interpreters); forked pool children inherit it and start their own pipeline on first use, so
nothing is sent from a producer process that merely imports the app. Every task runs in a fresh
scope entered at ``task_prerun`` and left at ``task_postrun``, in the thread that runs the task,
and in the trace of the code that sent it (``before_task_publish`` adds the trace headers).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import logging
import threading
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ._celery_beat import BeatMonitors
from ._framework import require
from ._sdk import (
    INTERNAL,
    ClientOptions,
    Dsn,
    IncomingTrace,
    TraceSource,
    build_options,
    current_client,
    current_scope,
    default_client,
    ensure_default_client,
    isolated_scope,
    logger,
    set_context,
    set_tag,
    set_transaction,
    trace_headers,
)
from .logging import EventHandler, level_number

if TYPE_CHECKING:
    from typing_extensions import Unpack


INTEGRATION = "celery"
TASK_LOGGER = "celery.task"  # Celery's task loggers hang below it and do not propagate to root
_TRACE_HEADERS = ("sentry-trace", "traceparent")
_installed: weakref.WeakKeyDictionary[Any, CeleryIntegration] = weakref.WeakKeyDictionary()


def setup(
    app: Any,
    dsn: str | Dsn | None = None,
    *,
    capture_retries: bool = False,
    capture_expected: bool = False,
    include_args: bool = True,
    monitor_beat_tasks: bool = False,
    logging_event_level: int | str | None = logging.ERROR,
    logging_breadcrumb_level: int | str | None = logging.INFO,
    **options: Unpack[ClientOptions],
) -> CeleryIntegration:
    """Report the failing tasks of the Celery `app`; returns the installed integration.

    In the worker process this calls ``errlink.init(dsn, **options)`` when the worker starts,
    unless neither `dsn` nor any option is given and ``errlink.init()`` already ran there.
    A task that raises is reported once, with ``contexts.celery``; exceptions listed in the
    task's ``throws`` are left out unless `capture_expected`, and the exception behind each
    retry is reported (as a warning) only with `capture_retries`. Log records from tasks at
    `logging_event_level` and above become events, those at `logging_breadcrumb_level` and
    above breadcrumbs (None turns either off). With `monitor_beat_tasks`, every task Celery
    beat sends is a cron monitor run (slug from the task name, schedule from the beat entry):
    ``in_progress`` when it starts, ``ok`` or ``error`` with its duration when it ends.
    Calling `setup` again for the same app replaces the previous integration.
    """
    require("celery", distribution="celery", extra="celery", minimum=(5, 3))
    if not isinstance(monitor_beat_tasks, bool):
        raise TypeError(f"monitor_beat_tasks must be True or False, not {monitor_beat_tasks!r}")
    celery = _CeleryParts()
    if isinstance(app, celery.local.Proxy):
        app = app._get_current_object()
    client_args = (dsn, dict(options)) if dsn is not None or options else None
    if client_args is not None:
        build_options(dsn, options)  # bad options fail here, at import, not in the worker
    integration = CeleryIntegration(
        celery,
        app,
        client_args=client_args,
        capture_retries=capture_retries,
        capture_expected=capture_expected,
        include_args=include_args,
        monitor_beat_tasks=monitor_beat_tasks,
        event_level=level_number("logging_event_level", logging_event_level),
        breadcrumb_level=level_number("logging_breadcrumb_level", logging_breadcrumb_level),
    )
    previous = _installed.get(app)
    if previous is not None:
        previous.disconnect()
    _installed[app] = integration
    integration.connect()
    return integration


class _CeleryParts:
    """The Celery modules used here (``celery`` itself loads its submodules lazily)."""

    def __init__(self) -> None:
        self.signals = importlib.import_module("celery.signals")
        self.exceptions = importlib.import_module("celery.exceptions")
        self.local = importlib.import_module("celery.local")
        self.current_app = importlib.import_module("celery").current_app


class _OpenScopes(threading.local):
    def __init__(self) -> None:
        self.stack: list[tuple[str, contextlib.AbstractContextManager[Any]]] = []


class CeleryIntegration:
    """The signal receivers `setup` connects for one app. Use `setup` to create it."""

    def __init__(
        self,
        celery: _CeleryParts,
        app: Any,
        *,
        client_args: tuple[str | Dsn | None, dict[str, Any]] | None,
        capture_retries: bool,
        capture_expected: bool,
        include_args: bool,
        event_level: int | None,
        monitor_beat_tasks: bool = False,
        breadcrumb_level: int | None,
    ) -> None:
        self.app = app
        self.capture_retries = capture_retries
        self.capture_expected = capture_expected
        self.include_args = include_args
        self._beat_monitors = BeatMonitors() if monitor_beat_tasks else None
        self._client_args = client_args
        self._client_started = False
        self._scopes = _OpenScopes()
        self._log_handler: EventHandler | None = (
            EventHandler(event_level=event_level, breadcrumb_level=breadcrumb_level)
            if event_level is not None or breadcrumb_level is not None
            else None
        )
        self._log_targets: list[logging.Logger] = []
        self._connected: list[tuple[Any, str]] = []
        self._signals = celery.signals
        self._current_app = celery.current_app
        self._never_errors: tuple[type[BaseException], ...] = (
            celery.exceptions.Retry,
            celery.exceptions.Ignore,
            celery.exceptions.Reject,
        )

    # -- wiring --------------------------------------------------------------------------------

    def connect(self) -> None:
        signals = self._signals
        receivers = {
            "before_task_publish": self._on_before_task_publish,
            "worker_init": self._on_worker_init,
            "worker_process_init": self._on_worker_process_init,
            "worker_ready": self._on_worker_ready,
            "task_prerun": self._on_task_prerun,
            "task_postrun": self._on_task_postrun,
            "task_failure": self._on_task_failure,
            "task_retry": self._on_task_retry,
            "worker_shutdown": self._on_worker_shutdown,
            "worker_process_shutdown": self._on_worker_shutdown,
        }
        if self._beat_monitors is not None:
            receivers["beat_init"] = self._on_beat_init
        for name, receiver in receivers.items():
            signal = getattr(signals, name)
            uid = f"errlink.celery.{id(self)}.{name}"
            signal.connect(receiver, weak=False, dispatch_uid=uid)
            self._connected.append((signal, uid))

    def disconnect(self) -> None:
        """Disconnect the signal receivers and remove the logging handler (the client stays)."""
        for signal, uid in self._connected:
            signal.disconnect(dispatch_uid=uid)
        self._connected.clear()
        for target in self._log_targets:
            if self._log_handler is not None:
                target.removeHandler(self._log_handler)
        self._log_targets.clear()
        if _installed.get(self.app) is self:
            del _installed[self.app]

    def _start_client(self) -> None:
        if self._client_started:  # also true in forked pool children: the client came along
            return
        self._client_started = True
        dsn, options = self._client_args or (None, {})
        ensure_default_client(
            INTEGRATION,
            dsn,
            replace=self._client_args is not None,
            # Logging is hooked by this integration, which also reaches Celery's task loggers.
            logging_event_level=None,
            logging_breadcrumb_level=None,
            **options,
        )
        self._attach_logging_everywhere()

    def _attach_logging_everywhere(self) -> None:
        self._attach_logging(logging.getLogger())
        self._attach_logging(logging.getLogger(TASK_LOGGER))

    def _attach_logging(self, target: logging.Logger) -> None:
        handler = self._log_handler
        client = default_client()
        if (
            handler is None
            or not self._client_started
            or client is None
            or not client.enabled
            or _reaches_event_handler(target)
        ):
            return
        target.addHandler(handler)
        self._log_targets.append(target)

    def _owns(self, task: Any) -> bool:
        return self._is_our_app(getattr(task, "app", None))

    def _is_our_app(self, app: Any) -> bool:
        # A pool child started as a fresh interpreter unpickles its own copy of the app, with
        # the same main name, and runs the tasks bound to that copy.
        if app is self.app:
            return True
        main = getattr(self.app, "main", None)
        return main is not None and getattr(app, "main", None) == main

    # -- receivers (Celery logs anything they raise; they never raise) -------------------------

    def _on_worker_init(self, sender: Any = None, **_: Any) -> None:
        if self._is_our_app(getattr(sender, "app", None)):
            self._guarded("worker_init", self._start_client)

    # The `celery worker` command sets up logging after worker_init, removing the root
    # logger's handlers (or letting the app's `setup_logging` receiver replace them all), so
    # the handler is attached again where tasks run: in each pool child, and in the main
    # process (solo and threads pools) once the worker is ready.

    def _on_worker_process_init(self, **_: Any) -> None:
        # Only pool children started as fresh interpreters get here without a client.
        if self._is_our_app(self._current_app._get_current_object()):
            self._guarded("worker_process_init", self._start_client)
            self._guarded("worker_process_init", self._attach_logging_everywhere)

    def _on_worker_ready(self, sender: Any = None, **_: Any) -> None:
        if self._is_our_app(getattr(sender, "app", None)):
            self._guarded("worker_ready", self._attach_logging_everywhere)

    def _on_before_task_publish(self, sender: Any = None, headers: Any = None, **_: Any) -> None:
        self._guarded("before_task_publish", lambda: add_trace_headers(headers))
        monitors = self._beat_monitors
        if monitors is not None:
            self._guarded("before_task_publish", lambda: monitors.add_header(sender, headers))

    def _on_beat_init(self, sender: Any = None, **_: Any) -> None:
        monitors = self._beat_monitors
        if monitors is not None and self._is_our_app(getattr(sender, "app", None)):
            self._guarded("beat_init", lambda: monitors.beat_started(sender))

    def _on_task_prerun(self, task: Any = None, task_id: str | None = None, **named: Any) -> None:
        if self._owns(task):
            self._guarded("task_prerun", lambda: self._enter_task(task, task_id, named))
            monitors = self._beat_monitors
            if monitors is not None:
                self._guarded("task_prerun", lambda: monitors.task_started(task_id, task.request))

    def _on_task_postrun(
        self, task: Any = None, task_id: str | None = None, state: Any = None, **_: Any
    ) -> None:
        if self._owns(task):
            monitors = self._beat_monitors
            if monitors is not None:
                self._guarded("task_postrun", lambda: monitors.task_ended(task_id, state))
            self._guarded("task_postrun", lambda: self._leave_task(task_id))

    def _on_task_failure(
        self, sender: Any = None, exception: BaseException | None = None, **_: Any
    ) -> None:
        if exception is not None and self._owns(sender):
            self._guarded("task_failure", lambda: self._report_failure(sender, exception))

    def _on_task_retry(self, sender: Any = None, reason: Any = None, **_: Any) -> None:
        if self.capture_retries and self._owns(sender):
            self._guarded("task_retry", lambda: self._report_retry(reason))

    def _on_worker_shutdown(self, **_: Any) -> None:
        # worker_shutdown in the main process; worker_process_shutdown in a pool child, which
        # then leaves with os._exit, skipping the atexit flush.
        client = default_client()
        if self._client_started and client is not None:
            self._guarded("worker_shutdown", client.flush)

    # -- per task ------------------------------------------------------------------------------

    def _enter_task(self, task: Any, task_id: str | None, named: dict[str, Any]) -> None:
        request = task.request
        trace = task_trace(request, current_scope().trace)
        scope = isolated_scope()
        scope.__enter__().trace = trace
        self._scopes.stack.append((task_id or "", scope))
        name = getattr(request, "shadow", None) or task.name
        set_transaction(name)
        set_tag("celery.task", name)
        set_context(INTEGRATION, self._task_context(task, request, name, named))

    def _leave_task(self, task_id: str | None) -> None:
        stack = self._scopes.stack
        for index in range(len(stack) - 1, -1, -1):
            if stack[index][0] == (task_id or ""):
                _, scope = stack.pop(index)
                scope.__exit__(None, None, None)
                return

    def _task_context(
        self, task: Any, request: Any, name: str, named: dict[str, Any]
    ) -> dict[str, Any]:
        return task_context(task, request, name, named, include_args=self.include_args)

    def _report_failure(self, task: Any, exc: BaseException) -> None:
        core = current_client()
        if core is not None and not self._is_expected(task, exc):
            core.capture_exception(exc, handled=False, mechanism=INTEGRATION)

    def _report_retry(self, reason: Any) -> None:
        cause = getattr(reason, "exc", None)
        exc = cause if isinstance(cause, BaseException) else reason
        core = current_client()
        if core is not None and isinstance(exc, BaseException):
            core.capture_exception(exc, handled=True, mechanism=INTEGRATION, level="warning")

    def _is_expected(self, task: Any, exc: BaseException) -> bool:
        if isinstance(exc, self._never_errors):
            return True
        expected = getattr(task, "throws", ())
        return bool(expected) and not self.capture_expected and isinstance(exc, expected)

    @staticmethod
    def _guarded(where: str, action: Callable[[], object]) -> None:
        try:
            action()
        except Exception:
            logger.warning("errlink: Celery %s hook failed", where, exc_info=True, extra=INTERNAL)


def task_context(
    task: Any, request: Any, name: str, named: dict[str, Any], *, include_args: bool
) -> dict[str, Any]:
    """``contexts.celery`` of a task run; `named` holds the signal's `args` and `kwargs`."""
    delivery = getattr(request, "delivery_info", None) or {}
    context: dict[str, Any] = {
        "task": name,
        "id": getattr(request, "id", None),
        "retries": getattr(request, "retries", 0),
        "max_retries": getattr(task, "max_retries", None),
        "routing_key": delivery.get("routing_key"),
        "exchange": delivery.get("exchange") or None,
        "hostname": getattr(request, "hostname", None),
        "eager": bool(getattr(request, "is_eager", False)),
        "parent_id": getattr(request, "parent_id", None),
        "root_id": getattr(request, "root_id", None),
    }
    if include_args:
        # References only: the event builder scrubs and bounds them if an event is sent.
        context["args"] = named.get("args")
        context["kwargs"] = named.get("kwargs")
    return {key: value for key, value in context.items() if value is not None}


def add_trace_headers(headers: Any) -> None:
    """Put the sender's trace into a task message's headers (``before_task_publish``), unless
    the message carries a trace already (the caller's own, another SDK's): it is kept whole."""
    if isinstance(headers, dict) and not any(name in headers for name in _TRACE_HEADERS):
        headers.update(trace_headers())


def task_trace(request: Any, caller: TraceSource | None) -> TraceSource | None:
    """A task run's trace: continued from its message's headers (a new one when they carry
    none); an eager task (run in the caller, without a message) stays in `caller`'s trace."""
    if getattr(request, "is_eager", False):
        return caller
    return IncomingTrace(functools.partial(_task_header, request))


def _task_header(request: Any, name: str) -> Any:
    # Celery turns a message's own headers into attributes of the task's request.
    value = getattr(request, name, None)
    if value is None:
        nested = getattr(request, "headers", None)
        if isinstance(nested, Mapping):
            value = nested.get(name)
    return value


def set_up_for(task: Any) -> bool:
    """Whether `setup` hooked the app `task` belongs to (its receivers report the task)."""
    return any(integration._owns(task) for integration in list(_installed.values()))


def _reaches_event_handler(target: logging.Logger) -> bool:
    """Whether records of `target` already reach an errlink EventHandler."""
    current: logging.Logger | None = target
    while current is not None:
        if any(isinstance(handler, EventHandler) for handler in current.handlers):
            return True
        if not current.propagate:
            return False
        current = current.parent
    return False
