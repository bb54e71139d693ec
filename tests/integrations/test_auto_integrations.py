"""`errlink.init()` alone in an app that imported a framework: the sentry-sdk habit (issue 19,
item 2).

Each framework runs for real (a werkzeug server, Django's handler in a fresh interpreter,
Celery's task tracer, hypercorn) without errlink's extension, and errlink's collector must get
the framework's event: request (or task), transaction, ``handled: false``, mechanism.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Iterator
from typing import Any

import aiohttp
import aiohttp.web
import fastapi
import litestar
import pytest
import sanic
import starlette
import tornado.web
from _asgi_serving import hypercorn_serving
from _async_web_helpers import EVENT_TIMEOUT, fetch, mechanism, newest_exception
from celery import Celery
from flask import Flask, request
from quart import Quart
from quart import request as quart_request

import errlink
from errlink.integrations import _auto
from errlink.integrations._auto import IntegrationWarning
from errlink.integrations.celery import setup as celery_setup
from errlink.integrations.flask import Errlink as FlaskErrlink
from errlink.integrations.quart import Errlink as QuartErrlink
from errlink.sync import default_client
from tests.integrations._raw_http import raw_request, serve_wsgi

pytestmark = pytest.mark.usefixtures("no_default_client")

ALL_ADVISED = (sanic, tornado.web, aiohttp.web, starlette, fastapi, litestar)  # imported: advised


@pytest.fixture(autouse=True)
def _advice_not_given_yet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_auto, "_advised", set())


def _events(sink: Any, count: int) -> list[dict[str, Any]]:
    assert errlink.flush(EVENT_TIMEOUT)
    events = sink.events()
    assert len(events) == count, [e.get("exception", e.get("logentry")) for e in events]
    return events


def _quiet_init(dsn: str, **options: Any) -> errlink.Client:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IntegrationWarning)
        return errlink.init(dsn, **options)


# -- Flask ---------------------------------------------------------------------------------------


def flask_app() -> Flask:
    app = Flask("shop")

    @app.route("/orders/<int:order_id>", methods=["POST"])
    def create_order(order_id: int) -> str:
        raise ValueError(f"cannot order {request.form['item']} for {order_id}")

    return app


def _fail_over_a_real_server(app: Any) -> int:
    server, thread = serve_wsgi(app)
    try:
        form = [b"Content-Type: application/x-www-form-urlencoded"]
        status, _ = raw_request(server.port, "POST", b"/orders/7?ref=mail", b"item=tea", form)
    finally:
        server.shutdown()
        thread.join(EVENT_TIMEOUT)
        server.server_close()
    assert status == 500
    return int(server.port)


def test_flask_init_alone_reports_with_request_and_transaction(sink: Any) -> None:
    client = _quiet_init(sink.dsn)
    port = _fail_over_a_real_server(flask_app())
    [event] = _events(sink, 1)
    assert newest_exception(event)["value"] == "cannot order tea for 7"
    assert mechanism(event) == ("flask", False)
    assert event["transaction"] == "create_order"
    req = event["request"]
    assert (req["method"], req["url"]) == ("POST", f"http://127.0.0.1:{port}/orders/7")
    assert (req["query_string"], req["data"]) == ("ref=mail", {"item": "tea"})
    assert "flask" in event["sdk"]["integrations"]
    assert "flask" in client.core.builder.sdk["integrations"]


def test_flask_init_and_the_extension_report_once(sink: Any) -> None:
    _quiet_init(sink.dsn)
    app = flask_app()
    FlaskErrlink(app)  # no DSN: the extension uses init()'s client
    _fail_over_a_real_server(app)
    [event] = _events(sink, 1)
    assert mechanism(event) == ("flask", False)
    assert event["transaction"] == "create_order"


def test_default_integrations_false_leaves_flask_to_logging(sink: Any) -> None:
    _quiet_init(sink.dsn, default_integrations=False)
    _fail_over_a_real_server(flask_app())
    [event] = _events(sink, 1)  # Flask's own log line of the exception, without the request
    assert mechanism(event) == ("logging", True)
    assert "request" not in event
    assert "flask" not in event["sdk"]["integrations"]


def test_integrations_limits_what_init_hooks(sink: Any) -> None:
    client = _quiet_init(sink.dsn, integrations=["celery"])
    assert "celery" in client.core.builder.sdk["integrations"]
    assert "flask" not in client.core.builder.sdk["integrations"]
    _fail_over_a_real_server(flask_app())
    [event] = _events(sink, 1)
    assert mechanism(event) == ("logging", True)

    client = _quiet_init(sink.dsn, integrations=["flask"])
    hooked = set(client.core.builder.sdk["integrations"]) & set(_auto.NAMES)
    assert hooked == {"flask"}


def test_unknown_names_are_clear_errors() -> None:
    allowed = "allowed: 'flask', 'django', 'celery', 'quart', 'sanic', 'tornado', 'aiohttp'"
    with pytest.raises(ValueError, match=f"unknown integration 'flsk' in integrations; {allowed}"):
        errlink.init("http://key@127.0.0.1:9/1", integrations=["flsk"])
    with pytest.raises(ValueError, match="logging_event_level=None"):
        errlink.init("http://key@127.0.0.1:9/1", integrations=["logging"])
    with pytest.raises(TypeError, match="list of names"):
        errlink.init("http://key@127.0.0.1:9/1", integrations="flask")
    with pytest.raises(TypeError, match="default_integrations must be True or False"):
        errlink.init("http://key@127.0.0.1:9/1", default_integrations="no")  # type: ignore[arg-type]
    assert default_client() is None


# -- frameworks that need their extension -------------------------------------------------------


def test_frameworks_that_need_their_extension_are_named_once(sink: Any) -> None:
    with pytest.warns(IntegrationWarning) as advice:
        errlink.init(sink.dsn)
    texts = {str(w.message) for w in advice}
    assert all(w.filename == __file__ for w in advice)  # points at the init() call
    assert (
        "errlink.init() cannot report Sanic errors with their request: Sanic handles them "
        "inside the app, where no global hook reaches. Add `Errlink(app, dsn=...)` from "
        "errlink.integrations.sanic where the app is created. (Done already? Leave 'sanic' out "
        "of errlink.init(integrations=[...]) or pass default_integrations=False.)"
    ) in texts
    for line, source in [
        ("Errlink(app, dsn=...)", "errlink.integrations.tornado"),
        ("Errlink(app, dsn=...)", "errlink.integrations.aiohttp"),
        ("Errlink(app, dsn=...)", "errlink.integrations.fastapi"),
        ("Litestar(..., plugins=[ErrlinkPlugin(dsn=...)])", "errlink.integrations.litestar"),
    ]:
        assert any(f"Add `{line}` from {source} " in text for text in texts), texts
    assert not any("errlink.integrations.starlette" in text for text in texts)  # FastAPI's says it
    with warnings.catch_warnings(record=True) as again:
        warnings.simplefilter("always")
        errlink.init(sink.dsn)
    assert [w for w in again if issubclass(w.category, IntegrationWarning)] == []


def test_a_named_framework_that_needs_its_extension_is_advised(sink: Any) -> None:
    with pytest.warns(IntegrationWarning) as advice:
        errlink.init(sink.dsn, integrations=["tornado", "flask"])
    [text] = [str(w.message) for w in advice]
    assert "Add `Errlink(app, dsn=...)` from errlink.integrations.tornado " in text


def test_no_advice_when_not_asked(sink: Any) -> None:
    with warnings.catch_warnings(record=True) as given:
        warnings.simplefilter("always")
        errlink.init(sink.dsn, integrations=["flask"])
        errlink.init(sink.dsn, default_integrations=False)
    assert [w for w in given if issubclass(w.category, IntegrationWarning)] == []


# -- Celery --------------------------------------------------------------------------------------


@pytest.fixture
def celery_app() -> Iterator[Celery]:
    app = Celery("auto-shop", broker="memory://", backend="cache+memory://")
    yield app
    app.close()


def test_celery_init_alone_reports_failing_tasks(sink: Any, celery_app: Celery) -> None:
    @celery_app.task(shared=False, name="auto.charge", throws=(KeyError,))
    def charge(order_id: int, expected: bool = False) -> None:
        if expected:
            raise KeyError("an error the task expects")
        raise ConnectionError(f"card service down for order {order_id}")

    _quiet_init(sink.dsn)
    assert charge.apply(args=(7,)).state == "FAILURE"
    assert charge.apply(args=(8,), kwargs={"expected": True}).state == "FAILURE"
    [event] = _events(sink, 1)
    assert newest_exception(event)["value"] == "card service down for order 7"
    assert mechanism(event) == ("celery", False)
    assert event["transaction"] == "auto.charge"
    assert event["tags"]["celery.task"] == "auto.charge"
    context = event["contexts"]["celery"]
    assert (context["task"], context["args"], context["eager"]) == ("auto.charge", [7], True)


def test_celery_init_and_setup_report_once(sink: Any, celery_app: Celery) -> None:
    @celery_app.task(shared=False, name="auto.refund")
    def refund() -> None:
        raise ConnectionError("bank down")

    _quiet_init(sink.dsn)
    integration = celery_setup(celery_app)
    try:
        assert refund.apply().state == "FAILURE"
    finally:
        integration.disconnect()
    [event] = _events(sink, 1)
    assert mechanism(event) == ("celery", False)


# -- Quart ---------------------------------------------------------------------------------------


def quart_app() -> Quart:
    app = Quart("shop")

    @app.post("/orders/<int:order_id>")
    async def create_order(order_id: int) -> str:
        raise ValueError(f"cannot order {(await quart_request.form)['item']} for {order_id}")

    return app


async def _fail_over_hypercorn(app: Quart, session: aiohttp.ClientSession) -> str:
    async with hypercorn_serving(app) as base:
        status, _ = await fetch(session, "POST", f"{base}/orders/7?ref=mail", data={"item": "tea"})
    assert status == 500
    return base


async def _quart_events(sink: Any, count: int) -> list[dict[str, Any]]:
    return await asyncio.to_thread(_events, sink, count)


async def test_quart_init_alone_reports_with_request_and_transaction(
    sink: Any, session: aiohttp.ClientSession
) -> None:
    _quiet_init(sink.dsn)
    base = await _fail_over_hypercorn(quart_app(), session)
    [event] = await _quart_events(sink, 1)
    assert newest_exception(event)["value"] == "cannot order tea for 7"
    assert mechanism(event) == ("quart", False)
    assert event["transaction"] == "create_order"
    req = event["request"]
    assert (req["method"], req["url"]) == ("POST", f"{base}/orders/7")
    assert (req["query_string"], req["data"]) == ("ref=mail", {"item": "tea"})


async def test_quart_init_and_the_extension_report_once(
    sink: Any, session: aiohttp.ClientSession
) -> None:
    _quiet_init(sink.dsn)
    app = quart_app()
    QuartErrlink(app, dsn=sink.dsn)
    await _fail_over_hypercorn(app, session)
    [event] = await asyncio.to_thread(sink.wait_for_events, 1, EVENT_TIMEOUT)
    assert mechanism(event) == ("quart", False)
    assert errlink.flush(EVENT_TIMEOUT)
    assert len(sink.events()) == 1


# -- Django, in a fresh interpreter: this one has the errlink app installed ----------------------

DJANGO_SCRIPT = textwrap.dedent(
    """
    import sys
    import django
    from django.conf import settings
    from django.http import HttpResponse
    from django.urls import path

    import errlink

    def create_order(request, order_id):
        raise ValueError(f"cannot order {request.POST['item']} for {order_id}")

    urlpatterns = [path("orders/<int:order_id>/", create_order, name="create-order")]
    with_app = sys.argv[2] == "with-app"
    errlink.init(sys.argv[1], integrations=["django"])  # Django is imported: hooked
    settings.configure(
        DEBUG=False,
        ALLOWED_HOSTS=["testserver"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=["errlink.integrations.django"] if with_app else [],
        MIDDLEWARE=[],
    )
    django.setup()
    from django.test import Client

    response = Client(raise_request_exception=False).post("/orders/7/?ref=mail", {"item": "tea"})
    assert response.status_code == 500, response.status_code
    assert errlink.flush(10)
    """
)


@pytest.mark.parametrize("installed", ["alone", "with-app"])
def test_django_init_reports_with_request_and_transaction(sink: Any, installed: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", DJANGO_SCRIPT, sink.dsn, installed],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    [event] = sink.wait_for_events(1, timeout=EVENT_TIMEOUT)
    assert newest_exception(event)["value"] == "cannot order tea for 7"
    assert mechanism(event) == ("django", False)
    assert event["transaction"] == "create-order"
    req = event["request"]
    assert (req["method"], req["url"]) == ("POST", "http://testserver/orders/7/")
    assert (req["query_string"], req["data"]) == ("ref=mail", {"item": "tea"})
    assert len(sink.events()) == 1
