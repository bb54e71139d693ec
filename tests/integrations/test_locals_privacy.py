"""Request data met in frame locals follows the request's privacy rules (docs/privacy.md).

Every framework's app (`_web_apps`) is served for real on 127.0.0.1 and sent one request that
carries a secret of every kind, each a unique sentinel: client addresses (X-Forwarded-For,
X-Real-Ip, and the peer itself, connecting from 127.0.0.3), cookies, an Authorization value, a
secret-named query parameter and a JSON body with a password field. The handler raises; the
event the collector received, searched as a whole, must hold none of them without
``send_default_pii``, while a harmless header (X-Request-Id) or parameter still shows in the
frames' locals (the locals were sent). The same goes for a Lambda function behind API Gateway, a
function URL or an ALB, for a Celery task, and for request data an application keeps itself.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import aiohttp
import pytest
from _async_web_helpers import EVENT_TIMEOUT, newest_exception
from _lambda_context import LambdaContext
from _web_apps import SERVERS
from celery import Celery, signals
from celery.contrib.testing.tasks import ping
from celery.contrib.testing.worker import start_worker
from celery.worker import state as worker_state
from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

import errlink
from errlink._capture.scope import isolated_scope
from errlink.collector import Collector
from errlink.integrations.awslambda import report_errors
from errlink.integrations.celery import setup
from errlink.sync import Client

# sanic-testing (which Sanic imports when it is installed) uses websockets' legacy client.
pytestmark = pytest.mark.filterwarnings("ignore:websockets.legacy is deprecated:DeprecationWarning")

PEER = "127.0.0.3"
FORWARDED_FOR = "198.51.100.71"
REAL_IP = "198.51.100.72"
SESSION_COOKIE = "ck-sentinel-3f9a"
PLAIN_COOKIE = "theme-sentinel-61c0"
AUTHORIZATION = "az-sentinel-8d2c"
QUERY_TOKEN = "qt-sentinel-5e1b"
PASSWORD = "pw-sentinel-7a4e"
HARMLESS = "harmless-sentinel-h"

# What must never leave without send_default_pii, by what it is.
PERSONAL = {
    "peer address": PEER,
    "X-Forwarded-For": FORWARDED_FOR,
    "X-Real-Ip": REAL_IP,
    "session cookie": SESSION_COOKIE,
    "plain cookie": PLAIN_COOKIE,
}
# What must never leave at all.
SECRET = {
    "Authorization": AUTHORIZATION,
    "query token": QUERY_TOKEN,
    "body password": PASSWORD,
}
HEADERS = {
    "Authorization": f"Bearer {AUTHORIZATION}",
    "Cookie": f"sessionid={SESSION_COOKIE}; theme={PLAIN_COOKIE}",
    "X-Forwarded-For": FORWARDED_FOR,
    "X-Real-Ip": REAL_IP,
    "X-Request-Id": HARMLESS,
}
QUERY = f"token={QUERY_TOKEN}&q={HARMLESS}"
BODY = {"item": "tea", "password": PASSWORD}
# Frameworks whose frames hold the request's headers (an environ, an ASGI scope); the others
# hold their request as an object, shown by its repr (the URL, or the path alone) or not at all
# (Tornado's handler).
HEADERS_IN_LOCALS = {"flask", "starlette", "fastapi", "litestar"}


def found(value: Any, sentinels: dict[str, str], path: str = "") -> list[str]:
    """Where each sentinel shows in JSON data, as ``what at path`` (keys searched too)."""
    places: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            places += found(key, sentinels, f"{path}.{key}<key>")
            places += found(item, sentinels, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            places += found(item, sentinels, f"{path}[{index}]")
    elif isinstance(value, str):
        places += [f"{what} at {path}" for what, text in sentinels.items() if text in value]
    return places


def frame_vars(event: dict[str, Any]) -> str:
    """The locals of every frame of the event, as one JSON text."""
    frames = [
        frame
        for value in event["exception"]["values"]
        for frame in value.get("stacktrace", {}).get("frames", [])
    ]
    return json.dumps([frame.get("vars") for frame in frames])


async def send_secrets(base: str) -> int:
    """POST /echo with every sentinel, from 127.0.0.3; the app answers 500."""
    connector = aiohttp.TCPConnector(local_addr=(PEER, 0))
    timeout = aiohttp.ClientTimeout(total=EVENT_TIMEOUT)
    async with (
        aiohttp.ClientSession(connector=connector, timeout=timeout) as session,
        session.post(f"{base}/echo?{QUERY}", json=BODY, headers=HEADERS) as answer,
    ):
        await answer.read()
        return answer.status


@pytest.fixture(autouse=True)
def _sanic_test_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    # Sanic rewrites some of its methods when an app starts; in test mode it rewrites the
    # originals each time, so that later tests in this process can start apps of their own.
    sanic = pytest.importorskip("sanic")
    monkeypatch.setattr(sanic.Sanic, "test_mode", True)


@pytest.fixture(params=list(SERVERS))
def framework(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


async def reported_event(framework: str, collector: Collector, **options: Any) -> dict[str, Any]:
    async with SERVERS[framework](collector.dsn, **options) as served:
        assert await send_secrets(served.base) == 500
        [event] = await collector.wait_for_events(1, EVENT_TIMEOUT)
    return event


async def test_no_personal_data_or_secret_in_the_event_without_pii(
    framework: str, collector: Collector
) -> None:
    event = await reported_event(framework, collector)

    leaks = found(event, PERSONAL | SECRET)
    assert not leaks, "\n".join(leaks)
    if framework in HEADERS_IN_LOCALS:
        assert HARMLESS in frame_vars(event)  # the locals were sent, request data and all
    else:
        assert newest_exception(event)["stacktrace"]["frames"][-1]["vars"]


async def test_with_pii_client_addresses_show_but_secrets_stay_filtered(
    collector: Collector,
) -> None:
    event = await reported_event("flask", collector, send_default_pii=True)

    assert found(event, SECRET) == []
    assert FORWARDED_FOR in frame_vars(event)
    assert PEER in frame_vars(event)


# -- AWS Lambda behind API Gateway, a function URL or an ALB -------------------------------------

SOURCE_IP = "203.0.113.55"
LAMBDA_PERSONAL = PERSONAL | {"source IP": SOURCE_IP}


def _rest_api_event() -> dict[str, Any]:
    """API Gateway REST API (payload 1.0)."""
    return {
        "resource": "/echo",
        "path": "/echo",
        "httpMethod": "POST",
        "headers": {**HEADERS, "Host": "api.example.com", "Content-Type": "application/json"},
        "multiValueHeaders": {name: [value] for name, value in HEADERS.items()},
        "queryStringParameters": {"token": QUERY_TOKEN, "q": HARMLESS},
        "multiValueQueryStringParameters": {"token": [QUERY_TOKEN], "q": [HARMLESS]},
        "requestContext": {
            "stage": "prod",
            "identity": {"sourceIp": SOURCE_IP, "userAgent": "curl/8"},
            "domainName": "api.example.com",
        },
        "body": json.dumps(BODY),
        "isBase64Encoded": False,
    }


def _http_api_event() -> dict[str, Any]:
    """API Gateway HTTP API or a function URL (payload 2.0), the body in base64."""
    return {
        "version": "2.0",
        "routeKey": "POST /echo",
        "rawPath": "/echo",
        "rawQueryString": QUERY,
        "cookies": [f"sessionid={SESSION_COOKIE}", f"theme={PLAIN_COOKIE}"],
        "headers": {
            "authorization": HEADERS["Authorization"],
            "x-forwarded-for": FORWARDED_FOR,
            "x-real-ip": REAL_IP,
            "content-type": "application/json",
        },
        "queryStringParameters": {"token": QUERY_TOKEN, "q": HARMLESS},
        "requestContext": {
            "domainName": "abc.lambda-url.eu-west-1.on.aws",
            "http": {"method": "POST", "path": "/echo", "sourceIp": SOURCE_IP},
        },
        "body": base64.b64encode(json.dumps(BODY).encode()).decode(),
        "isBase64Encoded": True,
    }


def _alb_event() -> dict[str, Any]:
    """An Application Load Balancer target, multi-value headers on."""
    return {
        "requestContext": {"elb": {"targetGroupArn": "arn:aws:elasticloadbalancing:tg/shop"}},
        "httpMethod": "POST",
        "path": "/echo",
        "multiValueQueryStringParameters": {"token": [QUERY_TOKEN], "q": [HARMLESS]},
        "multiValueHeaders": {
            **{name.lower(): [value] for name, value in HEADERS.items()},
            "x-forwarded-for": [f"{FORWARDED_FOR}, {SOURCE_IP}"],
        },
        "body": json.dumps(BODY),
        "isBase64Encoded": False,
    }


LAMBDA_EVENTS = {"rest": _rest_api_event, "http": _http_api_event, "alb": _alb_event}


@pytest.mark.parametrize("kind", list(LAMBDA_EVENTS))
def test_lambda_events_in_locals_follow_the_request_rules(kind: str, collector_thread: Any) -> None:
    @report_errors(dsn=collector_thread.dsn)
    def handler(event: dict[str, Any], context: Any) -> None:
        raise RuntimeError("cannot order tea")

    with isolated_scope(), pytest.raises(RuntimeError):
        handler(LAMBDA_EVENTS[kind](), LambdaContext())
    [event] = collector_thread.events()

    leaks = found(event, LAMBDA_PERSONAL | SECRET)
    assert not leaks, "\n".join(leaks)
    assert HARMLESS in frame_vars(event)


# -- Celery ------------------------------------------------------------------------------------


@contextmanager
def _celery_worker(app: Celery) -> Iterator[None]:
    """An in-process worker, stopped warm at the end (as test_celery.py does: a cold stop waits
    seconds for the consume loop)."""
    stopped = threading.Event()

    def on_shutdown(sender: Any = None, **_: Any) -> None:
        stopped.set()

    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
        yield
        signals.worker_shutdown.connect(on_shutdown, weak=False)
        try:
            worker_state.should_stop = 0  # what Celery's SIGTERM handler does
            for _ in range(2):  # wakes the consume loop, which polls once more after the stop
                ping.apply_async(queue=app.conf.task_default_queue)
            assert stopped.wait(EVENT_TIMEOUT), "the worker did not stop"
        finally:
            worker_state.should_stop = None
            signals.worker_shutdown.disconnect(on_shutdown)


def test_celery_task_frames_hold_no_secret_kwarg(collector_thread: Any) -> None:
    app = Celery("errlink-locals", broker="memory://", backend="cache+memory://")
    app.conf.update(
        task_default_queue="errlink-locals",
        broker_connection_retry_on_startup=True,
        broker_transport_options={"polling_interval": 0.01},
    )

    @app.task(shared=False, name="shop.charge")
    def charge(order_id: int, *, password: str, note: str) -> None:
        raise ValueError(f"card declined for order {order_id}")

    # The worker (re)configures logging: what it changes is put back below.
    watched = [logging.getLogger(name) for name in ("", "celery", "celery.task")]
    saved = [(lg, lg.handlers[:], lg.level, lg.propagate) for lg in watched]
    integration = setup(app, dsn=collector_thread.dsn)
    try:
        with _celery_worker(app):
            result = charge.delay(7, password=PASSWORD, note=HARMLESS)
            with pytest.raises(ValueError):
                result.get(timeout=EVENT_TIMEOUT)
            collector_thread.wait_for_events(1, timeout=EVENT_TIMEOUT)
    finally:
        integration.disconnect()
        errlink.close(timeout=2)
        app.close()
        for lg, handlers, level, propagate in saved:
            lg.handlers[:] = handlers
            lg.setLevel(level)
            lg.propagate = propagate
    [event] = collector_thread.events()

    leaks = found(event, SECRET)
    assert not leaks, "\n".join(leaks)
    assert HARMLESS in frame_vars(event)


# -- request data an application keeps in its own locals ---------------------------------------


def _hold_request_data(environ: dict[str, Any], tornado_request: Any) -> None:
    # Locals the event should carry, scrubbed.
    headers = Request(environ).headers  # noqa: F841 - werkzeug's EnvironHeaders: not a mapping
    header_copy = dict(HEADERS)  # noqa: F841
    body = json.dumps(BODY).encode()  # noqa: F841
    nested = {"a": {"b": {"c": {"d": environ}}}}  # noqa: F841 - deeper than locals are opened
    raise RuntimeError("cannot order tea")


def test_request_data_held_by_application_code(collector_thread: Any) -> None:
    environ = EnvironBuilder(
        path="/echo",
        query_string=QUERY,
        headers=HEADERS,
        environ_overrides={"REMOTE_ADDR": PEER},
    ).get_environ()
    tornado_request = HTTPServerRequest(
        start_line=RequestStartLine("POST", f"/echo?{QUERY}", "HTTP/1.1"),
        headers=HTTPHeaders({**HEADERS, "Host": "shop.example"}),
    )
    tornado_request.remote_ip = PEER

    with Client(collector_thread.dsn) as client:
        try:
            _hold_request_data(environ, tornado_request)
        except RuntimeError as exc:
            client.capture_exception(exc)
        assert client.flush(EVENT_TIMEOUT)
    [event] = collector_thread.events()

    leaks = found(event, PERSONAL | SECRET)
    assert not leaks, "\n".join(leaks)
    names = newest_exception(event)["stacktrace"]["frames"][-1]["vars"]
    assert set(names) == {"environ", "tornado_request", "headers", "header_copy", "body", "nested"}
    assert ["X-Request-Id", HARMLESS] in names["headers"]
