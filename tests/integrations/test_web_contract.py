"""What every web integration (Flask, Django, Sanic, Tornado, aiohttp.web and the ASGI frameworks)
promises, tested once.

Each test runs against the same tiny app written for each framework (`_web_apps`), served by the
real framework on 127.0.0.1 and reporting to errlink's collector on the test's loop. What differs
between the frameworks (transaction names, mechanism names, exception types) is in `EXPECTED`;
what only one framework does is tested in its own module.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any

import aiohttp
import pytest
from _async_web_helpers import (
    CONCURRENT_REQUESTS,
    EVENT_TIMEOUT,
    SENSITIVE_HEADERS,
    assert_headers_scrubbed,
    assert_no_leakage,
    fetch,
    fetch_concurrently,
    header,
    in_app_functions,
    mechanism,
    newest_exception,
)
from _web_apps import SERVERS, Served
from sanic import Sanic

import errlink
from errlink.collector import Collector

# sanic-testing (which Sanic imports when it is installed) uses websockets' legacy client.
pytestmark = pytest.mark.filterwarnings("ignore:websockets.legacy is deprecated:DeprecationWarning")

PASSWORD = "hunter2-correct-horse"
TOO_LARGE = "[request body of 5000 bytes left out: over max_request_body_size]"


@dataclass(frozen=True)
class Expected:
    """How one framework names and labels what the contract requires."""

    mechanism: str
    package: str  # the library the traceback starts in: its frames are never in-app
    # Transaction of each route ("{app}": the app's name); None: the event has none.
    transactions: dict[str, str | None]
    # In-app functions of the /boom error, outermost first.
    boom_in_app: list[str]
    # What is reported for an error status, by route: the exception's (type, value), or the
    # message the framework logs for the response (Django: no exception carries a 503).
    reported: dict[str, tuple[str, str] | str]
    # Whether the integration takes `capture_status_codes` at all.
    status_codes_option: bool = True
    # Whether such an event is captured inside the request's scope (with its request).
    status_events_in_request_scope: bool = True
    # Whether the server keeps a connection open for the next request (werkzeug's does not).
    keep_alive: bool = True


EXPECTED: dict[str, Expected] = {
    "flask": Expected(
        mechanism="flask",
        package="flask",
        transactions={
            "boom": "boom",
            "echo": "echo",
            "order": "order",
            "handled": "handled",
            "forbidden": "forbidden",
            "unavailable": "unavailable",
            "report": "report",
            "missing": None,
        },
        boom_in_app=["flask_app.<locals>.boom", "fail_in_app"],
        reported={
            "forbidden": (
                "Forbidden",
                "403 Forbidden: You don't have the permission to access the requested resource."
                " It is either read-protected or not readable by the server.",
            ),
            "unavailable": (
                "ServiceUnavailable",
                "503 Service Unavailable: The server is temporarily unable to service your"
                " request due to maintenance downtime or capacity problems. Please try again"
                " later.",
            ),
            "missing": (
                "NotFound",
                "404 Not Found: The requested URL was not found on the server. If you entered"
                " the URL manually please check your spelling and try again.",
            ),
        },
        keep_alive=False,
    ),
    "django": Expected(
        mechanism="django",
        package="django",
        transactions={
            "boom": "boom",
            "echo": "echo",
            "order": "order",
            "handled": "handled",
            "forbidden": "forbidden",
            "unavailable": "unavailable",
            "report": "report",
        },
        boom_in_app=["django_urlconf.<locals>.boom", "fail_in_app"],
        # Django logs every 5xx response at ERROR, after the view's scope ended.
        reported={"unavailable": "Service Unavailable: /unavailable"},
        status_codes_option=False,
        status_events_in_request_scope=False,
        keep_alive=False,
    ),
    "sanic": Expected(
        mechanism="sanic",
        package="sanic",
        transactions={
            "boom": "{app}.boom",
            "echo": "{app}.echo",
            "order": "{app}.order",
            "handled": "{app}.handled",
            "forbidden": "{app}.forbidden",
            "unavailable": "{app}.unavailable",
            "report": "{app}.report",
            "missing": None,  # routing failed: no route to name the transaction after
        },
        boom_in_app=["sanic_app.<locals>.boom", "fail_in_app"],
        reported={
            "forbidden": ("Forbidden", "members only"),
            "unavailable": ("SanicException", "try later"),
            "missing": ("NotFound", "Requested URL /missing not found"),
        },
    ),
    "tornado": Expected(
        mechanism="tornado",
        package="tornado",
        transactions={
            "boom": "_web_apps.BoomHandler",
            "echo": "_web_apps.EchoHandler",
            "order": "_web_apps.OrderHandler",
            "handled": None,  # named when an error ends the request, not before
            "forbidden": "_web_apps.ForbiddenHandler",
            "unavailable": "_web_apps.UnavailableHandler",
            "report": None,
            "missing": "tornado.web.ErrorHandler",  # no route matched
        },
        boom_in_app=["BoomHandler.get", "fail_in_app"],
        reported={
            "forbidden": ("HTTPError", "HTTP 403: Forbidden"),
            "unavailable": ("HTTPError", "HTTP 503: Service Unavailable"),
            "missing": ("HTTPError", "HTTP 404: Not Found"),
        },
    ),
    "aiohttp": Expected(
        mechanism="aiohttp",
        package="errlink",  # the traceback starts in errlink's own middleware
        transactions={
            "boom": "boom",  # the route's name
            "echo": "_web_apps.aiohttp_app.<locals>.echo",  # unnamed: the handler's path
            "order": "_web_apps.aiohttp_app.<locals>.order",
            "handled": "_web_apps.aiohttp_app.<locals>.handled",
            "forbidden": "_web_apps.aiohttp_app.<locals>.forbidden",
            "unavailable": "_web_apps.aiohttp_app.<locals>.unavailable",
            "report": "_web_apps.aiohttp_app.<locals>.report",
            "missing": None,  # no route matched
        },
        boom_in_app=["aiohttp_app.<locals>.boom", "fail_in_app"],
        reported={
            "forbidden": ("HTTPForbidden", "Forbidden"),
            "unavailable": ("HTTPServiceUnavailable", "Service Unavailable"),
            "missing": ("HTTPNotFound", "Not Found"),
        },
    ),
    # -- ASGI: each entry is written with its adapter, in place of its marker line --
    "starlette": Expected(
        mechanism="starlette",
        package="starlette",
        transactions={
            "boom": "/boom",  # the route's path template
            "echo": "/echo",
            "order": "/orders/{{order_id:int}}",  # braces doubled: the names are formatted
            "handled": "/handled",
            "forbidden": "/forbidden",
            "unavailable": "/unavailable",
            "report": "/report",
            "missing": None,  # no route matched
        },
        boom_in_app=["starlette_app.<locals>.boom", "fail_in_app"],
        reported={
            "forbidden": ("HTTPException", "403: members only"),
            "unavailable": ("HTTPException", "503: try later"),
            "missing": ("HTTPException", "404: Not Found"),
        },
    ),
    "fastapi": Expected(
        mechanism="fastapi",
        package="fastapi",
        transactions={
            "boom": "/boom",  # the route's path template
            "echo": "/echo",
            "order": "/orders/{{order_id}}",  # braces doubled: the names are formatted
            "handled": "/handled",
            "forbidden": "/forbidden",
            "unavailable": "/unavailable",
            "report": "/report",
            "missing": None,  # no route matched
        },
        boom_in_app=["fastapi_app.<locals>.boom", "fail_in_app"],
        reported={
            "forbidden": ("HTTPException", "403: members only"),
            "unavailable": ("HTTPException", "503: try later"),
            "missing": ("HTTPException", "404: Not Found"),
        },
    ),
    "litestar": Expected(
        mechanism="litestar",
        package="litestar",
        transactions={
            "boom": "/boom",  # the route's path template
            "echo": "/echo",
            "order": "/orders/{{order_id}}",  # braces doubled: names are format strings
            "handled": "/handled",
            "forbidden": "/forbidden",
            "unavailable": "/unavailable",
            "report": "/report",
            "missing": None,  # routing failed: no route to name the transaction after
        },
        boom_in_app=["litestar_app.<locals>.boom", "fail_in_app"],
        reported={
            "forbidden": ("PermissionDeniedException", "403: members only"),
            "unavailable": ("ServiceUnavailableException", "503: try later"),
            "missing": ("NotFoundException", "404: Not Found"),
        },
    ),
    "quart": Expected(
        mechanism="quart",
        package="quart",
        transactions={
            "boom": "boom",
            "echo": "echo",
            "order": "order",
            "handled": "handled",
            "forbidden": "forbidden",
            "unavailable": "unavailable",
            "report": "report",
            "missing": None,  # no route matched
        },
        boom_in_app=["quart_app.<locals>.boom", "fail_in_app"],
        reported={
            "forbidden": (
                "Forbidden",
                "403 Forbidden: You don't have the permission to access the requested resource."
                " It is either read-protected or not readable by the server.",
            ),
            "unavailable": (
                "ServiceUnavailable",
                "503 Service Unavailable: The server is temporarily unable to service your"
                " request due to maintenance downtime or capacity problems. Please try again"
                " later.",
            ),
            "missing": (
                "NotFound",
                "404 Not Found: The requested URL was not found on the server. If you entered"
                " the URL manually please check your spelling and try again.",
            ),
        },
    ),
}
FRAMEWORKS = list(EXPECTED)
WITH_STATUS_CODES_OPTION = [name for name in FRAMEWORKS if EXPECTED[name].status_codes_option]


@dataclass
class Web:
    """The framework under test: `serve(**options)` runs its app, reporting to `collector`."""

    name: str
    expected: Expected
    collector: Collector
    _serve: Callable[..., AbstractAsyncContextManager[Served]]

    def serve(self, **options: Any) -> AbstractAsyncContextManager[Served]:
        return self._serve(self.collector.dsn, **options)

    def serve_without_errlink(self) -> AbstractAsyncContextManager[Served]:
        return self._serve(None)

    def transaction(self, route: str, served: Served) -> str | None:
        name = self.expected.transactions[route]
        return None if name is None else name.format(app=served.app_name)

    def status_event(self, route: str, served: Served) -> dict[str, Any]:
        """The `summary` of the event reported for the error status of `route`."""
        reported = self.expected.reported[route]
        in_scope = self.expected.status_events_in_request_scope
        return {
            "reported": reported,
            "mechanism": (self.expected.mechanism, False) if isinstance(reported, tuple) else None,
            "path": "/" + route if in_scope else None,
            "transaction": self.transaction(route, served) if in_scope else None,
        }


def summary(event: dict[str, Any], served: Served) -> dict[str, Any]:
    """What an event reported for an error status says, in `Web.status_event`'s terms."""
    return {
        "reported": exception_of(event) or event["logentry"]["formatted"],
        "mechanism": mechanism(event) if "exception" in event else None,
        "path": event["request"]["url"].removeprefix(served.base) if "request" in event else None,
        "transaction": event.get("transaction"),
    }


@pytest.fixture(params=FRAMEWORKS)
def framework(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def web(framework: str, collector: Collector) -> Web:
    return Web(framework, EXPECTED[framework], collector, SERVERS[framework])


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> Any:
    # No process default client from another module: module-level capture calls must reach
    # the request's client (Flask and Django make theirs the default while they serve).
    errlink.close(timeout=1)
    # Sanic rewrites some of its methods when an app starts; in test mode it rewrites the
    # originals each time, so that more than one app can start in this process.
    monkeypatch.setattr(Sanic, "test_mode", True)
    yield
    errlink.close(timeout=1)
    errlink.clear_breadcrumbs()


def exception_of(event: dict[str, Any]) -> tuple[str, str] | None:
    if "exception" not in event:
        return None
    exception = newest_exception(event)
    return exception["type"], exception["value"]


def cookies(event: dict[str, Any]) -> dict[str, str]:
    """The event's cookies as a dict, whether sent as a dict or as the Cookie header's text."""
    sent = event["request"]["cookies"]
    if isinstance(sent, dict):
        return sent
    return {name: morsel.value for name, morsel in SimpleCookie(sent).items()}


def by_path(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Events by the path of their request URL (events may arrive in any order)."""
    found = {}
    for event in events:
        path = "/" + event["request"]["url"].split("/", 3)[3]
        assert path not in found, f"two events for {path}"
        found[path] = event
    return found


async def test_unhandled_error_is_reported_with_request_transaction_and_tags(
    web: Web, session: aiohttp.ClientSession
) -> None:
    async with web.serve(environment="test") as served:
        status, _ = await fetch(
            session,
            "GET",
            f"{served.base}/boom?why=disk+full&page=2&token=abc",
            headers=SENSITIVE_HEADERS,
        )
        assert status == 500
        [event] = await web.collector.wait_for_events(1, EVENT_TIMEOUT)
        assert served.client.stats.captured == 1

    exception = newest_exception(event)
    assert (exception["type"], exception["value"]) == ("ValueError", "boom: disk full")
    assert mechanism(event) == (web.expected.mechanism, False)
    assert in_app_functions(event) == web.expected.boom_in_app
    frames = exception["stacktrace"]["frames"]
    assert frames[-1]["vars"]["why"] == "disk full"
    library_frames = [f for f in frames if f["module"].split(".")[0] == web.expected.package]
    assert library_frames
    assert not any(frame["in_app"] for frame in library_frames)
    request = event["request"]
    assert request["url"] == f"{served.base}/boom"
    assert request["method"] == "GET"
    assert request["query_string"] == "why=disk+full&page=2&token=%5BFiltered%5D"
    assert_headers_scrubbed(event)
    assert "user" not in event
    assert event["transaction"] == web.transaction("boom", served)
    assert event["tags"] == {"handler": "boom"}
    assert event["environment"] == "test"
    assert web.name in event["sdk"]["integrations"]
    for secret in ("top-secret-token", "key-123", "203.0.113.9", "sessionid"):
        assert secret not in json.dumps(request)
    assert not served.client.enabled  # closed (after a last flush) when the server stopped


async def test_error_in_a_route_with_a_path_parameter(
    web: Web, session: aiohttp.ClientSession
) -> None:
    async with web.serve() as served:
        assert (await fetch(session, "GET", f"{served.base}/orders/7?x=1"))[0] == 500
        [event] = await web.collector.wait_for_events(1, EVENT_TIMEOUT)

    assert exception_of(event) == ("LookupError", "no order 7")
    assert mechanism(event) == (web.expected.mechanism, False)
    assert event["transaction"] == web.transaction("order", served)
    assert event["request"]["url"] == f"{served.base}/orders/7"
    assert event["request"]["query_string"] == "x=1"


async def test_handled_capture_inside_a_handler_reaches_the_request_scope(
    web: Web, session: aiohttp.ClientSession
) -> None:
    async with web.serve() as served:
        status, body = await fetch(session, "GET", f"{served.base}/handled?x=1")
        assert status == 200
        [event] = await web.collector.wait_for_events(1, EVENT_TIMEOUT)

    assert json.loads(body) == {"event_id": event["event_id"]}
    assert exception_of(event) == ("ValueError", "boom: caught")
    assert mechanism(event) == ("generic", True)
    assert event["request"]["url"] == f"{served.base}/handled"
    assert event["request"]["query_string"] == "x=1"
    assert event.get("transaction") == web.transaction("handled", served)
    assert event["tags"] == {"handler": "handled"}


PATHS = [
    "/ok",
    "/boom",
    "/orders/7",
    "/handled",
    "/forbidden",
    "/unavailable",
    "/moved",
    "/missing",
]


async def test_responses_are_identical_with_errlink_on_and_off(web: Web) -> None:
    captured: list[int] = []

    async def responses(serving: AbstractAsyncContextManager[Served]) -> list[tuple[Any, ...]]:
        out = []
        async with serving as served, aiohttp.ClientSession() as client:
            for path in PATHS:
                async with client.get(served.base + path, allow_redirects=False) as reply:
                    body = await reply.read()
                    if path == "/handled":  # the event id differs (and is null without errlink)
                        body = sorted(json.loads(body))
                    out.append(
                        (
                            path,
                            reply.status,
                            body,
                            reply.headers.get("Content-Type"),
                            reply.headers.get("Location"),
                        )
                    )
            if served.client is not None:
                captured.append(served.client.stats.captured)
        return out

    plain = await responses(web.serve_without_errlink())
    assert await responses(web.serve()) == plain
    assert [status for _, status, *_ in plain] == [200, 500, 500, 200, 403, 503, 302, 404]
    assert captured == [4]  # boom, orders/7, handled, unavailable
    await web.collector.wait_for_events(4, EVENT_TIMEOUT)


STATUSES = [("/missing", 404), ("/forbidden", 403), ("/moved", 302), ("/unavailable", 503)]


async def test_http_errors_from_500_up_are_reported_by_default(
    web: Web, session: aiohttp.ClientSession
) -> None:
    async with web.serve() as served:
        for path, status in STATUSES:
            assert (await fetch(session, "GET", served.base + path, allow_redirects=False))[
                0
            ] == status
        # Every capture happens before the response is sent: the count is final.
        assert served.client.stats.captured == 1
        [event] = await web.collector.wait_for_events(1, EVENT_TIMEOUT)

    assert summary(event, served) == web.status_event("unavailable", served)


@pytest.mark.parametrize("framework", WITH_STATUS_CODES_OPTION, indirect=True)
async def test_capture_status_codes_replaces_the_default_set(
    web: Web, session: aiohttp.ClientSession
) -> None:
    async with web.serve(capture_status_codes={403, 404}) as served:
        for path, status in STATUSES:
            assert (await fetch(session, "GET", served.base + path, allow_redirects=False))[
                0
            ] == status
        assert served.client.stats.captured == 2
        events = by_path(await web.collector.wait_for_events(2, EVENT_TIMEOUT))

    assert set(events) == {"/missing", "/forbidden"}
    forbidden, not_found = events["/forbidden"], events["/missing"]
    assert summary(forbidden, served) == web.status_event("forbidden", served)
    assert summary(not_found, served) == web.status_event("missing", served)


async def test_request_bodies_within_max_request_body_size(
    web: Web, session: aiohttp.ClientSession
) -> None:
    async with web.serve(max_request_body_size="small") as served:
        await fetch(session, "POST", f"{served.base}/echo", json={"item": "tea"})
        [read] = await web.collector.wait_for_events(1, EVENT_TIMEOUT)
        await fetch(
            session, "POST", f"{served.base}/boom", data={"note": "left", "password": PASSWORD}
        )
        unread = (await web.collector.wait_for_events(2, EVENT_TIMEOUT))[-1]
        await fetch(session, "POST", f"{served.base}/boom", data=b"x" * 5000)
        large = (await web.collector.wait_for_events(3, EVENT_TIMEOUT))[-1]

    assert exception_of(read) == ("RuntimeError", "cannot order tea")
    assert read["request"]["data"] == {"item": "tea"}
    assert read["request"]["method"] == "POST"
    assert header(read, "Content-Type") == "application/json"
    assert read["transaction"] == web.transaction("echo", served)
    # Not read by the handler: read for the event, form fields scrubbed.
    assert unread["request"]["data"] == {"note": "left", "password": "[Filtered]"}
    assert header(unread, "Content-Type") == "application/x-www-form-urlencoded"
    assert PASSWORD not in json.dumps(unread)
    assert large["request"]["data"] == TOO_LARGE


async def test_no_request_body_when_max_request_body_size_is_none(
    web: Web, session: aiohttp.ClientSession
) -> None:
    async with web.serve(max_request_body_size="none") as served:
        await fetch(session, "POST", f"{served.base}/echo", json={"item": "tea"})
        [event] = await web.collector.wait_for_events(1, EVENT_TIMEOUT)
    assert exception_of(event) == ("RuntimeError", "cannot order tea")
    assert "data" not in event["request"]


async def test_personal_data_only_with_send_default_pii(
    web: Web, session: aiohttp.ClientSession
) -> None:
    async with web.serve(send_default_pii=True) as served:
        await fetch(session, "GET", f"{served.base}/boom", headers=SENSITIVE_HEADERS)
        [event] = await web.collector.wait_for_events(1, EVENT_TIMEOUT)

    request = event["request"]
    assert cookies(event) == {"sessionid": "[Filtered]", "theme": "dark"}
    assert request["env"]["REMOTE_ADDR"] == "127.0.0.1"
    assert header(event, "X-Forwarded-For") == "203.0.113.9"
    assert header(event, "Authorization") == "[Filtered]"
    assert header(event, "X-Api-Key") == "[Filtered]"
    for secret in ("top-secret-token", "key-123", "abc"):
        assert secret not in json.dumps(request)


async def test_concurrent_requests_never_share_scope_data(web: Web) -> None:
    async with web.serve() as served:
        results = await fetch_concurrently(served.base, "/work", CONCURRENT_REQUESTS)
        assert {status for status, _ in results} == {500}
        events = await web.collector.wait_for_events(CONCURRENT_REQUESTS, EVENT_TIMEOUT)
    assert_no_leakage(events, CONCURRENT_REQUESTS)


async def test_keep_alive_requests_on_one_connection_start_clean(web: Web) -> None:
    async with web.serve() as served:
        connector = aiohttp.TCPConnector(limit=1)
        async with aiohttp.ClientSession(connector=connector) as client:
            assert await fetch(client, "GET", f"{served.base}/tag") == (200, b"tagged")
            assert await fetch(client, "GET", f"{served.base}/report") == (200, b"reported")
        [event] = await web.collector.wait_for_events(1, EVENT_TIMEOUT)

    connections = served.state.connections
    assert len(connections) == 2
    # Really one keep-alive connection (werkzeug's server closes each after one request).
    assert (connections[0] is connections[1]) == web.expected.keep_alive
    assert event["logentry"]["formatted"] == "second request"
    assert "tags" not in event
    assert "user" not in event
    crumbs = event.get("breadcrumbs", {}).get("values", [])
    assert [c for c in crumbs if c.get("category") == "leftover"] == []
    assert event.get("transaction") == web.transaction("report", served)
    assert event["request"]["url"] == f"{served.base}/report"


async def test_a_disabled_client_leaves_requests_alone(
    web: Web, session: aiohttp.ClientSession
) -> None:
    async with SERVERS[web.name]("") as served:
        assert not served.client.enabled
        assert await fetch(session, "GET", f"{served.base}/ok") == (200, b"fine")
        assert (await fetch(session, "GET", f"{served.base}/boom"))[0] == 500
        status, body = await fetch(session, "GET", f"{served.base}/handled")
        assert (status, json.loads(body)) == (200, {"event_id": None})
        assert served.client.stats.captured == 0
