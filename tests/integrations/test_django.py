"""The Django integration (WSGI) through Django's test client and a real server on 127.0.0.1,
delivering to errlink's collector.

What every web integration does on a real server (request data, status codes, bodies, personal
data, scope isolation) is tested once for all of them in `test_web_contract`; here is the rest.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from _django_project import errlink_configured, errlink_off, setup_django

setup_django()

from django.apps import apps  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.exceptions import ImproperlyConfigured  # noqa: E402
from django.core.handlers.wsgi import WSGIHandler  # noqa: E402
from django.test import Client as DjangoClient  # noqa: E402
from django.test.utils import override_settings  # noqa: E402

import errlink  # noqa: E402
from errlink.integrations.django import _middleware  # noqa: E402
from errlink.integrations.logging import EventHandler  # noqa: E402
from tests.integrations import _wsgi_contract as contract  # noqa: E402
from tests.integrations._wsgi_contract import AUTHORIZATION, FLUSH_TIMEOUT, PASSWORD  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


pytestmark = pytest.mark.usefixtures("no_default_client")


def _events(sink: Any, client: errlink.Client, count: int) -> list[dict[str, Any]]:
    assert client.flush(FLUSH_TIMEOUT)
    events = sink.events()
    assert len(events) == count, [e.get("exception", e.get("logentry")) for e in events]
    return events


def _exception(event: dict[str, Any]) -> dict[str, Any]:
    value: dict[str, Any] = event["exception"]["values"][-1]
    return value


def _queries(event: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in event.get("breadcrumbs", {}).get("values", []) if c["category"] == "query"]


def _client() -> DjangoClient:
    return DjangoClient(raise_request_exception=False)


def test_unhandled_error_with_request_sql_and_scrubbed_secrets(sink: Any) -> None:
    with errlink_configured(dsn=sink.dsn) as client:
        browser = _client()
        browser.cookies["sessionid"] = "s3cr3t-session"
        response = browser.post(
            "/orders/7/?ref=mail&token=abc",
            {"quantity": "5", "password": PASSWORD, "customer": "ann"},
            headers={"Authorization": AUTHORIZATION, "X-Request-Id": "r-1"},
        )
        assert response.status_code == 500
        [event] = _events(sink, client, 1)

    view = contract.assert_order_error_reported_without_pii(event, "django")
    assert (view["function"], view["module"], view["in_app"]) == (
        "create_order",
        "_django_views",
        True,
    )
    assert event["transaction"] == "create-order"
    req = event["request"]
    assert req["url"] == "http://testserver/orders/7/"
    assert req["data"] == {"quantity": "5", "password": "[Filtered]", "customer": "ann"}

    [query] = _queries(event)
    # The query reads "auth_user": a name with "auth" in it, which Relay's default scrubbing
    # filters whole, and errlink with it.
    assert query["message"] == "[Filtered]"
    assert query["type"] == "query"
    assert query["data"]["db.alias"] == "default"
    assert "params" not in query["data"]  # parameters only with send_default_pii
    logs = [c["message"] for c in event["breadcrumbs"]["values"] if c["category"] == "shop"]
    assert logs == ["creating order 7 for 0 known customer(s)"]
    assert "django" in event["sdk"]["integrations"]
    for secret in (PASSWORD, AUTHORIZATION, "s3cr3t-session"):
        assert secret not in str(event)


def test_pii_on_adds_the_user_cookies_and_query_parameters(sink: Any) -> None:
    with errlink_configured(dsn=sink.dsn, send_default_pii=True) as client:
        browser = _client()
        assert browser.get("/login/ann/").status_code == 200
        browser.cookies["theme"] = "dark"
        response = browser.get("/shop/me/", headers={"Authorization": AUTHORIZATION})
        assert response.status_code == 500
        [event] = _events(sink, client, 1)

    assert _exception(event)["value"] == "profile of ann is gone"
    assert event["transaction"] == "shop:profile"
    user = event["user"]
    assert (user["username"], user["email"]) == ("ann", "ann@example.com")
    assert user["id"].isdigit()
    req = event["request"]
    assert req["cookies"]["sessionid"] == "[Filtered]"
    assert req["cookies"]["theme"] == "dark"
    assert req["headers"]["Authorization"] == "[Filtered]"
    assert req["env"]["REMOTE_ADDR"] == "127.0.0.1"
    tables = " ".join(query["message"] for query in _queries(event))
    assert "django_session" in tables
    assert "[Filtered]" in tables  # the query on "auth_user" (see above)
    assert all("params" in query["data"] for query in _queries(event))


def test_a_user_never_loaded_costs_no_query(sink: Any) -> None:
    with errlink_configured(dsn=sink.dsn, send_default_pii=True) as client:
        browser = _client()
        browser.get("/login/bob/")
        assert browser.post("/raw/", b"x", content_type="text/plain").status_code == 500
        [event] = _events(sink, client, 1)
    assert "user" not in event
    assert _queries(event) == []  # neither the session nor the user was looked up
    assert event["request"]["data"] == "x"


@pytest.mark.parametrize(
    ("style", "expected"),
    [
        ("url_name", "_django_views.unnamed"),  # no URL name: Django's view path
        ("route", "unnamed/"),
        ("function", "_django_views.unnamed"),
    ],
)
def test_transaction_styles(sink: Any, style: str, expected: str) -> None:
    with errlink_configured(dsn=sink.dsn, transaction_style=style) as client:
        assert _client().get("/unnamed/").status_code == 500
        [event] = _events(sink, client, 1)
    assert event["transaction"] == expected


def test_sql_breadcrumbs_can_be_turned_off(sink: Any) -> None:
    with errlink_configured(dsn=sink.dsn, sql_breadcrumbs=False) as client:
        assert _client().post("/orders/4/", {"quantity": "7"}).status_code == 500
        [event] = _events(sink, client, 1)
    assert _queries(event) == []
    assert event["transaction"] == "create-order"


def test_without_the_middleware_the_error_still_carries_its_request(sink: Any) -> None:
    with errlink_configured(dsn=sink.dsn) as client:
        without = [m for m in settings.MIDDLEWARE if not m.startswith("errlink.")]
        with override_settings(MIDDLEWARE=without):
            assert _client().post("/orders/5/?x=1", {"quantity": "8"}).status_code == 500
        [event] = _events(sink, client, 1)
    assert _exception(event)["value"] == "too many: 8"
    assert event["transaction"] == "create-order"
    assert event["request"]["url"] == "http://testserver/orders/5/"
    assert event["request"]["data"] == {"quantity": "8"}


def test_not_found_forbidden_and_disallowed_host_are_not_errors(sink: Any) -> None:
    with errlink_configured(dsn=sink.dsn) as client:
        browser = _client()
        assert browser.get("/no-such-page/").status_code == 404
        assert browser.get("/forbidden/").status_code == 403
        assert browser.get("/hello/", headers={"Host": "evil.example"}).status_code == 400
        assert browser.get("/log-error/").status_code == 200
        [logged] = _events(sink, client, 1)
    # Only the explicit error log became an event; the 404 and 403 warnings are breadcrumbs.
    assert logged["logentry"]["formatted"] == "payment provider said no"
    assert logged["transaction"] == "log-error"

    with errlink_configured(dsn=sink.dsn, ignore_disallowed_host=False) as client:
        assert _client().get("/hello/", headers={"Host": "evil.example"}).status_code == 400
        events = _events(sink, client, 2)
    assert _exception(events[-1])["type"] == "DisallowedHost"


def test_a_5xx_response_a_view_returns_is_reported_as_django_logs_it(sink: Any) -> None:
    # No Django exception carries a 503: a view returns it, and Django logs every 5xx
    # response at ERROR, which the logging integration turns into an event.
    with errlink_configured(dsn=sink.dsn) as client:
        response = _client().get("/unavailable/")
        [event] = _events(sink, client, 1)
    assert (response.status_code, response.content) == (503, b"down for maintenance")
    assert "exception" not in event
    assert (event["logger"], event["level"]) == ("django.request", "error")
    assert event["logentry"]["formatted"] == "Service Unavailable: /unavailable/"


def test_request_context_is_built_only_for_an_event(
    sink: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    builds = contract.record_calls(monkeypatch, _middleware, "request_context")
    with errlink_configured(dsn=sink.dsn) as client:
        browser = _client()
        for _ in range(5):
            assert browser.get("/hello/").status_code == 200
        assert builds == []
        browser.get("/raw/")
        _events(sink, client, 1)
    assert len(builds) == 1


def test_logging_handler_from_the_logging_setting(sink: Any) -> None:
    shop = logging.getLogger("shop")
    handler = EventHandler(event_level="ERROR", breadcrumb_level="INFO")
    shop.addHandler(handler)
    logging_setting = {
        "version": 1,
        "handlers": {"errlink": {"class": "errlink.integrations.logging.EventHandler"}},
        "loggers": {"shop": {"handlers": ["errlink"]}},
    }
    try:
        with override_settings(LOGGING=logging_setting), errlink_configured(dsn=sink.dsn) as client:
            root_handlers = [h for h in logging.getLogger().handlers if isinstance(h, EventHandler)]
            assert root_handlers == []  # LOGGING routes records already: no second handler
            assert _client().get("/log-error/").status_code == 200
            [event] = _events(sink, client, 1)
    finally:
        shop.removeHandler(handler)
    assert event["logentry"]["formatted"] == "payment provider said no"
    assert event["logger"] == "shop"
    assert event["request"]["url"] == "http://testserver/log-error/"


def test_without_the_setting_an_existing_default_client_is_kept(sink: Any) -> None:
    mine = errlink.init(sink.dsn, environment="set-by-hand")
    with override_settings(ERRLINK=None):
        apps.get_app_config("errlink").ready()
    assert errlink.sync.default_client() is mine
    assert _client().get("/raw/").status_code == 500
    [event] = _events(sink, mine, 1)
    assert event["environment"] == "set-by-hand"
    assert event["transaction"] == "raw"
    assert "django" in event["sdk"]["integrations"]


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"dsn": "not a dsn"}, "settings.ERRLINK['dsn'] is invalid"),
        ({"dsn": "", "sample_rate": 3}, "settings.ERRLINK['sample_rate'] is invalid"),
        (
            {"dns": "https://k@h/1"},
            "settings.ERRLINK has unknown key(s) 'dns' (did you mean 'dsn'?); allowed: dsn, ",
        ),
        (
            {"traces_sample_rate": 1.0, "include_local_variables": False},
            "settings.ERRLINK has unknown key(s) 'include_local_variables' (sentry-sdk's name for "
            "errlink's 'include_locals'), 'traces_sample_rate' (not supported: errlink reports "
            "errors, and has no tracing or profiling); allowed: ",
        ),
        ({"transaction_style": "path"}, "settings.ERRLINK['transaction_style'] must be"),
        ({"logging_event_level": "LOUD"}, "settings.ERRLINK['logging_event_level'] is invalid"),
        ("https://k@h/1", "settings.ERRLINK must be a dict"),
    ],
)
def test_misconfiguration_fails_at_start_up_naming_the_setting(
    setting: object, message: str
) -> None:
    with override_settings(ERRLINK=setting), pytest.raises(ImproperlyConfigured) as raised:
        apps.get_app_config("errlink").ready()
    assert message in str(raised.value)


def test_errlink_prefixed_settings_are_warnings_saying_where_they_belong() -> None:
    with (
        override_settings(
            ERRLINK={"dsn": ""}, ERRLINK_DSN="https://k@h/1", ERRLINK_ENVIROMENT="prod"
        ),
        pytest.warns(errlink.ConfigurationWarning) as warned,
    ):
        apps.get_app_config("errlink").ready()
    assert sorted(str(record.message) for record in warned) == [
        "errlink: settings.ERRLINK_DSN is not read: put it in ERRLINK = {'dsn': ...}; ignored",
        "errlink: settings.ERRLINK_ENVIROMENT is not an errlink setting (did you mean "
        "'environment'?): errlink reads only the ERRLINK dict; ignored",
    ]
    assert not errlink.sync.default_client().enabled  # type: ignore[union-attr]


# -- a real WSGI server ---------------------------------------------------------------------


AWKWARD_REQUESTS = [
    *contract.awkward_requests(
        slash=b"/",
        order_form=b"quantity=4&customer=ann",
        session_cookie=b"sessionid",
        failing_get=b"/no-such-page/",
    ),
    ("GET", b"/hello/", b"", [b"Host: evil.example"]),
]


def test_real_server_responses_identical_and_events_complete(sink: Any) -> None:
    with errlink_off():
        _, without_errlink = contract.send_over_a_real_server(WSGIHandler(), AWKWARD_REQUESTS)
    with errlink_configured(dsn=sink.dsn, send_default_pii=True) as client:
        port, with_errlink = contract.send_over_a_real_server(WSGIHandler(), AWKWARD_REQUESTS)
        events = _events(sink, client, 4)
    order, bad_query = contract.assert_awkward_requests_handled(
        without_errlink, with_errlink, [200, 500, 500, 500, 404, 500, 400], events
    )

    assert order["transaction"] == "create-order"
    req = order["request"]
    assert req["url"] == f"http://127.0.0.1:{port}/orders/9/"
    assert req["data"] == {"quantity": "4", "customer": "ann", "password": "[Filtered]"}
    assert req["headers"]["Authorization"] == "[Filtered]"
    assert req["cookies"] == {"sessionid": "[Filtered]", "theme": "dark"}
    assert [q["data"]["params"] for q in _queries(order)] == [["ann"]]
    assert bad_query["transaction"] == "raw"


def test_test_client_responses_identical_with_errlink_on_and_off(sink: Any) -> None:
    def run() -> list[tuple[int, bytes]]:
        browser = _client()
        return [
            (r.status_code, r.content)
            for r in (
                browser.get("/hello/"),
                browser.post("/orders/3/", {"quantity": "9"}),
                browser.get("/no-such-page/"),
                browser.get("/forbidden/"),
                browser.get("/hello/", headers={"Host": "evil.example"}),
                browser.post("/raw/", b"\xff" * 50_000, content_type="application/octet-stream"),
                browser.get("/raw/", QUERY_STRING="q=\xff\xfe"),
                # Header values that are not text (a server or middleware may put anything).
                browser.get("/raw/", HTTP_X_NUMBER=42, HTTP_X_BYTES=b"\xff ok"),
                browser.get("/hello/", HTTP_X_BYTES=b"\xff ok"),
            )
        ]

    with errlink_off():
        off = run()
    with errlink_configured(dsn=sink.dsn, send_default_pii=True) as client:
        on = run()
        events = _events(sink, client, 4)
    assert on == off
    assert [status for status, _ in on] == [200, 500, 404, 403, 400, 500, 500, 500, 200]
    by_kind = {
        (e["request"].get("query_string", ""), "X-Number" in e["request"]["headers"]): e
        for e in events
        if e["transaction"] == "raw"
    }
    assert len(by_kind) == 3
    assert (
        by_kind[("", False)]["request"]["data"]
        == "[request body of 50000 bytes left out: over max_request_body_size]"
    )
    assert ("q=\ufffd\ufffd", False) in by_kind
    odd = by_kind[("", True)]["request"]["headers"]
    assert (odd["X-Number"], odd["X-Bytes"]) == ("42", "\ufffd ok")


# -- management commands --------------------------------------------------------------------


def _manage(dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), str(REPO)]),
        "DJANGO_SETTINGS_MODULE": "_django_settings",
        "ERRLINK_DSN": dsn,
    }
    return subprocess.run(
        [sys.executable, "-m", "django", "errlink_boom", *args],
        env=env,
        cwd=str(HERE),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_crashing_management_command_is_reported(sink: Any) -> None:
    crashed = _manage(sink.dsn)
    assert crashed.returncode == 1
    assert "ArithmeticError: ledger out of balance: -5" in crashed.stderr
    refused = _manage(sink.dsn, "--command-error")
    assert refused.returncode == 1
    assert "CommandError: bad input" in refused.stderr

    [event] = sink.events()  # the atexit flush delivered it before the process ended
    exc = _exception(event)
    assert (exc["type"], exc["value"]) == ("ArithmeticError", "ledger out of balance: -5")
    assert (exc["mechanism"]["type"], exc["mechanism"]["handled"]) == ("excepthook", False)
    assert exc["stacktrace"]["frames"][-1]["vars"]["ledger"] == {"balance": -5}
    assert event["tags"]["django.command"] == "errlink_boom"
    assert "django" in event["sdk"]["integrations"]
