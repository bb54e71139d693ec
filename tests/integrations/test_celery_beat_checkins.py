"""Celery beat check-ins: a real beat schedule and a real worker (in-process, on kombu's memory
broker), reporting to the collector on 127.0.0.1.

A task beat sends every second runs for a few seconds, its third run failing: each run must
give an ``in_progress`` then an ``ok`` (the failing one an ``error``) under one check-in id, with
the duration the worker measured and the schedule read from the beat entry. Once beat stops,
the collector must mark the monitor missed (asked about a later time with ``?at=``).
"""

from __future__ import annotations

import itertools
import json
import logging
import sqlite3
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from celery import Celery, signals
from celery.beat import EmbeddedService
from celery.contrib.testing.tasks import ping
from celery.contrib.testing.worker import start_worker
from celery.schedules import crontab, schedule
from celery.worker import state as worker_state

import errlink
from errlink._capture.scope import isolated_scope
from errlink.collector import CollectorThread
from errlink.integrations._celery_beat import beat_monitor_config
from errlink.integrations.celery import setup

SLUG = "reports-tick"  # from the task name "reports.tick"
RUNS = 5
FAILING_RUN = 3
WORK_SECONDS = 0.05
FAILING_WORK_SECONDS = 0.3
WAIT_SECONDS = 30.0
_DIGITS_TO_LETTERS = str.maketrans("0123456789", "ghijklmnop")


@pytest.fixture(autouse=True)
def _clean_process_state() -> Iterator[None]:
    # The worker (re)configures logging and setup() makes a process default: undo both.
    watched = [logging.getLogger(name) for name in ("", "celery", "celery.task")]
    saved = [(lg, lg.handlers[:], lg.level, lg.propagate) for lg in watched]
    with isolated_scope():
        yield
    errlink.close(timeout=2)
    for lg, handlers, level, propagate in saved:
        lg.handlers[:] = handlers
        lg.setLevel(level)
        lg.propagate = propagate


def _app() -> Celery:
    app = Celery("errlink-beat-test", broker="memory://", backend="cache+memory://")
    app.conf.update(
        task_default_queue="beat-" + uuid.uuid4().hex.translate(_DIGITS_TO_LETTERS),
        broker_connection_retry_on_startup=True,
        broker_transport_options={"polling_interval": 0.01},
        beat_schedule={"tick-every-second": {"task": "reports.tick", "schedule": 1.0}},
        beat_enable_remote_control=False,
        task_ignore_result=True,
    )
    return app


@contextmanager
def _worker(app: Celery) -> Iterator[None]:
    with start_worker(
        app, pool="solo", loglevel="INFO", perform_ping_check=False, shutdown_timeout=30
    ) as worker:
        try:
            yield
        finally:
            _stop_warm(app, worker)


def _stop_warm(app: Celery, worker: Any) -> None:
    stopped = threading.Event()

    def on_shutdown(sender: Any = None, **_: Any) -> None:
        if sender is worker:
            stopped.set()

    signals.worker_shutdown.connect(on_shutdown, weak=False)
    try:
        worker_state.should_stop = 0  # a warm shutdown, as on SIGTERM
        for _ in range(2):  # wake the consume loop, which polls once more after the stop
            ping.apply_async(queue=app.conf.task_default_queue)
        assert stopped.wait(30), "the worker did not stop"
    finally:
        worker_state.should_stop = None
        signals.worker_shutdown.disconnect(on_shutdown)


@contextmanager
def _beat(app: Celery) -> Iterator[None]:
    beat = EmbeddedService(app, thread=True, scheduler_cls="celery.beat:Scheduler")
    beat.start()
    try:
        yield
    finally:
        beat.stop()


def _check_ins(collector: CollectorThread) -> list[dict[str, Any]]:
    """The check-ins the collector stored, in the order it received them."""
    assert collector.db_path is not None
    with sqlite3.connect(collector.db_path) as db:
        rows = db.execute("SELECT payload FROM check_ins ORDER BY id").fetchall()
    return [json.loads(payload) for (payload,) in rows]


def _wait_for(collector: CollectorThread, what: str, done: Any) -> list[dict[str, Any]]:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        check_ins = _check_ins(collector)
        if done(check_ins):
            return check_ins
        if time.monotonic() > deadline:
            raise TimeoutError(f"never received {what}: {check_ins}")
        time.sleep(0.05)


def _monitor(collector: CollectorThread, at: float) -> dict[str, Any]:
    with urllib.request.urlopen(f"{collector.url}/api/0/monitors/?at={at}") as answer:
        (monitor,) = json.loads(answer.read())["monitors"]
    assert isinstance(monitor, dict)
    return monitor


def test_beat_runs_give_in_progress_then_ok_or_error_with_durations(
    collector_thread: CollectorThread,
) -> None:
    app = _app()
    runs = itertools.count(1)

    @app.task(name="reports.tick")
    def tick() -> None:
        run = next(runs)
        if run == FAILING_RUN:
            time.sleep(FAILING_WORK_SECONDS)
            raise RuntimeError("the report store is down")
        time.sleep(WORK_SECONDS)

    integration = setup(app, dsn=collector_thread.dsn, monitor_beat_tasks=True)
    try:

        def closed(check_ins: list[dict[str, Any]]) -> int:
            return sum(c["status"] != "in_progress" for c in check_ins)

        with _worker(app), _beat(app):
            _wait_for(collector_thread, f"{RUNS} finished runs", lambda c: closed(c) >= RUNS)
        assert errlink.flush(10)
    finally:
        integration.disconnect()
        app.close()

    check_ins = _check_ins(collector_thread)
    assert {c["monitor_slug"] for c in check_ins} == {SLUG}
    by_run: dict[str, list[dict[str, Any]]] = {}
    for check_in in check_ins:
        by_run.setdefault(check_in["check_in_id"], []).append(check_in)
    finished = [run for run in by_run.values() if len(run) == 2]
    assert len(finished) >= RUNS
    for opening, closing in finished:
        assert opening["status"] == "in_progress"
        assert "duration" not in opening
        assert closing["status"] in ("ok", "error")
        assert closing["monitor_config"] == {
            "schedule": {"type": "interval", "value": 1, "unit": "minute"}
        }
    statuses = [closing["status"] for _, closing in finished]
    assert statuses[: FAILING_RUN + 1] == ["ok", "ok", "error", "ok"]
    durations = [closing["duration"] for _, closing in finished]
    assert durations[FAILING_RUN - 1] >= FAILING_WORK_SECONDS
    assert all(d >= WORK_SECONDS for d in durations)
    # Only one run took as long as the failing one: each duration is its own run's.
    assert sum(d >= FAILING_WORK_SECONDS for d in durations) == 1
    # The failing run was also reported as an error event.
    (event,) = collector_thread.wait_for_events(1, timeout=WAIT_SECONDS)
    assert event["exception"]["values"][-1]["value"] == "the report store is down"

    # Beat has stopped: due a minute after the last check-in, with a minute of margin.
    last = _monitor(collector_thread, time.time())
    assert not last["missed"]
    assert last["status"] in ("ok", "in_progress")
    later = _monitor(collector_thread, last["last_check_in_at"] + 3 * 60)
    assert later["missed"]
    assert later["status"] == "missed"


def test_beat_schedules_become_monitor_configs() -> None:
    assert beat_monitor_config(crontab(minute="*/15", hour="9-17", day_of_week="mon-fri")) == {
        "schedule": {"type": "crontab", "value": "*/15 9-17 * * mon-fri"},
        "timezone": "UTC",
    }
    assert beat_monitor_config(crontab(minute={0, 30}), "Europe/Paris") == {
        "schedule": {"type": "crontab", "value": "0,30 * * * *"},
        "timezone": "Europe/Paris",
    }
    assert beat_monitor_config(schedule(timedelta(hours=2))) == {
        "schedule": {"type": "interval", "value": 2, "unit": "hour"}
    }
    assert beat_monitor_config(object()) is None


def test_monitor_beat_tasks_must_be_a_bool() -> None:
    app = Celery("errlink-beat-option")
    try:
        with pytest.raises(TypeError, match="monitor_beat_tasks must be True or False"):
            setup(app, monitor_beat_tasks="yes")  # type: ignore[arg-type]
    finally:
        app.close()
