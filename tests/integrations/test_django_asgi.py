"""The Django integration under ASGI: async views through Django's AsyncClient (the ASGI
handler, the async middleware chain), delivering to errlink's collector."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from _django_project import errlink_configured, errlink_off, setup_django

setup_django()

from django.test import AsyncClient  # noqa: E402

from tests.integrations._wsgi_contract import AUTHORIZATION, FLUSH_TIMEOUT, PASSWORD  # noqa: E402

pytestmark = pytest.mark.usefixtures("no_default_client")


async def _requests(client: AsyncClient) -> list[tuple[int, bytes]]:
    # Each request in a task of its own, as an ASGI server runs it: what Django logs after the
    # middleware chain (the 404 warning) then stays in that task's context, not the test's.
    return await asyncio.create_task(_send(client))


async def _send(client: AsyncClient) -> list[tuple[int, bytes]]:
    responses = [
        await client.get("/login/carol/"),
        await client.post(
            "/async/5/?token=abc",
            {"password": PASSWORD, "item": "lamp"},
            content_type="application/json",
            headers={"Authorization": AUTHORIZATION},
        ),
        await client.get("/hello/"),
        await client.get("/no-such-page/"),
    ]
    return [(response.status_code, response.content) for response in responses]


async def test_async_view_error_is_captured_with_the_same_fields(sink: Any) -> None:
    with errlink_off():
        off = await _requests(AsyncClient(raise_request_exception=False))
    with errlink_configured(dsn=sink.dsn, send_default_pii=True) as client:
        on = await _requests(AsyncClient(raise_request_exception=False))
        assert client.flush(FLUSH_TIMEOUT)
    assert on == off
    assert [status for status, _ in on] == [200, 500, 200, 404]

    [event] = sink.events()
    exc = event["exception"]["values"][-1]
    assert (exc["type"], exc["value"]) == ("ValueError", "async order 5 failed")
    assert (exc["mechanism"]["type"], exc["mechanism"]["handled"]) == ("django", False)
    view = exc["stacktrace"]["frames"][-1]
    assert (view["function"], view["module"], view["in_app"]) == (
        "async_order",
        "_django_views",
        True,
    )
    assert view["vars"]["order_id"] == 5

    assert event["transaction"] == "async-order"
    req = event["request"]
    assert req["url"] == "http://testserver/async/5/"
    assert req["method"] == "POST"
    assert req["query_string"] == "token=%5BFiltered%5D"
    assert req["data"] == {"password": "[Filtered]", "item": "lamp"}
    assert req["headers"]["Authorization"] == "[Filtered]"
    assert req["cookies"]["sessionid"] == "[Filtered]"

    user = event["user"]  # loaded by the view with `await request.auser()`
    assert (user["username"], user["email"]) == ("carol", "carol@example.com")
    crumbs = event["breadcrumbs"]["values"]
    queries = [c["message"] for c in crumbs if c["category"] == "query"]
    assert any("django_session" in q for q in queries)
    assert "[Filtered]" in queries  # the query on "auth_user": "auth" is filtered, as by Relay
    logs = [c["message"] for c in crumbs if c["category"] == "shop"]
    assert logs == ["async order 5 for 1"]


async def test_under_a_real_asgi_server_async_views_report_with_the_same_core(sink: Any) -> None:
    # Django's own ASGI handler served by uvicorn, as in production: the errlink middleware stays
    # async there, and reports through the process's default client like under WSGI.
    import aiohttp
    from _asgi_serving import uvicorn_serving
    from django.core.asgi import get_asgi_application

    with errlink_configured(dsn=sink.dsn) as client:
        async with (
            uvicorn_serving(get_asgi_application(), lifespan="off") as base,
            aiohttp.ClientSession() as session,
        ):
            async with session.get(f"{base}/async/7/?page=2") as response:
                assert response.status == 500
            async with session.get(f"{base}/hello/") as response:
                assert response.status == 200
        assert await asyncio.to_thread(client.flush, FLUSH_TIMEOUT)

    [event] = sink.events()
    exc = event["exception"]["values"][-1]
    assert (exc["type"], exc["value"]) == ("ValueError", "async order 7 failed")
    assert (exc["mechanism"]["type"], exc["mechanism"]["handled"]) == ("django", False)
    assert event["transaction"] == "async-order"
    assert event["request"]["url"] == f"{base}/async/7/"
    assert event["request"]["query_string"] == "page=2"
    assert "django" in event["sdk"]["integrations"]
