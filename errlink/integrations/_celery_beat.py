"""Celery beat check-ins: every periodic task run becomes a cron monitor run.

Beat's side: when beat publishes a due task (``before_task_publish`` in beat's thread), the
schedule entry it just advanced gives the monitor: the slug from the task name, the
``monitor_config`` from the entry's schedule (a crontab or an interval). A header
(`MONITOR_HEADER`) carries them, with a new check-in id, to the worker. Beat itself sends
nothing: it needs no client.

Worker's side: a task whose message carries the header sends ``in_progress`` when it starts
(``task_prerun``) and ``ok`` or ``error`` with its duration when it ends (``task_postrun``),
all under the check-in id from the header.
"""

from __future__ import annotations

import datetime
import threading
import time
from collections.abc import Mapping
from typing import Any

from ._sdk import (
    check_slug,
    current_client,
    interval_schedule,
    monitor_config,
    new_check_in_id,
    send_checkin,
    slugify,
)

MONITOR_HEADER = "errlink-monitor"
# Task states (task_postrun's `state`) that close a run as ok; any other is an error.
_OK_STATES = frozenset({"SUCCESS", "IGNORED"})


def beat_monitor_config(schedule: Any, timezone: Any = None) -> dict[str, Any] | None:
    """``monitor_config`` for a beat entry's `schedule` (a Celery ``crontab`` or ``schedule``);
    None for kinds a monitor cannot describe (solar events, custom classes)."""
    try:
        if hasattr(schedule, "run_every"):  # celery.schedules.schedule: an interval
            every = schedule.run_every
            seconds = every.total_seconds() if isinstance(every, datetime.timedelta) else every
            return {"schedule": interval_schedule(float(seconds))}
        text = _crontab_text(schedule)
        if text is None:
            return None
        zone = str(timezone) if timezone else "UTC"
        try:
            return monitor_config(text, timezone=zone)
        except ValueError:
            return monitor_config(text)
    except (TypeError, ValueError):
        return None


def _crontab_text(schedule: Any) -> str | None:
    fields = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")
    written = [getattr(schedule, f"_orig_{name}", None) for name in fields]
    if all(isinstance(value, str | int) for value in written):
        text = " ".join(str(value) for value in written)
        try:
            monitor_config(text)
            return text
        except ValueError:
            pass  # Celery accepts forms the protocol's crontab does not: use what they expand to
    expanded: list[set[int]] = []
    for name in fields:
        values = getattr(schedule, name, None)
        if not isinstance(values, set | frozenset) or not values:
            return None
        expanded.append(set(values))
    full = (range(60), range(24), range(1, 32), range(1, 13), range(7))
    return " ".join(
        "*" if values == set(everything) else ",".join(map(str, sorted(values)))
        for values, everything in zip(expanded, full, strict=True)
    )


class BeatMonitors:
    """Beat check-ins for one Celery app: the beat side and the worker side."""

    def __init__(self) -> None:
        self._scheduler: Any = None
        self._beat_thread: int | None = None
        self._lock = threading.Lock()
        self._running: dict[str, tuple[str, str, dict[str, Any] | None, float]] = {}

    # -- beat ----------------------------------------------------------------------------------

    def beat_started(self, service: Any) -> None:
        """``beat_init``, in the thread that runs beat's scheduler."""
        self._scheduler = service.scheduler
        self._beat_thread = threading.get_ident()

    def add_header(self, task_name: Any, headers: Any) -> None:
        """``before_task_publish``: mark a message beat sends for a due entry."""
        scheduler = self._scheduler
        if (
            scheduler is None
            or threading.get_ident() != self._beat_thread
            or not isinstance(headers, dict)
            or not isinstance(task_name, str)
            or MONITOR_HEADER in headers
        ):
            return
        entry = _entry_just_run(scheduler, task_name)
        if entry is None:
            return
        timezone = getattr(getattr(scheduler, "app", None), "timezone", None)
        headers[MONITOR_HEADER] = {
            "slug": slugify(task_name),
            "check_in_id": new_check_in_id(),
            "monitor_config": beat_monitor_config(entry.schedule, timezone),
        }

    # -- worker --------------------------------------------------------------------------------

    def task_started(self, task_id: str | None, request: Any) -> None:
        marker = _header(request)
        if marker is None or task_id is None:
            return
        slug, check_in_id, config = marker
        with self._lock:
            self._running[task_id] = (slug, check_in_id, config, time.monotonic())
        send_checkin(current_client(), slug, "in_progress", check_in_id=check_in_id, config=config)

    def task_ended(self, task_id: str | None, state: Any) -> None:
        if task_id is None:
            return
        with self._lock:
            run = self._running.pop(task_id, None)
        if run is None:
            return
        slug, check_in_id, config, started = run
        send_checkin(
            current_client(),
            slug,
            "ok" if state in _OK_STATES else "error",
            check_in_id=check_in_id,
            duration=time.monotonic() - started,
            config=config,
        )


def _entry_just_run(scheduler: Any, task_name: str) -> Any:
    # Beat advances an entry (its last_run_at becomes now) right before sending its task.
    schedule = getattr(scheduler, "schedule", None)
    if not isinstance(schedule, Mapping):
        return None
    entries = [e for e in list(schedule.values()) if getattr(e, "task", None) == task_name]
    stamped = [e for e in entries if isinstance(getattr(e, "last_run_at", None), datetime.datetime)]
    if not stamped:
        return entries[0] if len(entries) == 1 else None
    return max(stamped, key=lambda entry: _utc(entry.last_run_at))


def _utc(moment: datetime.datetime) -> datetime.datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=datetime.timezone.utc)
    return moment


def _header(request: Any) -> tuple[str, str, dict[str, Any] | None] | None:
    # Celery turns a message's own headers into attributes of the task's request.
    value = getattr(request, MONITOR_HEADER, None)
    if value is None:
        nested = getattr(request, "headers", None)
        if isinstance(nested, Mapping):
            value = nested.get(MONITOR_HEADER)
    if not isinstance(value, Mapping):
        return None
    slug, check_in_id, config = (
        value.get("slug"),
        value.get("check_in_id"),
        value.get("monitor_config"),
    )
    if not isinstance(check_in_id, str) or not isinstance(slug, str):
        return None
    try:
        check_slug(slug)
    except ValueError:
        return None
    return slug, check_in_id, dict(config) if isinstance(config, Mapping) else None
