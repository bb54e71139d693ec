"""Celery integration in a real `celery worker` process (prefork pool, and threads pool).

The broker is kombu's filesystem transport in a folder of tmp_path (no server; with atomic
writes, see _celery_fs_transport.py); the app is _celery_worker_app.py. The prefork pool's
children report to the collector on 127.0.0.1, forked ones through the sync facade's fork
safety. The worker is always killed (with its children) at teardown.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
STARTUP_AND_WORK_TIMEOUT = 60.0
SHUTDOWN_TIMEOUT = 60.0


class Worker:
    def __init__(self, proc: subprocess.Popen[bytes], log: Path, pool: str) -> None:
        self.proc = proc
        self.log = log
        self.pool = pool

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-6000:]


@pytest.fixture
def broker_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "broker"
    (folder / "processed").mkdir(parents=True)
    return folder


@pytest.fixture(
    params=[("prefork", "fork", "celery"), ("prefork", "spawn", "celery"), ("threads", "", "own")],
    ids=["prefork-fork", "prefork-spawn", "threads-own-logging"],
)
def worker(
    request: pytest.FixtureRequest, tmp_path: Path, broker_dir: Path, collector_thread: Any
) -> Iterator[Worker]:
    """`celery worker` with the prefork pool, its children forked (the default) or started as
    fresh interpreters, or with the threads pool.

    Logging is configured by Celery (which drops the root logger's handlers first) or by the
    app itself through Celery's `setup_logging` signal (which throws away every handler).
    """
    pool, start_method, logging_by = request.param
    env = {
        **os.environ,
        "ERRLINK_TEST_BROKER_DIR": str(broker_dir),
        "ERRLINK_TEST_DSN": collector_thread.dsn,
        "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT)]),
    }
    if start_method:
        env["ERRLINK_TEST_START_METHOD"] = start_method
    if logging_by == "own":
        env["ERRLINK_TEST_OWN_LOGGING"] = "1"
    # Forked children leave right after their task (and must flush first); spawned ones are
    # slow to start, so they stay until the warm shutdown, when they must flush too.
    per_child = ["--max-tasks-per-child=1"] if start_method == "fork" else []
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "--app=_celery_worker_app",
                "worker",
                f"--pool={pool}",
                "--concurrency=2",
                *per_child,
                "--loglevel=INFO",
                "--without-heartbeat",
                "--without-mingle",
                "--without-gossip",
            ],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the pool children die with it
        )
    try:
        yield Worker(proc, log, pool)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)


@pytest.fixture
def producer(broker_dir: Path) -> Iterator[Celery]:
    app = Celery("errlink_prefork_producer", broker="filesystem://")
    app.conf.update(
        broker_transport="_celery_fs_transport:Transport",
        broker_transport_options={
            "data_folder_in": str(broker_dir),
            "data_folder_out": str(broker_dir),
            "control_folder": str(broker_dir / "control"),
        },
        broker_connection_retry_on_startup=True,
    )
    yield app
    app.close()


def test_each_failing_task_is_reported_once(
    worker: Worker, producer: Celery, collector_thread: Any
) -> None:
    card = {"number": "4111 1111 1111 1111", "cvv": "123"}
    charges = {
        producer.send_task("orders.charge", args=[n], kwargs={"card": card}).id: n for n in range(3)
    }
    sync_stock = producer.send_task("orders.sync_stock").id
    producer.send_task("orders.ping")
    try:
        collector_thread.wait_for_events(4, timeout=STARTUP_AND_WORK_TIMEOUT)
    except TimeoutError as exc:
        raise AssertionError(worker.output()) from exc

    worker.proc.send_signal(signal.SIGTERM)  # warm shutdown: every process flushes
    assert worker.proc.wait(timeout=SHUTDOWN_TIMEOUT) == 0, worker.output()
    events = collector_thread.events()
    assert len(events) == 4, worker.output()  # nothing else arrived late

    by_id = {event["contexts"]["celery"]["id"]: event for event in events}
    assert set(by_id) == {*charges, sync_stock}
    for task_id, order_id in charges.items():
        event = by_id[task_id]
        [value] = event["exception"]["values"]
        assert value["value"] == f"card declined for order {order_id}"
        assert value["mechanism"] == {"type": "celery", "handled": False, "exception_id": 0}
        assert event["transaction"] == "orders.charge"
        assert event["environment"] == "celery-prefork"
        # The prefork pool runs tasks in its children: they sent the events.
        ran_in_main_process = int(event["tags"]["worker_pid"]) == worker.proc.pid
        assert ran_in_main_process is (worker.pool == "threads")
        assert event["tags"]["celery.task"] == "orders.charge"
        context = event["contexts"]["celery"]
        assert context["retries"] == 0
        assert context["routing_key"] == "celery"
        assert context["args"] == [order_id]
        assert context["kwargs"] == {"card": {"number": "[Filtered]", "cvv": "[Filtered]"}}
        crumbs = [c["message"] for c in event["breadcrumbs"]["values"]]
        assert crumbs == [f"charging order {order_id}", f"gateway slow for order {order_id}"]

    final = by_id[sync_stock]  # two retries were not reported, the final failure was
    assert final["contexts"]["celery"]["retries"] == 2
    assert final["exception"]["values"][-1]["type"] == "ConnectionError"
