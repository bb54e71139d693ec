"""The Flask integration through Flask's test client and a real werkzeug server on 127.0.0.1,
delivering to errlink's collector.

What every web integration does on a real server (request data, status codes, bodies, personal
data, scope isolation) is tested once for all of them in `test_web_contract`; here is the rest.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from flask import Flask, abort, g, request
from flask_login import LoginManager, UserMixin, current_user, login_user

import errlink
from errlink.integrations import flask as errlink_flask
from errlink.integrations.flask import Errlink
from errlink.sync import Client
from tests.integrations import _wsgi_contract as contract
from tests.integrations._wsgi_contract import AUTHORIZATION, FLUSH_TIMEOUT, PASSWORD

pytestmark = pytest.mark.usefixtures("no_default_client")


class User(UserMixin):
    def __init__(self, user_id: str) -> None:
        self.id = user_id
        self.username = f"user{user_id}"
        self.email = f"user{user_id}@example.com"


def create_app(errlink_settings: dict[str, Any] | None) -> Flask:
    """The same app with (settings given) or without errlink."""
    app = Flask(__name__)
    app.secret_key = "test-secret"
    login = LoginManager(app)
    login.user_loader(User)
    log = logging.getLogger("shop")
    log.setLevel(logging.INFO)  # the app's logging lets its INFO records through, for errlink too

    @app.route("/hello")
    def hello() -> str:
        return "hello"

    @app.route("/orders/<int:order_id>", methods=["POST"])
    def create_order(order_id: int) -> str:
        quantity = int(request.form["quantity"])
        log.info("creating order %s", order_id)
        if quantity > 2:
            raise ValueError(f"too many: {quantity}")
        return "created"

    @app.route("/raw", methods=["POST"])
    def raw() -> str:
        raise RuntimeError("raw body")

    @app.route("/json", methods=["POST"])
    def json_view() -> str:
        payload = request.get_json()
        raise KeyError(sorted(payload))

    @app.route("/abort/<int:code>")
    def aborting(code: int) -> str:
        abort(code)

    @app.route("/login/<user_id>")
    def log_in(user_id: str) -> str:
        login_user(User(user_id))
        return "in"

    @app.route("/me")
    def me() -> str:
        name = current_user.username
        raise LookupError(f"profile of {name} is gone")

    @app.route("/async")
    async def async_view() -> str:
        raise ZeroDivisionError("async view")

    @app.errorhandler(500)
    def server_error(error: Exception) -> tuple[str, int]:
        return "custom 500 page", 500

    if errlink_settings is not None:
        app.config.update({f"ERRLINK_{k.upper()}": v for k, v in errlink_settings.items()})
        Errlink(app)
    return app


def _flushed_events(collector: Any, app: Flask, count: int) -> list[dict[str, Any]]:
    assert Errlink.client_for(app).flush(FLUSH_TIMEOUT)
    events = collector.events()
    assert len(events) == count, [e.get("exception") for e in events]
    return events


def _exception(event: dict[str, Any]) -> dict[str, Any]:
    value: dict[str, Any] = event["exception"]["values"][-1]
    return value


def test_unhandled_error_with_request_scrubbed_and_breadcrumbs(sink: Any) -> None:
    app = create_app({"dsn": sink.dsn})
    client = app.test_client()
    client.set_cookie("session", "s3cr3t-session")
    response = client.post(
        "/orders/7?ref=mail&token=abc",
        data={"quantity": "5", "password": PASSWORD, "note": "leave at door"},
        headers={"Authorization": AUTHORIZATION, "X-Request-Id": "r-1"},
    )
    assert (response.status_code, response.get_data(as_text=True)) == (500, "custom 500 page")

    [event] = _flushed_events(sink, app, 1)
    view_frame = contract.assert_order_error_reported_without_pii(event, "flask")
    assert view_frame["function"].endswith("create_order")
    assert event["transaction"] == "create_order"
    req = event["request"]
    assert req["url"] == "http://localhost/orders/7"
    assert req["data"] == {"quantity": "5", "password": "[Filtered]", "note": "leave at door"}
    crumbs = [c["message"] for c in event["breadcrumbs"]["values"] if c.get("category") == "shop"]
    assert crumbs == ["creating order 7"]
    assert "flask" in event["sdk"]["integrations"]
    assert PASSWORD not in str(event)
    assert AUTHORIZATION not in str(event)
    assert "s3cr3t-session" not in str(event)


def test_pii_on_adds_cookies_client_address_and_the_flask_login_user(
    sink: Any,
) -> None:
    app = create_app({"dsn": sink.dsn, "send_default_pii": True})
    client = app.test_client()
    assert client.get("/login/42").status_code == 200
    client.set_cookie("theme", "dark")
    response = client.get("/me", headers={"Authorization": AUTHORIZATION})
    assert response.status_code == 500

    [event] = _flushed_events(sink, app, 1)
    assert _exception(event)["value"] == "profile of user42 is gone"
    assert event["transaction"] == "me"
    assert event["user"] == {"id": "42", "username": "user42", "email": "user42@example.com"}
    req = event["request"]
    assert req["cookies"]["theme"] == "dark"
    assert req["cookies"]["session"] == "[Filtered]"  # Flask's session cookie
    assert req["headers"]["Authorization"] == "[Filtered]"
    assert req["env"]["REMOTE_ADDR"] == "127.0.0.1"


def test_a_user_never_loaded_is_not_loaded_for_the_event(sink: Any) -> None:
    app = create_app({"dsn": sink.dsn, "send_default_pii": True})
    loads: list[str] = []
    manager: LoginManager = app.login_manager  # type: ignore[attr-defined]
    manager.user_loader(lambda user_id: loads.append(user_id) or User(user_id))
    client = app.test_client()
    client.get("/login/7")
    assert client.post("/raw", data=b"x").status_code == 500

    [event] = _flushed_events(sink, app, 1)
    assert "user" not in event
    assert loads == []


def test_the_event_id_is_left_for_the_500_page(sink: Any) -> None:
    app = create_app({"dsn": sink.dsn})
    app.error_handler_spec[None][500].clear()

    @app.errorhandler(500)
    def reference_page(error: Exception) -> tuple[str, int]:
        return f"reference {g.get('errlink_event_id')}", 500

    response = app.test_client().post("/raw", data=b"x")
    [event] = _flushed_events(sink, app, 1)
    assert response.get_data(as_text=True) == f"reference {event['event_id']}"


def test_json_body_and_async_view(sink: Any) -> None:
    app = create_app({"dsn": sink.dsn})
    client = app.test_client()
    assert client.post("/json", json={"card": "none", "api_key": "k-1"}).status_code == 500
    assert client.get("/async").status_code == 500

    json_event, async_event = _flushed_events(sink, app, 2)
    assert json_event["request"]["data"] == {"card": "none", "api_key": "[Filtered]"}
    assert json_event["transaction"] == "json_view"
    assert _exception(async_event)["type"] == "ZeroDivisionError"
    assert async_event["transaction"] == "async_view"
    assert async_event["request"]["url"] == "http://localhost/async"


def _responses(app: Flask, paths: list[str]) -> list[tuple[int, bytes]]:
    client = app.test_client()
    return [(r.status_code, r.get_data()) for r in map(client.get, paths)]


def test_http_errors_from_500_up_are_reported_by_default(sink: Any) -> None:
    paths = ["/abort/503", "/abort/403", "/no-such-page", "/abort/500"]
    app = create_app({"dsn": sink.dsn})
    assert _responses(app, paths) == _responses(create_app(None), paths)

    server_error, unavailable = sorted(
        _flushed_events(sink, app, 2), key=lambda e: _exception(e)["type"]
    )
    exc = _exception(unavailable)
    assert exc["type"] == "ServiceUnavailable"
    assert (exc["mechanism"]["type"], exc["mechanism"]["handled"]) == ("flask", False)
    [view_frame] = [f for f in exc["stacktrace"]["frames"] if f["function"].endswith("aborting")]
    assert view_frame["in_app"] is True
    assert unavailable["transaction"] == "aborting"
    assert unavailable["request"]["url"] == "http://localhost/abort/503"
    assert _exception(server_error)["type"] == "InternalServerError"


def test_no_status_codes_leaves_http_errors_alone(sink: Any) -> None:
    app = create_app({"dsn": sink.dsn, "capture_status_codes": ()})
    assert "handle_http_exception" not in app.__dict__  # nothing wrapped
    assert app.test_client().get("/abort/503").status_code == 503
    assert app.test_client().post("/raw", data=b"x").status_code == 500
    [event] = _flushed_events(sink, app, 1)
    assert _exception(event)["type"] == "RuntimeError"


def test_a_trapped_http_error_is_reported_once(sink: Any) -> None:
    app = create_app({"dsn": sink.dsn})
    app.config["TRAP_HTTP_EXCEPTIONS"] = True  # HTTP errors go the unhandled-exception way
    assert app.test_client().get("/abort/503").status_code == 500  # the custom 500 page
    [event] = _flushed_events(sink, app, 1)  # not again from the log record Flask writes
    exc = _exception(event)
    assert (exc["type"], exc["mechanism"]["type"]) == ("ServiceUnavailable", "flask")


def test_the_event_id_of_an_http_error_is_left_for_its_error_page(sink: Any) -> None:
    app = create_app({"dsn": sink.dsn})

    @app.errorhandler(503)
    def unavailable_page(error: Exception) -> tuple[str, int]:
        return f"reference {g.get('errlink_event_id')}", 503

    response = app.test_client().get("/abort/503")
    [event] = _flushed_events(sink, app, 1)
    assert (response.status_code, response.get_data(as_text=True)) == (
        503,
        f"reference {event['event_id']}",
    )


def test_requests_do_not_share_scope(sink: Any) -> None:
    app = create_app({"dsn": sink.dsn})
    client = app.test_client()
    client.post("/orders/1", data={"quantity": "1"})  # logs a breadcrumb, succeeds
    client.post("/orders/2", data={"quantity": "3"})
    [event] = _flushed_events(sink, app, 1)
    crumbs = [c["message"] for c in event["breadcrumbs"]["values"] if c.get("category") == "shop"]
    assert crumbs == ["creating order 2"]


AWKWARD_REQUESTS = contract.awkward_requests(
    slash=b"", order_form=b"quantity=4", session_cookie=b"session", failing_get=b"/abort/418"
)


def test_real_server_responses_identical_and_events_complete(sink: Any) -> None:
    _, without_errlink = contract.send_over_a_real_server(create_app(None), AWKWARD_REQUESTS)
    app = create_app({"dsn": sink.dsn})
    port, with_errlink = contract.send_over_a_real_server(app, AWKWARD_REQUESTS)
    events = _flushed_events(sink, app, 4)
    order, _ = contract.assert_awkward_requests_handled(
        without_errlink, with_errlink, [200, 500, 500, 500, 418, 500], events
    )

    assert order["transaction"] == "create_order"
    assert order["request"]["data"] == {"quantity": "4", "password": "[Filtered]"}
    assert order["request"]["url"] == f"http://127.0.0.1:{port}/orders/9"
    assert "Authorization" not in order["request"]["headers"]
    assert "cookies" not in order["request"]


def test_request_context_is_built_only_for_an_event(
    sink: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app({"dsn": sink.dsn})
    builds = contract.record_calls(monkeypatch, errlink_flask, "_request_from_environ")
    client = app.test_client()
    for _ in range(5):
        assert client.get("/hello").status_code == 200
    assert builds == []
    client.post("/raw", data=b"x")
    assert len(builds) == 1


def test_the_extension_client_becomes_the_default_only_if_there_is_none(
    sink: Any,
) -> None:
    app = create_app({"dsn": sink.dsn, "environment": "flask-env"})
    own = Errlink.client_for(app)
    assert errlink.sync.default_client() is own
    errlink.capture_message("outside any request")
    assert own.flush(FLUSH_TIMEOUT)
    [message] = sink.events()
    assert message["environment"] == "flask-env"

    # A default exists: a DSN gives the app a client of its own; none reuses the default.
    second = create_app({"dsn": sink.dsn})
    assert Errlink.client_for(second) is not own
    assert errlink.sync.default_client() is own
    Errlink.client_for(second).close()
    third = create_app({})
    assert Errlink.client_for(third) is own

    explicit = Client(sink.dsn)
    fourth = Flask("fourth")
    Errlink(fourth, client=explicit)
    assert Errlink.client_for(fourth) is explicit
    explicit.close()


def test_init_app_pattern_and_constructor_arguments_win(sink: Any) -> None:
    extension = Errlink(dsn=sink.dsn, transaction_style="url")
    app = create_app(None)
    app.config["ERRLINK_DSN"] = "https://ignored@example.invalid/1"
    extension.init_app(app)
    assert app.test_client().post("/orders/3", data={"quantity": "9"}).status_code == 500
    [event] = _flushed_events(sink, app, 1)
    assert event["transaction"] == "/orders/<int:order_id>"


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("ERRLINK_DSN", "not-a-dsn", "app.config['ERRLINK_DSN'] is invalid"),
        ("ERRLINK_SAMPLE_RATE", 7, "app.config['ERRLINK_SAMPLE_RATE'] is invalid"),
        ("ERRLINK_TRANSACTION_STYLE", "path", "app.config['ERRLINK_TRANSACTION_STYLE'] must be"),
        ("ERRLINK_CAPTURE_STATUS_CODES", "404", "app.config['ERRLINK_CAPTURE_STATUS_CODES'] must"),
        ("ERRLINK_CAPTURE_STATUS_CODES", True, "app.config['ERRLINK_CAPTURE_STATUS_CODES'] must"),
        ("ERRLINK_CAPTURE_STATUS_CODES", [503, 700], "ERRLINK_CAPTURE_STATUS_CODES'] holds 700"),
        ("ERRLINK_LOGGING_EVENT_LEVEL", "LOUD", "app.config['ERRLINK_LOGGING_EVENT_LEVEL']"),
    ],
)
def test_misconfiguration_fails_at_start_up_naming_the_setting(
    key: str, value: object, message: str
) -> None:
    app = Flask("misconfigured")
    app.config[key] = value
    with pytest.raises((ValueError, TypeError), match=message.replace("[", r"\[")):
        Errlink(app)
    assert "errlink" not in app.extensions


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (
            "ERRLINK_ENVIROMENT",
            "app.config['ERRLINK_ENVIROMENT'] is not an errlink setting "
            "(did you mean ERRLINK_ENVIRONMENT?); ignored",
        ),
        (
            "ERRLINK_environment",
            "app.config['ERRLINK_environment'] is not an errlink setting "
            "(did you mean ERRLINK_ENVIRONMENT?); ignored",
        ),
        (
            "ERRLINK_INCLUDE_LOCAL_VARIABLES",
            "app.config['ERRLINK_INCLUDE_LOCAL_VARIABLES'] is not an errlink setting "
            "(sentry-sdk's name for errlink's ERRLINK_INCLUDE_LOCALS); ignored",
        ),
        (
            "ERRLINK_TRACES_SAMPLE_RATE",
            "app.config['ERRLINK_TRACES_SAMPLE_RATE'] is not an errlink setting (not supported: "
            "errlink reports errors, and has no tracing or profiling); ignored",
        ),
    ],
)
def test_an_unknown_config_key_is_a_warning_at_the_apps_line(key: str, message: str) -> None:
    app = Flask("typo")
    app.config[key] = "prod"
    with pytest.warns(errlink.ConfigurationWarning) as warned:
        Errlink(app, dsn="")
    assert [str(record.message) for record in warned] == [f"errlink: {message}"]
    assert warned[0].filename == __file__
    assert not Errlink.client_for(app).enabled


def test_a_dsn_in_the_config_that_hides_the_environments_is_a_warning(
    sink: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ERRLINK_DSN", "https://from-env@example.invalid/1")
    with pytest.warns(errlink.ConfigurationWarning, match=r"\$ERRLINK_DSN is ignored") as warned:
        app = create_app({"dsn": sink.dsn})
    assert warned[0].filename == __file__
    assert Errlink.client_for(app).options.dsn == errlink.Dsn.parse(sink.dsn)


def test_an_unknown_argument_says_what_was_meant() -> None:
    with pytest.raises(TypeError, match=r"'enviroment' \(did you mean 'environment'\?\)"):
        Errlink(Flask("typo"), dsn="", enviroment="prod")  # type: ignore[call-arg]


def test_capture_status_codes_argument_is_validated_like_the_async_integrations() -> None:
    with pytest.raises(ValueError, match=r"Errlink\(capture_status_codes=\.\.\.\) holds True"):
        Errlink(Flask("bad"), dsn="", capture_status_codes=[500, True])
    with pytest.raises(TypeError, match=r"unknown argument.*'capture_http_errors'"):
        Errlink(Flask("old"), dsn="", capture_http_errors=[404])  # type: ignore[call-arg]


def test_a_disabled_client_leaves_requests_alone() -> None:
    app = create_app({"dsn": ""})
    assert not Errlink.client_for(app).enabled
    response = app.test_client().post("/raw", data=b"x")
    assert (response.status_code, response.get_data(as_text=True)) == (500, "custom 500 page")
