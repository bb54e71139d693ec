"""Celery without `setup(app)`: its `task_failure` signal, for every app.

The report carries what `setup` puts on a task's scope: the task name as transaction and tag,
and ``contexts.celery``. Exceptions a task lists in `throws` (expected errors) are left out, as
`setup` does by default. Tasks of an app `setup` hooked are left to it.
"""

from __future__ import annotations

from typing import Any

from celery.signals import before_task_publish, task_failure  # type: ignore[import-untyped]

from .._sdk import INTERNAL, current_client, logger, new_scope
from ..celery import INTEGRATION, add_trace_headers, set_up_for, task_context, task_trace
from . import Undo

_UID = "errlink.init.task_failure"
_PUBLISH_UID = "errlink.init.before_task_publish"


def hook() -> Undo:
    task_failure.connect(_on_task_failure, weak=False, dispatch_uid=_UID)
    before_task_publish.connect(_on_before_task_publish, weak=False, dispatch_uid=_PUBLISH_UID)

    def undo() -> None:
        task_failure.disconnect(dispatch_uid=_UID)
        before_task_publish.disconnect(dispatch_uid=_PUBLISH_UID)

    return undo


def _on_before_task_publish(headers: Any = None, **_: Any) -> None:
    try:
        add_trace_headers(headers)
    except Exception:
        logger.warning("errlink: could not add trace headers", exc_info=True, extra=INTERNAL)


def _on_task_failure(
    sender: Any = None, exception: BaseException | None = None, **named: Any
) -> None:
    try:
        _report(sender, exception, named)
    except Exception:
        logger.warning("errlink: could not report a Celery task", exc_info=True, extra=INTERNAL)


def _report(task: Any, exception: BaseException | None, named: dict[str, Any]) -> None:
    if exception is None or task is None or set_up_for(task):
        return
    expected = getattr(task, "throws", ())
    if expected and isinstance(exception, expected):
        return
    core = current_client()
    if core is None or not core.enabled:
        return
    request = getattr(task, "request", None)
    name = getattr(request, "shadow", None) or task.name
    with new_scope() as scope:
        if scope.trace is None:
            scope.trace = task_trace(request, None)
        core.capture_exception(
            exception,
            handled=False,
            mechanism=INTEGRATION,
            transaction=name,
            tags={"celery.task": name},
            contexts={INTEGRATION: task_context(task, request, name, named, include_args=True)},
        )
