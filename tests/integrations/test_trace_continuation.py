"""Each request, task and invocation runs in a trace of its own, continuing the caller's when its
headers carry one.

Web frameworks: the shared app of `_web_apps`, served for real on 127.0.0.1, receives requests
with ``sentry-trace`` and ``baggage``, with W3C ``traceparent`` only, with malformed headers and
with none; what errlink's collector received tells which trace each error belongs to. Celery:
a real in-process worker runs tasks sent from traced scopes. Lambda: handlers invoked the way
the runtime invokes them, with API Gateway, function URL and ALB events and a queue event.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
import warnings
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from _asgi_serving import hypercorn_serving
from _async_web_helpers import CONCURRENT_REQUESTS, EVENT_TIMEOUT, fetch, newest_exception
from _lambda_context import LambdaContext
from _web_apps import SERVERS
from celery import Celery
from sanic import Sanic

import errlink
from errlink._capture.scope import isolated_scope
from errlink.collector import Collector
from errlink.integrations._auto import IntegrationWarning
from errlink.integrations.awslambda import report_errors
from errlink.integrations.celery import setup
from tests.integrations._raw_http import raw_request, serve_wsgi
from tests.integrations.test_celery import _outcome, _worker

pytestmark = pytest.mark.filterwarnings("ignore:websockets.legacy is deprecated:DeprecationWarning")

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN_ID = "00f067aa0ba902b7"
W3C_TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
W3C_SPAN_ID = "b7ad6b7169203331"
BAGGAGE = f"sentry-trace_id={TRACE_ID},sentry-public_key=front,sentry-release=front%401,vendor=x"

HEADERS: dict[str, dict[str, str]] = {
    "sentry": {"sentry-trace": f"{TRACE_ID}-{SPAN_ID}-1", "baggage": BAGGAGE},
    "w3c": {"traceparent": f"00-{W3C_TRACE_ID}-{W3C_SPAN_ID}-01"},
    "malformed": {
        "sentry-trace": f"{TRACE_ID.upper()}-{SPAN_ID}",
        "traceparent": f"ff-{W3C_TRACE_ID}-{W3C_SPAN_ID}-01",
        "baggage": "k=v," * 200,  # over the member limit (a server refuses 8 KiB headers)
    },
    "none-1": {},
    "none-2": {},
}


def trace_of(event: dict[str, Any]) -> dict[str, Any]:
    trace: dict[str, Any] = event["contexts"]["trace"]
    return trace


def assert_fresh(trace: dict[str, Any], known: set[str]) -> None:
    """A trace this service started: none of the ids it was sent, no parent."""
    assert trace["trace_id"] not in known
    assert "parent_span_id" not in trace
    assert len(trace["trace_id"]) == 32
    assert len(trace["span_id"]) == 16


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # As in test_web_contract: no default client across tests; Sanic may start more than once.
    errlink.close(timeout=1)
    monkeypatch.setattr(Sanic, "test_mode", True)
    with isolated_scope():
        yield
    errlink.close(timeout=1)
    errlink.clear_breadcrumbs()


# -- web frameworks ------------------------------------------------------------------------------


@pytest.mark.parametrize("framework", list(SERVERS))
async def test_each_request_continues_its_callers_trace_or_starts_one(
    framework: str, collector: Collector, session: aiohttp.ClientSession
) -> None:
    process_trace = errlink.current_trace().trace_id
    async with SERVERS[framework](collector.dsn) as served:
        for name, headers in HEADERS.items():
            status, _ = await fetch(
                session, "GET", f"{served.base}/boom?why={name}", headers=headers
            )
            assert status == 500
        events = await collector.wait_for_events(len(HEADERS), EVENT_TIMEOUT)

    by_name = {newest_exception(event)["value"].removeprefix("boom: "): event for event in events}
    assert set(by_name) == set(HEADERS)

    sentry = trace_of(by_name["sentry"])
    assert sentry["trace_id"] == TRACE_ID
    assert sentry["parent_span_id"] == SPAN_ID
    assert sentry["span_id"] != SPAN_ID

    w3c = trace_of(by_name["w3c"])
    assert (w3c["trace_id"], w3c["parent_span_id"]) == (W3C_TRACE_ID, W3C_SPAN_ID)

    known = {TRACE_ID, W3C_TRACE_ID, process_trace}
    fresh = [trace_of(by_name[name]) for name in ("malformed", "none-1", "none-2")]
    for trace in fresh:
        assert_fresh(trace, known)
    assert len({trace["trace_id"] for trace in fresh}) == 3  # one per request


@pytest.mark.parametrize("framework", list(SERVERS))
async def test_concurrent_requests_never_share_a_trace(
    framework: str, collector: Collector
) -> None:
    # /work holds every request until all are in flight, then fails.
    def trace_id(n: int) -> str:
        return f"{n + 1:032x}"

    connector = aiohttp.TCPConnector(limit=CONCURRENT_REQUESTS)
    timeout = aiohttp.ClientTimeout(total=EVENT_TIMEOUT)
    async with SERVERS[framework](collector.dsn) as served:
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            results = await asyncio.gather(
                *(
                    fetch(
                        session,
                        "GET",
                        f"{served.base}/work?n={n}",
                        # Every other request carries no trace: it must get one of its own.
                        headers={"sentry-trace": f"{trace_id(n)}-{SPAN_ID}"} if n % 2 else {},
                    )
                    for n in range(CONCURRENT_REQUESTS)
                )
            )
        assert {status for status, _ in results} == {500}
        events = await collector.wait_for_events(CONCURRENT_REQUESTS, EVENT_TIMEOUT)

    started = set()
    for event in events:
        n = int(event["tags"]["n"])
        trace = trace_of(event)
        if n % 2:
            assert (trace["trace_id"], trace["parent_span_id"]) == (trace_id(n), SPAN_ID)
        else:
            assert "parent_span_id" not in trace
            started.add(trace["trace_id"])
    assert len(started) == CONCURRENT_REQUESTS // 2
    assert len({trace_of(event)["span_id"] for event in events}) == CONCURRENT_REQUESTS


# -- Celery ----------------------------------------------------------------------------------------

_DIGITS_TO_LETTERS = str.maketrans("0123456789", "ghijklmnop")


@pytest.fixture
def celery_app() -> Iterator[Celery]:
    """An app on its own in-memory queue, with errlink's receivers removed afterwards."""
    watched = [logging.getLogger(name) for name in ("", "celery", "celery.task")]
    saved = [(lg, lg.handlers[:], lg.level, lg.propagate) for lg in watched]
    app = Celery(f"errlink-trace-{uuid.uuid4().hex[:6]}", broker="memory://")
    app.conf.update(
        task_default_queue="trace-" + uuid.uuid4().hex.translate(_DIGITS_TO_LETTERS),
        broker_connection_retry_on_startup=True,
        broker_transport_options={"polling_interval": 0.01},
        result_backend="cache+memory://",
    )
    yield app
    app.close()
    errlink.close(timeout=2)
    for lg, handlers, level, propagate in saved:
        lg.handlers[:] = handlers
        lg.setLevel(level)
        lg.propagate = propagate


def test_a_task_runs_in_the_trace_of_the_scope_that_sent_it(
    celery_app: Celery, collector_thread: Any
) -> None:
    @celery_app.task(shared=False, name="trace.fail")
    def fail(label: str) -> None:
        raise RuntimeError(label)

    @celery_app.task(shared=False, name="trace.fan_out")
    def fan_out() -> None:
        fail.delay("sent by a task")  # from inside the worker: the task's own trace goes on
        raise RuntimeError("fan out")

    integration = setup(celery_app, dsn=collector_thread.dsn)
    try:
        events = _run_traced_tasks(celery_app, fail, fan_out, collector_thread)
    finally:
        integration.disconnect()
    sender, continued = events.pop("sender"), events.pop("continued-from")
    _assert_task_traces(events, sender, continued)


def _run_traced_tasks(
    celery_app: Celery, fail: Any, fan_out: Any, collector_thread: Any
) -> dict[str, Any]:
    with _worker(celery_app):
        with errlink.new_scope(new_trace=True):
            sender = errlink.current_trace()
            results = [fail.delay("traced"), fan_out.delay()]
        incoming = {"sentry-trace": f"{TRACE_ID}-{SPAN_ID}-1", "baggage": BAGGAGE}
        with errlink.continue_trace(incoming) as continued:
            results.append(fail.delay("continued"))
        # A producer's own header wins over errlink's; a malformed one starts a new trace.
        results.append(fail.apply_async(("foreign",), headers={"sentry-trace": "not-a-trace"}))
        untraced = [fail.delay("untraced 1"), fail.delay("untraced 2")]
        for result in results + untraced:
            _outcome(result, propagate=False)
        collector_thread.wait_for_events(7, timeout=EVENT_TIMEOUT)
        assert errlink.flush(10) is True
    events: dict[str, Any] = {newest_exception(e)["value"]: e for e in collector_thread.events()}
    assert len(events) == 7
    return {**events, "sender": sender, "continued-from": continued}


def _assert_task_traces(events: dict[str, Any], sender: Any, continued: Any) -> None:
    for label in ("traced", "fan out"):
        trace = trace_of(events[label])
        assert (trace["trace_id"], trace["parent_span_id"]) == (sender.trace_id, sender.span_id)
        assert trace["span_id"] != sender.span_id
    fan_out_span = trace_of(events["fan out"])["span_id"]
    child = trace_of(events["sent by a task"])
    assert (child["trace_id"], child["parent_span_id"]) == (sender.trace_id, fan_out_span)

    trace = trace_of(events["continued"])
    assert (trace["trace_id"], trace["parent_span_id"]) == (TRACE_ID, continued.span_id)

    known = {sender.trace_id, TRACE_ID}
    assert_fresh(trace_of(events["foreign"]), known)
    # Sent outside any request: the process's trace, one new span per task.
    process = errlink.current_trace()
    for label in ("untraced 1", "untraced 2"):
        trace = trace_of(events[label])
        assert (trace["trace_id"], trace["parent_span_id"]) == (process.trace_id, process.span_id)


# -- AWS Lambda ----------------------------------------------------------------------------------


def _http_events(headers: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The same request as each HTTP event shape delivers it."""
    return {
        "api gateway v1": {
            "httpMethod": "GET",
            "path": "/orders",
            "headers": headers,
            "requestContext": {"stage": "prod"},
        },
        "api gateway v2": {
            "version": "2.0",
            "rawPath": "/orders",
            "rawQueryString": "",
            "headers": {name.lower(): value for name, value in headers.items()},
            "requestContext": {"http": {"method": "GET", "path": "/orders"}},
        },
        "function url": {
            "version": "2.0",
            "rawPath": "/orders",
            "headers": {name.upper(): value for name, value in headers.items()},
            "requestContext": {"http": {"method": "GET", "path": "/orders"}},
        },
        "alb": {
            "httpMethod": "GET",
            "path": "/orders",
            "multiValueHeaders": {name: [value] for name, value in headers.items()},
            "requestContext": {"elb": {"targetGroupArn": "arn:aws:elasticloadbalancing:x"}},
        },
    }


def test_each_lambda_invocation_has_its_own_trace_continuing_http_callers(
    collector_thread: Any,
) -> None:
    @report_errors(dsn=collector_thread.dsn)
    def handler(event: dict[str, Any], context: Any) -> None:
        raise RuntimeError(event.get("label", "?"))

    def invoke(event: dict[str, Any]) -> None:
        handler(event, LambdaContext())

    events_sent: list[tuple[str, dict[str, Any]]] = []
    for shape, event in _http_events({"Sentry-Trace": f"{TRACE_ID}-{SPAN_ID}"}).items():
        events_sent.append((f"continued {shape}", event))
    for shape, event in _http_events(
        {"traceparent": f"00-{W3C_TRACE_ID}-{W3C_SPAN_ID}-00"}
    ).items():
        events_sent.append((f"w3c {shape}", event))
    for shape, event in _http_events({"Accept": "*/*"}).items():
        events_sent.append((f"untraced {shape}", event))
    # Not HTTP: a queue message whose body happens to look like a request's headers.
    queue = {"Records": [{"body": "x", "headers": {"sentry-trace": f"{TRACE_ID}-{SPAN_ID}"}}]}
    events_sent += [("queue 1", queue), ("queue 2", dict(queue))]

    for label, event in events_sent:
        with pytest.raises(RuntimeError):
            invoke({**event, "label": label})
    stored = collector_thread.wait_for_events(len(events_sent), timeout=EVENT_TIMEOUT)
    by_label = {newest_exception(e)["value"]: trace_of(e) for e in stored}
    assert set(by_label) == {label for label, _ in events_sent}

    known = {TRACE_ID, W3C_TRACE_ID, errlink.current_trace().trace_id}
    fresh = []
    for label, trace in by_label.items():
        if label.startswith("continued"):
            assert (trace["trace_id"], trace["parent_span_id"]) == (TRACE_ID, SPAN_ID), label
        elif label.startswith("w3c"):
            assert (trace["trace_id"], trace["parent_span_id"]) == (W3C_TRACE_ID, W3C_SPAN_ID)
        else:
            assert_fresh(trace, known)
            fresh.append(trace["trace_id"])
    assert len(set(fresh)) == len(fresh) == 6  # one trace per invocation


# -- errlink.init() alone, without the framework's extension --------------------------------------


def _quiet_init(dsn: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IntegrationWarning)
        errlink.init(dsn)


def test_flask_with_init_alone_continues_the_callers_trace(sink: Any) -> None:
    from flask import Flask

    app = Flask("init_alone")

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("flask without the extension")

    _quiet_init(sink.dsn)
    server, thread = serve_wsgi(app)
    try:
        traced = [f"Sentry-Trace: {TRACE_ID}-{SPAN_ID}".encode()]
        assert raw_request(server.port, "GET", b"/boom", headers=traced)[0] == 500
        assert raw_request(server.port, "GET", b"/boom")[0] == 500
    finally:
        server.shutdown()
        thread.join(EVENT_TIMEOUT)
        server.server_close()
    assert errlink.flush(EVENT_TIMEOUT)
    continued, fresh = sorted(
        (trace_of(e) for e in sink.wait_for_events(2, timeout=EVENT_TIMEOUT)),
        key=lambda trace: trace["trace_id"] != TRACE_ID,
    )
    assert (continued["trace_id"], continued["parent_span_id"]) == (TRACE_ID, SPAN_ID)
    assert_fresh(fresh, {TRACE_ID})


async def test_quart_with_init_alone_continues_the_callers_trace(
    sink: Any, session: aiohttp.ClientSession
) -> None:
    from quart import Quart

    app = Quart("init_alone")

    @app.get("/boom")
    async def boom() -> str:
        raise RuntimeError("quart without the extension")

    _quiet_init(sink.dsn)
    async with hypercorn_serving(app) as base:
        headers = {"traceparent": f"00-{W3C_TRACE_ID}-{W3C_SPAN_ID}-01"}
        assert (await fetch(session, "GET", f"{base}/boom", headers=headers))[0] == 500
    assert await asyncio.to_thread(errlink.flush, EVENT_TIMEOUT)
    [event] = await asyncio.to_thread(sink.wait_for_events, 1, EVENT_TIMEOUT)
    trace = trace_of(event)
    assert (trace["trace_id"], trace["parent_span_id"]) == (W3C_TRACE_ID, W3C_SPAN_ID)


def test_celery_with_init_alone_carries_the_trace_to_the_worker(
    celery_app: Celery, sink: Any
) -> None:
    @celery_app.task(shared=False, name="trace.init_alone")
    def fail() -> None:
        raise RuntimeError("celery without setup")

    _quiet_init(sink.dsn)
    with _worker(celery_app):
        with errlink.new_scope(new_trace=True):
            sender = errlink.current_trace()
            result = fail.delay()
        _outcome(result, propagate=False)
        [event] = sink.wait_for_events(1, timeout=EVENT_TIMEOUT)
    trace = trace_of(event)
    assert (trace["trace_id"], trace["parent_span_id"]) == (sender.trace_id, sender.span_id)
