"""Cron monitors: `errlink.monitor(...)` around a job, and `errlink.capture_checkin(...)`."""

from __future__ import annotations

import functools
import inspect
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar, cast

from ._capture.binding import current_client
from ._capture.checkins import (
    Schedule,
    check_slug,
    check_status,
    monitor_config,
    new_check_in_id,
    send_checkin,
)
from ._capture.core import ClientCore

_F = TypeVar("_F", bound=Callable[..., Any])


def capture_checkin(
    monitor_slug: str,
    status: str = "ok",
    *,
    check_in_id: str | None = None,
    duration: float | None = None,
    schedule: Schedule | None = None,
    checkin_margin: float | None = None,
    max_runtime: float | None = None,
    timezone: str | None = None,
) -> str | None:
    """Send one check-in for `monitor_slug` (``in_progress``, ``ok`` or ``error``) through the
    current client. Returns its `check_in_id` (give it to the closing check-in of a run), or
    None when nothing was queued. Invalid arguments raise ValueError/TypeError at once.

    With `schedule` (a crontab string, ``(n, "minute"|"hour"|...)`` or a ``timedelta``), the
    check-in also creates or updates the monitor: `checkin_margin` and `max_runtime` in
    minutes, `timezone` a tz database name."""
    slug = check_slug(monitor_slug)
    status = check_status(status)
    config = monitor_config(
        schedule, checkin_margin=checkin_margin, max_runtime=max_runtime, timezone=timezone
    )
    if duration is not None and (
        isinstance(duration, bool) or not isinstance(duration, int | float)
    ):
        raise TypeError(f"duration must be a number of seconds, not {duration!r}")
    check_in_id = check_in_id or new_check_in_id()
    queued = send_checkin(
        current_client(), slug, status, check_in_id=check_in_id, duration=duration, config=config
    )
    return check_in_id if queued else None


class _Run:
    __slots__ = ("check_in_id", "core", "started")

    def __init__(self, core: ClientCore | None, check_in_id: str) -> None:
        self.core = core
        self.check_in_id = check_in_id
        self.started = time.monotonic()


class monitor:
    """Check in around a job: ``in_progress`` when it starts, then ``ok``, or ``error`` when
    it raises (or, for a coroutine, is cancelled), with its duration, under one check-in id.

    ::

        @errlink.monitor("nightly-report", schedule="0 3 * * *", checkin_margin=5)
        def nightly_report(): ...

        with errlink.monitor("import-feed"):
            ...

    Works on functions and coroutine functions, and as a context manager (``with`` or
    ``async with``). `schedule`, `checkin_margin` (minutes), `max_runtime` (minutes) and
    `timezone` create or update the monitor with every check-in. Invalid arguments raise
    ValueError/TypeError here, where the monitor is declared.
    """

    def __init__(
        self,
        monitor_slug: str,
        *,
        schedule: Schedule | None = None,
        checkin_margin: float | None = None,
        max_runtime: float | None = None,
        timezone: str | None = None,
    ) -> None:
        self.slug = check_slug(monitor_slug)
        self.config = monitor_config(
            schedule, checkin_margin=checkin_margin, max_runtime=max_runtime, timezone=timezone
        )
        self._local = threading.local()

    def __call__(self, function: _F) -> _F:
        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def monitored_coroutine(*args: Any, **kwargs: Any) -> Any:
                run = self.begin()
                try:
                    result = await function(*args, **kwargs)
                except BaseException:
                    self.end(run, "error")
                    raise
                self.end(run, "ok")
                return result

            return cast("_F", monitored_coroutine)

        @functools.wraps(function)
        def monitored(*args: Any, **kwargs: Any) -> Any:
            run = self.begin()
            try:
                result = function(*args, **kwargs)
            except BaseException:
                self.end(run, "error")
                raise
            self.end(run, "ok")
            return result

        return cast("_F", monitored)

    def begin(self) -> _Run:
        """Send ``in_progress`` and return the run to `end`."""
        core = current_client()
        run = _Run(core, new_check_in_id())
        send_checkin(
            core, self.slug, "in_progress", check_in_id=run.check_in_id, config=self.config
        )
        return run

    def end(self, run: _Run, status: str) -> None:
        send_checkin(
            run.core,
            self.slug,
            status,
            check_in_id=run.check_in_id,
            duration=time.monotonic() - run.started,
            config=self.config,
        )

    # -- as a context manager: runs are kept per thread (and per task, via the stack order) ----

    def _runs(self) -> list[_Run]:
        runs: list[_Run] | None = getattr(self._local, "runs", None)
        if runs is None:
            runs = self._local.runs = []
        return runs

    def __enter__(self) -> monitor:
        self._runs().append(self.begin())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        runs = self._runs()
        if runs:
            self.end(runs.pop(), "ok" if exc_type is None else "error")

    async def __aenter__(self) -> monitor:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


__all__ = ["capture_checkin", "monitor"]
