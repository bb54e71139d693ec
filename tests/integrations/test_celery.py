"""Celery integration through a real in-process worker (`start_worker`), solo and threads pools.

The worker consumes from kombu's in-memory broker and errlink delivers to the real collector on
127.0.0.1. A separate `celery worker` process (prefork and threads pools) is tested in
test_celery_worker_process.py.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from celery import Celery, signals
from celery.contrib.testing.tasks import ping
from celery.contrib.testing.worker import start_worker
from celery.exceptions import Ignore, Reject
from celery.utils.log import get_task_logger
from celery.worker import state as worker_state

import errlink
from errlink._capture.scope import isolated_scope
from errlink.integrations.celery import CeleryIntegration, setup
from errlink.sync import default_client
from tests._support.transports import MemoryTransport

task_logger = get_task_logger("shop.tasks")
RESULT_TIMEOUT = 20.0
EVENT_TIMEOUT = 20.0

_DIGITS_TO_LETTERS = str.maketrans("0123456789", "ghijklmnop")


@pytest.fixture(autouse=True)
def _clean_process_state() -> Iterator[None]:
    # The worker (re)configures logging and errlink.init() sets a process default: undo both.
    watched = [logging.getLogger(name) for name in ("", "celery", "celery.task")]
    saved = [(lg, lg.handlers[:], lg.level, lg.propagate) for lg in watched]
    with isolated_scope():  # breadcrumbs logged outside tasks stay in this test
        yield
    errlink.close(timeout=2)
    for lg, handlers, level, propagate in saved:
        lg.handlers[:] = handlers
        lg.setLevel(level)
        lg.propagate = propagate


@pytest.fixture
def make_app() -> Iterator[Callable[[], Celery]]:
    """A factory of apps, each on its own in-memory queue (kombu's memory broker is global)."""
    apps: list[Celery] = []

    def make() -> Celery:
        app = Celery(f"errlink-test-{len(apps)}", broker="memory://", backend="cache+memory://")
        app.conf.update(
            # Letters only: a random hex id can end in a Luhn-valid run of digits, which the
            # card-number scrubbing would rightly filter from the event.
            task_default_queue="errlink-" + uuid.uuid4().hex.translate(_DIGITS_TO_LETTERS),
            broker_connection_retry_on_startup=True,
            broker_transport_options={"polling_interval": 0.01},
        )
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()


@pytest.fixture
def errlink_setup() -> Iterator[Callable[..., CeleryIntegration]]:
    """`setup`, disconnected again after the test (Celery's signals are process-wide)."""
    integrations: list[CeleryIntegration] = []

    def install(app: Celery, **options: Any) -> CeleryIntegration:
        integration = setup(app, **options)
        integrations.append(integration)
        return integration

    yield install
    for integration in integrations:
        integration.disconnect()


@contextmanager
def _worker(app: Celery, pool: str = "solo", concurrency: int = 1) -> Iterator[Any]:
    """A started worker, stopped warm (as on SIGTERM) when the block ends."""
    with start_worker(
        app,
        pool=pool,
        concurrency=concurrency,
        loglevel="INFO",
        perform_ping_check=False,
        shutdown_timeout=30,
    ) as worker:
        try:
            yield worker
        finally:
            _stop_warm(app, worker)


def _stop_warm(app: Celery, worker: Any) -> None:
    stopped = threading.Event()

    def on_shutdown(sender: Any = None, **_: Any) -> None:
        if sender is worker:
            stopped.set()

    signals.worker_shutdown.connect(on_shutdown, weak=False)
    try:
        worker_state.should_stop = 0  # what Celery's SIGTERM handler does: a warm shutdown
        # Wake the blocking consume loop, which polls once more after noticing the stop: twice.
        for _ in range(2):
            ping.apply_async(queue=app.conf.task_default_queue)
        assert stopped.wait(30), "the worker did not stop"
    finally:
        worker_state.should_stop = None
        signals.worker_shutdown.disconnect(on_shutdown)


def _outcome(result: Any, propagate: bool = True) -> Any:
    return result.get(timeout=RESULT_TIMEOUT, interval=0.01, propagate=propagate)


def _settled_events(collector: Any, expected: int) -> list[dict[str, Any]]:
    """The events once `expected` arrived and everything captured in this process was sent."""
    collector.wait_for_events(expected, timeout=EVENT_TIMEOUT)
    assert errlink.flush(10) is True
    events = collector.events()
    assert len(events) == expected, [e.get("transaction") for e in events]
    return events


def _expected_and_flaky_tasks(app: Celery) -> tuple[Any, Any]:
    """`t.expected` logs, then raises an error it declares (`throws`): an expected one.
    `t.flaky` fails with an error it retries on, twice, then fails for good."""

    @app.task(shared=False, name="t.expected", throws=(LookupError,))
    def expected() -> None:
        task_logger.info("looking up")
        raise KeyError("no such order")

    @app.task(
        shared=False,
        name="t.flaky",
        autoretry_for=(ConnectionError,),
        max_retries=2,
        default_retry_delay=0,
    )
    def flaky() -> None:
        raise ConnectionError("stock service unreachable")

    return expected, flaky


def test_failing_task_is_reported_once_with_its_context(
    make_app: Callable[[], Celery],
    errlink_setup: Callable[..., CeleryIntegration],
    collector_thread: Any,
) -> None:
    app = make_app()

    @app.task(shared=False, name="shop.charge")
    def charge(order_id: int, *, password: str, note: str) -> None:
        task_logger.info("charging order %s", order_id)
        logging.getLogger("shop.gateway").warning("gateway slow")
        raise ValueError(f"card declined for order {order_id}")

    errlink_setup(app, dsn=collector_thread.dsn, environment="celery-test")
    with _worker(app):
        result = charge.delay(7, password="hunter2", note="x" * 5000)
        with pytest.raises(ValueError, match="card declined for order 7"):
            _outcome(result)
        [event] = _settled_events(collector_thread, 1)

    [value] = event["exception"]["values"]
    assert (value["type"], value["value"]) == ("ValueError", "card declined for order 7")
    assert value["mechanism"]["type"] == "celery"
    assert value["mechanism"]["handled"] is False
    assert value["stacktrace"]["frames"][-1]["function"].endswith("charge")
    assert event["transaction"] == "shop.charge"
    assert event["tags"]["celery.task"] == "shop.charge"
    assert event["environment"] == "celery-test"
    assert "celery" in event["sdk"]["integrations"]
    context = event["contexts"]["celery"]
    assert context["task"] == "shop.charge"
    assert context["id"] == result.id
    assert context["retries"] == 0
    assert context["routing_key"] == app.conf.task_default_queue
    assert context["args"] == [7]
    assert context["kwargs"]["password"] == "[Filtered]"
    assert len(context["kwargs"]["note"]) < 2000  # size-limited
    crumbs = [(c["category"], c["message"]) for c in event["breadcrumbs"]["values"]]
    assert ("shop.tasks", "charging order 7") in crumbs
    assert ("shop.gateway", "gateway slow") in crumbs


def test_task_outcomes_are_identical_with_errlink_on_and_off(
    make_app: Callable[[], Celery],
    errlink_setup: Callable[..., CeleryIntegration],
    collector_thread: Any,
) -> None:
    def run(with_errlink: bool) -> list[tuple[str, str]]:
        app = make_app()

        @app.task(shared=False, name="t.ok")
        def ok(x: int) -> dict[str, int]:
            return {"double": 2 * x}

        @app.task(shared=False, name="t.fail")
        def fail() -> None:
            raise KeyError("missing")

        @app.task(shared=False, name="t.retry_once", bind=True, max_retries=1)
        def retry_once(self: Any) -> str:
            if self.request.retries == 0:
                raise self.retry(countdown=0)
            return "second try"

        if with_errlink:
            errlink_setup(app, dsn=collector_thread.dsn)
        with _worker(app):
            results = [ok.delay(21), fail.delay(), retry_once.delay()]
            for result in results:
                _outcome(result, propagate=False)
            return [(r.state, repr(r.result)) for r in results]

    without = run(with_errlink=False)  # first: errlink leaves a default client behind
    assert run(with_errlink=True) == without
    assert len(_settled_events(collector_thread, 1)) == 1  # only t.fail


def test_expected_errors_retries_ignore_and_reject_are_not_reported(
    make_app: Callable[[], Celery],
    errlink_setup: Callable[..., CeleryIntegration],
    collector_thread: Any,
) -> None:
    app = make_app()
    expected, flaky = _expected_and_flaky_tasks(app)

    @app.task(shared=False, name="t.ignored")
    def ignored() -> None:
        raise Ignore()

    @app.task(shared=False, name="t.rejected")
    def rejected() -> None:
        raise Reject("malformed", requeue=False)

    @app.task(shared=False, name="t.sentinel")
    def sentinel() -> None:
        raise RuntimeError("last")

    errlink_setup(app, dsn=collector_thread.dsn)
    with _worker(app):  # solo pool: one task at a time, in order
        expected.delay()
        ignored.delay()
        rejected.delay()
        with pytest.raises(ConnectionError):
            _outcome(flaky.delay())
        with pytest.raises(RuntimeError):
            _outcome(sentinel.delay())
        events = _settled_events(collector_thread, 2)

    by_task = {event["transaction"]: event for event in events}
    assert set(by_task) == {"t.flaky", "t.sentinel"}
    final = by_task["t.flaky"]
    assert final["contexts"]["celery"]["retries"] == 2  # the final failure only
    assert final["exception"]["values"][-1]["type"] == "ConnectionError"


def test_capture_retries_and_capture_expected_report_them_too(
    make_app: Callable[[], Celery],
    errlink_setup: Callable[..., CeleryIntegration],
    collector_thread: Any,
) -> None:
    app = make_app()
    expected, flaky = _expected_and_flaky_tasks(app)
    errlink_setup(
        app,
        dsn=collector_thread.dsn,
        capture_retries=True,
        capture_expected=True,
        include_args=False,
        logging_breadcrumb_level=None,
    )
    with _worker(app):
        with pytest.raises(KeyError):
            _outcome(expected.delay())
        with pytest.raises(ConnectionError):
            _outcome(flaky.delay())
        events = _settled_events(collector_thread, 4)

    [expected_event] = [e for e in events if e["transaction"] == "t.expected"]
    assert expected_event["exception"]["values"][-1]["type"] == "KeyError"
    assert "breadcrumbs" not in expected_event  # logging_breadcrumb_level=None
    assert "args" not in expected_event["contexts"]["celery"]  # include_args=False
    assert "kwargs" not in expected_event["contexts"]["celery"]
    attempts = sorted(
        (e["contexts"]["celery"]["retries"], e["level"], e["exception"]["values"][-1]["mechanism"])
        for e in events
        if e["transaction"] == "t.flaky"
    )
    assert attempts == [
        (0, "warning", {"type": "celery", "handled": True, "exception_id": 0}),
        (1, "warning", {"type": "celery", "handled": True, "exception_id": 0}),
        (2, "error", {"type": "celery", "handled": False, "exception_id": 0}),
    ]


@pytest.mark.parametrize(("pool", "concurrency"), [("solo", 1), ("threads", 3)])
def test_each_task_runs_in_its_own_scope(
    make_app: Callable[[], Celery],
    errlink_setup: Callable[..., CeleryIntegration],
    collector_thread: Any,
    pool: str,
    concurrency: int,
) -> None:
    app = make_app()

    @app.task(shared=False, name="t.tagged")
    def tagged(n: int, fail: bool) -> int:
        errlink.set_tag(f"task-{n}", "set")
        errlink.set_user({"id": str(n)})
        task_logger.info("working on %s", n)
        if fail:
            raise ValueError(f"task {n} failed")
        return n

    errlink_setup(app, dsn=collector_thread.dsn)
    with _worker(app, pool=pool, concurrency=concurrency):
        results = [tagged.delay(n, n % 2 == 1) for n in range(12)]
        for result in results:
            _outcome(result, propagate=False)
        events = _settled_events(collector_thread, 6)

    for event in events:
        n = int(event["exception"]["values"][-1]["value"].split()[1])
        assert {k for k in event["tags"] if k.startswith("task-")} == {f"task-{n}"}
        assert event["user"] == {"id": str(n)}
        assert [c["message"] for c in event["breadcrumbs"]["values"]] == [f"working on {n}"]
        assert event["contexts"]["celery"]["args"] == [n, True]
    assert sorted(e["contexts"]["celery"]["id"] for e in events) == sorted(
        r.id for r in results[1::2]
    )


class SlowTransport(MemoryTransport):
    """Delivers, but only after a while: what is still in flight at shutdown shows."""

    async def send(self, envelope: Any) -> Any:
        await asyncio.sleep(0.5)
        return await super().send(envelope)


def test_worker_shutdown_flushes(
    make_app: Callable[[], Celery], errlink_setup: Callable[..., CeleryIntegration]
) -> None:
    app = make_app()

    @app.task(shared=False, name="t.fail")
    def fail() -> None:
        raise ValueError("at shutdown")

    transport = SlowTransport()
    errlink_setup(app, transport=transport, shutdown_timeout=10)
    with _worker(app), pytest.raises(ValueError):
        _outcome(fail.delay())
    # Leaving start_worker stops the worker (worker_shutdown): the event is delivered by now.
    [event] = transport.events()
    assert event["exception"]["values"][-1]["value"] == "at shutdown"


def test_setup_without_options_keeps_the_client_from_init(
    make_app: Callable[[], Celery],
    errlink_setup: Callable[..., CeleryIntegration],
    collector_thread: Any,
) -> None:
    client = errlink.init(collector_thread.dsn, release="from-init")
    app = make_app()

    @app.task(shared=False, name="t.fail")
    def fail() -> None:
        raise ValueError("reported by the existing client")

    errlink_setup(app)
    with _worker(app):
        with pytest.raises(ValueError):
            _outcome(fail.delay())
        assert default_client() is client
        [event] = _settled_events(collector_thread, 1)
    assert event["release"] == "from-init"
    assert "celery" in event["sdk"]["integrations"]
    assert event["contexts"]["celery"]["task"] == "t.fail"


def test_eager_tasks_report_through_the_current_client(
    make_app: Callable[[], Celery],
    errlink_setup: Callable[..., CeleryIntegration],
    collector_thread: Any,
) -> None:
    # No worker here (a web process running tasks eagerly): setup creates no client, the
    # process default from errlink.init() reports.
    errlink.init(collector_thread.dsn)
    app = make_app()

    @app.task(shared=False, name="t.eager")
    def eager(x: int) -> None:
        raise ValueError(f"eager {x}")

    errlink_setup(app)
    with errlink.new_scope():
        errlink.set_tag("request", "outer")
        result = eager.apply(args=(3,))
        assert result.state == "FAILURE"
        [event] = _settled_events(collector_thread, 1)
        assert event["contexts"]["celery"]["eager"] is True
        assert event["transaction"] == "t.eager"
        assert "request" not in event["tags"]  # the task ran in its own scope...
        assert errlink.capture_message("after") is not None
        after = _settled_events(collector_thread, 2)[1]
        assert after["tags"] == {"request": "outer"}  # ...and the caller's scope is back


def test_disconnect_stops_reporting(make_app: Callable[[], Celery], collector_thread: Any) -> None:
    # Celery logs the failure, and init() alone would report the task (default_integrations).
    errlink.init(collector_thread.dsn, logging_event_level=None, default_integrations=False)
    app = make_app()

    @app.task(shared=False, name="t.eager")
    def eager() -> None:
        raise ValueError("not reported")

    setup(app).disconnect()
    eager.apply()
    assert errlink.flush(5) is True
    assert collector_thread.event_count() == 0


def test_invalid_options_fail_at_setup(make_app: Callable[[], Celery]) -> None:
    app = make_app()
    with pytest.raises(ValueError, match="invalid dsn"):
        setup(app, dsn="not a dsn")
    with pytest.raises(TypeError, match="no_such_option"):
        setup(app, no_such_option=True)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="logging_event_level"):
        setup(app, logging_event_level="LOUD")
