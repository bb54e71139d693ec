"""Outgoing HTTP: breadcrumbs and trace headers from the real clients against a real server.

aiohttp, httpx (sync and async), requests and urllib call a threaded `http.server` on
127.0.0.1 that records what each request carried. The events are read from a
`MemoryTransport`, except where errlink's own sends are the subject: there the same server is
the DSN's host and receives the real envelopes.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import aiohttp
import httpx
import pytest
import requests

import errlink
from errlink._wire.envelope import parse_envelope
from errlink.integrations import _libraries
from tests._support.transports import MemoryTransport

TIMEOUT = 10.0
SECRET = "s3cr3t-value"


class Recorded:
    """What the server received: one (method, path, lower-case headers, body) per request."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.changed = threading.Condition()

    def add(self, entry: tuple[str, str, dict[str, str], bytes]) -> None:
        with self.changed:
            self.requests.append(entry)
            self.changed.notify_all()

    def headers_of(self, path: str) -> dict[str, str]:
        """The headers of the last request to `path` (query string included)."""
        for _method, seen, headers, _body in reversed(self.requests):
            if seen == path:
                return headers
        raise AssertionError(f"no request to {path!r} in {[r[1] for r in self.requests]}")

    def wait_for(self, prefix: str) -> list[tuple[str, str, dict[str, str], bytes]]:
        with self.changed:
            assert self.changed.wait_for(
                lambda: any(r[1].startswith(prefix) for r in self.requests), TIMEOUT
            ), f"nothing reached {prefix}"
            return [r for r in self.requests if r[1].startswith(prefix)]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    recorded: Recorded

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        self.recorded.add((self.command, self.path, headers, body))
        status = 200
        if self.path.startswith("/status/"):
            status = int(self.path.split("/")[2].split("?")[0])
        elif self.path.startswith("/redirect/"):
            status = 302
        self.send_response(status)
        if status == 302:
            self.send_header("Location", "/trace/" + self.path.split("/", 2)[2])
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, Recorded]]:
    recorded = Recorded()
    handler = type("Handler", (_Handler,), {"recorded": recorded})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, name="http-clients-server", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", recorded
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture(scope="module")
def refused() -> Iterator[str]:
    """A loopback URL whose port refuses connections (bound, never listening)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/nowhere"


@pytest.fixture
def fresh_scope() -> Iterator[None]:
    with errlink.new_scope(new_trace=True):
        errlink.clear_breadcrumbs()
        yield


def _init(**options: Any) -> MemoryTransport:
    transport = MemoryTransport()
    errlink.init("http://key@127.0.0.1:9/1", transport=transport, **options)
    return transport


@pytest.fixture
def memory(server: tuple[str, Recorded], fresh_scope: None) -> Iterator[MemoryTransport]:
    """The default client, sending to memory; the server's `/trace` paths are targets."""
    base, _ = server
    yield _init(trace_propagation_targets=[rf"^{base}/trace"])
    errlink.close(timeout=5)


def _crumbs(transport: MemoryTransport) -> list[dict[str, Any]]:
    errlink.capture_message("look back")
    assert errlink.flush(timeout=TIMEOUT)
    [event] = transport.events()
    crumbs = event.get("breadcrumbs", {}).get("values", [])
    return [crumb for crumb in crumbs if crumb.get("type") == "http"]


async def _async_crumbs(
    client: errlink.AsyncClient, transport: MemoryTransport
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    await client.capture_message("look back")
    assert await client.flush(timeout=TIMEOUT)
    [event] = transport.events()
    crumbs = event.get("breadcrumbs", {}).get("values", [])
    return event, [crumb for crumb in crumbs if crumb.get("type") == "http"]


def _assert_propagated(headers: dict[str, str], event: dict[str, Any] | None = None) -> None:
    trace = errlink.current_trace()
    assert headers["sentry-trace"] == f"{trace.trace_id}-{trace.span_id}"
    assert headers["traceparent"] == f"00-{trace.trace_id}-{trace.span_id}-00"
    assert f"sentry-trace_id={trace.trace_id}" in headers["baggage"]
    if event is not None:
        assert event["contexts"]["trace"]["trace_id"] == trace.trace_id
        assert event["contexts"]["trace"]["span_id"] == trace.span_id


def _assert_not_propagated(headers: dict[str, str]) -> None:
    assert not {"sentry-trace", "traceparent", "baggage"} & set(headers)


# -- sync clients --------------------------------------------------------------------------------


def test_requests_breadcrumb_is_scrubbed_and_carries_the_trace(
    server: tuple[str, Recorded], memory: MemoryTransport
) -> None:
    base, recorded = server
    url = base.replace("http://", f"http://alice:{SECRET}@")
    response = requests.get(f"{url}/trace/orders?token={SECRET}&page=2#top", timeout=TIMEOUT)
    assert response.status_code == 200

    headers = recorded.headers_of(f"/trace/orders?token={SECRET}&page=2")
    assert headers["authorization"]  # the credentials still reach the server, as sent
    [crumb] = _crumbs(memory)
    [event] = memory.events()
    _assert_propagated(headers, event)
    assert crumb["category"] == "httplib"
    assert crumb["level"] == "info"
    data = crumb["data"]
    assert data["method"] == "GET"
    assert data["url"] == f"{base}/trace/orders"
    assert data["status_code"] == 200
    # A query naming a secret is filtered whole, as Relay's default scrubbing does.
    assert data["http.query"] == "[Filtered]"
    assert "http.fragment" not in data  # requests never sends it: http.client does not see it
    assert isinstance(data["duration_ms"], float)
    assert data["duration_ms"] >= 0
    assert SECRET not in json.dumps(event)
    assert "alice" not in json.dumps(event)


def test_urllib_levels_follow_the_status_and_no_headers_go_elsewhere(
    server: tuple[str, Recorded], memory: MemoryTransport
) -> None:
    base, recorded = server
    with urllib.request.urlopen(f"{base}/plain?password={SECRET}", timeout=TIMEOUT) as response:
        assert response.status == 200
    for status in (404, 503):
        with pytest.raises(urllib.error.HTTPError) as answered:
            urllib.request.urlopen(f"{base}/status/{status}", timeout=TIMEOUT)
        answered.value.close()  # its socket: else a ResourceWarning in a later test

    _assert_not_propagated(recorded.headers_of(f"/plain?password={SECRET}"))
    _assert_not_propagated(recorded.headers_of("/status/503"))
    crumbs = _crumbs(memory)
    assert [(c["data"]["url"], c["data"]["status_code"], c["level"]) for c in crumbs] == [
        (f"{base}/plain", 200, "info"),
        (f"{base}/status/404", 404, "warning"),
        (f"{base}/status/503", 503, "error"),
    ]
    assert crumbs[0]["data"]["http.query"] == "[Filtered]"  # names a secret: filtered whole


def test_httpx_sync_propagates_without_overwriting_the_callers_headers(
    server: tuple[str, Recorded], memory: MemoryTransport
) -> None:
    base, recorded = server
    theirs = "0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331"
    with httpx.Client(timeout=TIMEOUT) as client:
        assert client.post(f"{base}/trace/a#part", content=b"x").status_code == 200
        client.get(f"{base}/trace/b", headers={"Sentry-Trace": theirs, "baggage": "mine=1"})

    _assert_propagated(recorded.headers_of("/trace/a"))
    kept = recorded.headers_of("/trace/b")
    assert kept["sentry-trace"] == theirs
    assert kept["baggage"] == "mine=1"
    assert kept["traceparent"].startswith(f"00-{errlink.current_trace().trace_id}-")
    crumbs = _crumbs(memory)
    assert [(c["category"], c["data"]["method"], c["data"]["url"]) for c in crumbs] == [
        ("httpx", "POST", f"{base}/trace/a"),
        ("httpx", "GET", f"{base}/trace/b"),
    ]
    assert crumbs[0]["data"]["http.fragment"] == "part"


def test_an_httpx_send_with_other_keywords_is_passed_through_and_recorded(
    server: tuple[str, Recorded], fresh_scope: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # errlink's wrapper passes on whatever keywords `send` takes (a future httpx's too).
    base, _ = server
    _libraries.disable_all()  # httpx's own `send`, not a hook an earlier test left
    original = httpx.Client.send
    extras: list[object] = []

    def send(
        self: httpx.Client, request: httpx.Request, *, extra: object = None, **kwargs: Any
    ) -> Any:
        extras.append(extra)
        return original(self, request, **kwargs)

    monkeypatch.setattr(httpx.Client, "send", send)
    try:
        transport = _init()
        with httpx.Client(timeout=TIMEOUT) as client:
            request = client.build_request("GET", f"{base}/other?token=hidden")
            assert client.send(request, extra="kept").status_code == 200  # type: ignore[call-arg]
        crumbs = _crumbs(transport)
    finally:
        errlink.close(timeout=5)
        _libraries.disable_all()  # before monkeypatch puts httpx's own `send` back
    assert extras == ["kept"]
    assert [(c["category"], c["data"]["url"], c["data"]["status_code"]) for c in crumbs] == [
        ("httpx", f"{base}/other", 200)
    ]
    assert "hidden" not in json.dumps(crumbs)


_FETCHES = {
    "requests": (lambda url: requests.get(url, timeout=TIMEOUT), requests.ConnectionError),
    "httpx": (lambda url: httpx.get(url, timeout=TIMEOUT), httpx.ConnectError),
    "urllib": (lambda url: urllib.request.urlopen(url, timeout=TIMEOUT), urllib.error.URLError),
}


@pytest.mark.parametrize("library", sorted(_FETCHES))
def test_a_refused_connection_leaves_its_reason(
    library: str, refused: str, memory: MemoryTransport
) -> None:
    fetch, error = _FETCHES[library]
    with pytest.raises(error):
        fetch(refused)

    [crumb] = _crumbs(memory)
    assert crumb["level"] == "error"
    assert crumb["data"]["url"] == refused
    assert "status_code" not in crumb["data"]
    assert "refused" in crumb["data"]["reason"].lower()


def test_before_breadcrumb_sees_the_scrubbed_crumb_and_the_response(
    server: tuple[str, Recorded], fresh_scope: None
) -> None:
    base, _ = server
    seen: list[tuple[dict[str, Any], dict[str, Any]]] = []

    def before_breadcrumb(crumb: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any] | None:
        if crumb.get("type") == "http":
            seen.append((crumb, hint))
            return None  # dropped: the event gets none
        return crumb

    transport = _init(before_breadcrumb=before_breadcrumb)
    try:
        requests.get(f"{base}/plain?session_id={SECRET}", timeout=TIMEOUT)
        assert _crumbs(transport) == []
    finally:
        errlink.close(timeout=5)
    [(crumb, hint)] = seen
    assert SECRET not in json.dumps(crumb)
    assert hint["response"].status == 200


def test_no_client_means_nothing_recorded_and_nothing_added(server: tuple[str, Recorded]) -> None:
    base, recorded = server
    errlink.close(timeout=5)
    assert requests.get(f"{base}/trace/alone", timeout=TIMEOUT).status_code == 200
    _assert_not_propagated(recorded.headers_of("/trace/alone"))


# -- async clients -------------------------------------------------------------------------------


@pytest.fixture
async def async_client(
    server: tuple[str, Recorded],
) -> AsyncIterator[tuple[errlink.AsyncClient, MemoryTransport]]:
    base, _ = server
    transport = MemoryTransport()
    with errlink.new_scope(new_trace=True):
        errlink.clear_breadcrumbs()
        async with errlink.AsyncClient(
            "http://key@127.0.0.1:9/1",
            transport=transport,
            trace_propagation_targets=[rf"^{base}/trace"],
        ) as client:
            yield client, transport


@pytest.fixture(params=["middleware", "trace config"])
def aiohttp_hook(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Which of its extension points aiohttp is hooked through: a client middleware (aiohttp
    3.12 and later, the default there) or a TraceConfig (older aiohttp)."""
    from errlink.integrations._libraries import aiohttp_client

    _libraries.disable_all()  # the next client hooks aiohttp again, the chosen way
    monkeypatch.setattr(aiohttp_client, "takes_middlewares", lambda: request.param == "middleware")
    yield request.param
    _libraries.disable_all()


async def test_aiohttp_client(
    aiohttp_hook: str,
    server: tuple[str, Recorded],
    refused: str,
    async_client: tuple[errlink.AsyncClient, MemoryTransport],
) -> None:
    base, recorded = server
    client, transport = async_client
    timeout = aiohttp.ClientTimeout(total=TIMEOUT)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        async with session.get(f"{base}/trace/x", params={"secret": SECRET}) as response:
            assert response.status == 200
        async with session.put(f"{base}/status/500") as response:
            assert response.status == 500
        with pytest.raises(aiohttp.ClientConnectionError):
            await session.get(refused)

    event, crumbs = await _async_crumbs(client, transport)
    _assert_propagated(recorded.headers_of(f"/trace/x?secret={SECRET}"), event)
    _assert_not_propagated(recorded.headers_of("/status/500"))
    assert [(c["category"], c["level"], c["data"]["method"], c["data"]["url"]) for c in crumbs] == [
        ("aiohttp", "info", "GET", f"{base}/trace/x"),
        ("aiohttp", "error", "PUT", f"{base}/status/500"),
        ("aiohttp", "error", "GET", refused),
    ]
    assert crumbs[0]["data"]["http.query"] == "[Filtered]"  # names a secret: filtered whole
    assert crumbs[1]["data"]["status_code"] == 500
    assert "status_code" not in crumbs[2]["data"]
    assert "Cannot connect" in crumbs[2]["data"]["reason"]
    assert SECRET not in json.dumps(event)


async def test_aiohttp_client_records_each_hop_of_a_redirect(
    aiohttp_hook: str,
    server: tuple[str, Recorded],
    async_client: tuple[errlink.AsyncClient, MemoryTransport],
) -> None:
    base, recorded = server
    client, transport = async_client
    timeout = aiohttp.ClientTimeout(total=TIMEOUT)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(f"{base}/redirect/hop") as response,
    ):
        assert response.status == 200
        assert str(response.url) == f"{base}/trace/hop"

    _event, crumbs = await _async_crumbs(client, transport)
    summary = [(c["data"]["url"], c["data"]["status_code"]) for c in crumbs]
    _assert_not_propagated(recorded.headers_of("/redirect/hop"))
    if aiohttp_hook == "middleware":
        # Each request that went out, each decided on its own URL (the second is a target).
        assert summary == [(f"{base}/redirect/hop", 302), (f"{base}/trace/hop", 200)]
        _assert_propagated(recorded.headers_of("/trace/hop"))
    else:
        # One call, named by the URL asked for; headers decided on that URL only.
        assert summary == [(f"{base}/redirect/hop", 200)]
        _assert_not_propagated(recorded.headers_of("/trace/hop"))


async def test_httpx_async(
    server: tuple[str, Recorded], async_client: tuple[errlink.AsyncClient, MemoryTransport]
) -> None:
    base, recorded = server
    client, transport = async_client
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        assert (await http.get(f"{base}/trace/y?api_key={SECRET}")).status_code == 200
        assert (await http.get(f"{base}/status/404")).status_code == 404

    event, crumbs = await _async_crumbs(client, transport)
    _assert_propagated(recorded.headers_of(f"/trace/y?api_key={SECRET}"), event)
    _assert_not_propagated(recorded.headers_of("/status/404"))
    assert [(c["category"], c["level"], c["data"]["status_code"]) for c in crumbs] == [
        ("httpx", "info", 200),
        ("httpx", "warning", 404),
    ]
    assert SECRET not in json.dumps(event)


async def test_breadcrumbs_follow_the_unit_of_work_and_its_tasks(
    server: tuple[str, Recorded], async_client: tuple[errlink.AsyncClient, MemoryTransport]
) -> None:
    # Requests made in tasks the unit of work started (asyncio.gather) are on its record; an
    # inner `new_scope()` starts from that record, and what it adds stays inside it.
    base, _ = server
    client, transport = async_client
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        await http.get(f"{base}/outer/1")

        async def child(name: str) -> None:
            await http.get(f"{base}/{name}")

        await asyncio.gather(child("a"), child("b"))
        await client.capture_message("after the gather")
        with errlink.new_scope():
            await http.get(f"{base}/inner")
            await client.capture_message("from the inner scope")
        await http.get(f"{base}/outer/2")
    await client.capture_message("from the outer scope")
    assert await client.flush(timeout=TIMEOUT)

    paths = {
        event["logentry"]["formatted"]: [
            crumb["data"]["url"].removeprefix(base)
            for crumb in event.get("breadcrumbs", {}).get("values", [])
            if crumb.get("type") == "http"
        ]
        for event in transport.events()
    }
    gathered = paths["after the gather"][1:]
    assert sorted(gathered) == ["/a", "/b"]
    assert paths == {
        "after the gather": ["/outer/1", *gathered],
        "from the inner scope": ["/outer/1", *gathered, "/inner"],
        "from the outer scope": ["/outer/1", *gathered, "/outer/2"],
    }


async def test_async_client_disabled_integrations(server: tuple[str, Recorded]) -> None:
    base, recorded = server
    transport = MemoryTransport()
    with errlink.new_scope(new_trace=True):
        errlink.clear_breadcrumbs()
        async with errlink.AsyncClient(
            "http://key@127.0.0.1:9/1",
            transport=transport,
            trace_propagation_targets=[".*"],
            disabled_integrations=["aiohttp_client"],
        ) as client:
            async with aiohttp.ClientSession() as session, session.get(f"{base}/trace/off"):
                pass
            async with httpx.AsyncClient() as http:
                await http.get(f"{base}/trace/on")
            event, crumbs = await _async_crumbs(client, transport)
    _assert_not_propagated(recorded.headers_of("/trace/off"))
    assert [c["data"]["url"] for c in crumbs] == [f"{base}/trace/on"]
    assert "aiohttp_client" not in event["sdk"]["integrations"]
    assert "httpx" in event["sdk"]["integrations"]
    with pytest.raises(ValueError, match=r"errlink.AsyncClient\(\): unknown integration 'htpx'"):
        errlink.AsyncClient("http://key@127.0.0.1:9/1", disabled_integrations=["htpx"])


# -- switching them off --------------------------------------------------------------------------


def test_disabled_integrations_turns_one_library_off(
    server: tuple[str, Recorded], fresh_scope: None
) -> None:
    base, recorded = server
    transport = _init(trace_propagation_targets=[".*"], disabled_integrations=["httpx"])
    try:
        httpx.get(f"{base}/trace/httpx-off", timeout=TIMEOUT)
        requests.get(f"{base}/trace/requests-on", timeout=TIMEOUT)
        crumbs = _crumbs(transport)
    finally:
        errlink.close(timeout=5)
    _assert_not_propagated(recorded.headers_of("/trace/httpx-off"))
    assert "sentry-trace" in recorded.headers_of("/trace/requests-on")
    assert [c["data"]["url"] for c in crumbs] == [f"{base}/trace/requests-on"]
    [event] = transport.events()
    assert "httpx" not in event["sdk"]["integrations"]
    assert {"http_client", "aiohttp_client"} <= set(event["sdk"]["integrations"])


def test_integrations_names_the_libraries_to_use(
    server: tuple[str, Recorded], fresh_scope: None
) -> None:
    base, _ = server
    transport = _init(integrations=["httpx"])
    try:
        httpx.get(f"{base}/plain", timeout=TIMEOUT)
        requests.get(f"{base}/plain", timeout=TIMEOUT)
        crumbs = _crumbs(transport)
    finally:
        errlink.close(timeout=5)
    assert [c["category"] for c in crumbs] == ["httpx"]


def test_unknown_library_names_are_clear_errors() -> None:
    libraries = "'aiohttp_client', 'httpx', 'http_client', 'sqlalchemy', 'asyncpg', 'redis'"
    with pytest.raises(
        ValueError, match=f"unknown integration 'requests' in integrations; .*{libraries}"
    ):
        errlink.init("http://key@127.0.0.1:9/1", integrations=["requests"])
    with pytest.raises(ValueError, match="unknown integration 'htpx' in disabled_integrations"):
        errlink.init("http://key@127.0.0.1:9/1", disabled_integrations=["htpx"])
    with pytest.raises(TypeError, match="disabled_integrations must be a list of names"):
        errlink.init("http://key@127.0.0.1:9/1", disabled_integrations="httpx")


# -- errlink's own sends -------------------------------------------------------------------------


@pytest.mark.parametrize("targets", [[".*"], []], ids=["propagating", "default"])
def test_errlinks_own_server_gets_no_trace_headers_and_no_breadcrumbs(
    server: tuple[str, Recorded], fresh_scope: None, targets: list[str]
) -> None:
    base, recorded = server
    project = 1 + len(targets)  # each case its own project: the server records both
    errlink.init(
        f"http://key@{base[len('http://') :]}/{project}", trace_propagation_targets=targets
    )
    try:
        # The application itself calls the DSN's host: not recorded either.
        requests.get(f"{base}/plain-own", timeout=TIMEOUT)
        with httpx.Client() as client:
            client.get(f"{base}/plain-own-httpx")
        errlink.add_breadcrumb("between")  # the event has breadcrumbs: none of them HTTP
        errlink.capture_message("sent by errlink itself")
        assert errlink.flush(timeout=TIMEOUT)
    finally:
        errlink.close(timeout=5)

    [(_method, _path, headers, body)] = recorded.wait_for(f"/api/{project}/envelope/")
    _assert_not_propagated(headers)
    _assert_not_propagated(recorded.headers_of("/plain-own"))
    if headers.get("content-encoding") == "gzip":
        body = gzip.decompress(body)
    [event] = [item.json() for item in parse_envelope(body).items if item.type == "event"]
    crumbs = event.get("breadcrumbs", {}).get("values", [])
    assert [crumb.get("message") for crumb in crumbs] == ["between"]


def test_an_explicit_extension_keeps_the_http_clients_on(
    server: tuple[str, Recorded], fresh_scope: None
) -> None:
    import flask

    from errlink.integrations.flask import Errlink

    base, _ = server
    transport = MemoryTransport()
    app = flask.Flask(__name__)

    @app.route("/calls-out")
    def calls_out() -> str:
        requests.get(f"{base}/plain-from-flask", timeout=TIMEOUT)
        raise RuntimeError("after the call")

    errlink.close(timeout=5)
    Errlink(app, dsn="http://key@127.0.0.1:9/1", transport=transport)
    try:
        assert app.test_client().get("/calls-out").status_code == 500
        assert errlink.flush(timeout=TIMEOUT)
    finally:
        errlink.close(timeout=5)
    [event] = transport.events()
    crumbs = [c for c in event["breadcrumbs"]["values"] if c.get("type") == "http"]
    assert [c["data"]["url"] for c in crumbs] == [f"{base}/plain-from-flask"]
