"""Helpers shared by the Sanic, Tornado and aiohttp.web integration tests."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import aiohttp

# Generous: the suite must pass on a loaded two-core machine.
EVENT_TIMEOUT = 30.0
CONCURRENT_REQUESTS = 200

# Headers every error test sends: each must come out scrubbed (or not at all) in the event.
SENSITIVE_HEADERS = {
    "Authorization": "Bearer top-secret-token",
    "X-Api-Key": "key-123",
    "Cookie": "sessionid=abc; theme=dark",
    "X-Forwarded-For": "203.0.113.9",
    "X-Request-Id": "req-1",
}


def newest_exception(event: dict[str, Any]) -> dict[str, Any]:
    value: dict[str, Any] = event["exception"]["values"][-1]
    return value


def mechanism(event: dict[str, Any]) -> tuple[str, bool]:
    """(type, handled) of the newest exception's mechanism."""
    found = newest_exception(event)["mechanism"]
    return found["type"], found["handled"]


def in_app_functions(event: dict[str, Any]) -> list[str]:
    frames = newest_exception(event)["stacktrace"]["frames"]
    return [frame["function"] for frame in frames if frame["in_app"]]


def header(event: dict[str, Any], name: str) -> str | None:
    """A request header of the stored event, looked up without regard to case."""
    for key, value in event["request"].get("headers", {}).items():
        if key.lower() == name.lower():
            return str(value)
    return None


def assert_headers_scrubbed(event: dict[str, Any]) -> None:
    """Without send_default_pii: credentials, cookies and client addresses are gone."""
    assert header(event, "Authorization") is None
    assert header(event, "Cookie") is None
    assert header(event, "X-Forwarded-For") is None
    assert header(event, "X-Api-Key") == "[Filtered]"
    assert header(event, "X-Request-Id") == "req-1"
    assert "cookies" not in event["request"]
    assert "REMOTE_ADDR" not in event["request"].get("env", {})


def free_socket() -> socket.socket:
    """A listening-ready TCP socket bound to a free port on 127.0.0.1."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


async def fetch(
    session: aiohttp.ClientSession, method: str, url: str, **kwargs: Any
) -> tuple[int, bytes]:
    async with session.request(method, url, **kwargs) as response:
        return response.status, await response.read()


async def fetch_concurrently(base_url: str, path: str, count: int) -> list[tuple[int, bytes]]:
    """`count` requests to ``path?n=<i>``, all in flight at once (one connection each)."""
    connector = aiohttp.TCPConnector(limit=count)
    timeout = aiohttp.ClientTimeout(total=EVENT_TIMEOUT)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        return await asyncio.gather(
            *(fetch(session, "GET", f"{base_url}{path}?n={n}") for n in range(count))
        )


def assert_no_leakage(events: list[dict[str, Any]], count: int) -> None:
    """Each event carries exactly its own request's tag, extra, user, URL query and error."""
    assert len(events) == count
    seen = set()
    for event in events:
        n = event["tags"]["n"]
        assert event["request"]["query_string"] == f"n={n}"
        assert newest_exception(event)["value"] == f"request {n} failed"
        assert set(event["tags"]) == {"n"}
        assert event.get("extra", {}).get("n") == int(n)
        assert event["user"] == {"id": f"user-{n}"}
        seen.add(n)
    assert seen == {str(n) for n in range(count)}


async def meet(barrier: asyncio.Barrier) -> None:
    """Wait until every concurrent request reached this point (or fail loudly)."""
    await asyncio.wait_for(barrier.wait(), EVENT_TIMEOUT)


def assert_boom_request(event: dict[str, Any], base: str) -> None:
    """The request of `GET {base}/boom?why=disk+full&page=2` sent with SENSITIVE_HEADERS."""
    request = event["request"]
    assert request["url"] == f"{base}/boom"
    assert request["method"] == "GET"
    assert request["query_string"] == "why=disk+full&page=2"
    assert_headers_scrubbed(event)


def assert_personal_data_sent(event: dict[str, Any]) -> None:
    """With send_default_pii: cookies and client addresses kept, secrets still filtered."""
    request = event["request"]
    assert "theme=dark" in request["cookies"]
    assert "sessionid=[Filtered]" in request["cookies"]
    assert request["env"]["REMOTE_ADDR"] == "127.0.0.1"
    assert header(event, "X-Forwarded-For") == "203.0.113.9"
    assert header(event, "Authorization") == "[Filtered]"
