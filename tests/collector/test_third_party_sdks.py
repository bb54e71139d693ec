"""Other Sentry SDKs, unmodified, sending to the collector on 127.0.0.1.

sentry-python runs in a subprocess per scenario, so its global `init` stays out of this
process; each scenario runs with Brotli importable (sentry-python then compresses with it) and
without (gzip). @sentry/node runs from tests/js (`npm ci --prefix tests/js` installs it; CI does).
"""

from __future__ import annotations

import asyncio
import html
import importlib.util
import os
import re
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from errlink.collector import Collector
from tests._support import wait_until_async

JS_DIR = Path(__file__).resolve().parents[1] / "js"
SUBPROCESS_TIMEOUT_SECONDS = 60.0
ARRIVAL_TIMEOUT_SECONDS = 15.0

# argv: DSN, scenario, "brotli" or "no-brotli". Prints the compression sentry-python chose.
SENTRY_PYTHON_SCRIPT = r"""
import sys

dsn, scenario, compression = sys.argv[1:4]
if compression == "no-brotli":
    sys.modules["brotli"] = None  # `import brotli` fails, as when it is not installed

import sentry_sdk
from sentry_sdk.crons import capture_checkin


def init(**options):
    sentry_sdk.init(
        dsn,
        release="shop@1.0",
        auto_enabling_integrations=False,
        send_client_reports=False,
        **options,
    )


def charge(card):
    return {"visa": 1}[card]


def pay(card):
    try:
        charge(card)
    except KeyError as exc:
        raise RuntimeError("payment failed") from exc


def warn(text):
    sentry_sdk.capture_message(text, level="warning")


def error():
    init()
    try:
        charge("amex")
    except KeyError:
        sentry_sdk.capture_exception()


def chained_error():
    init()
    try:
        pay("amex")
    except RuntimeError:
        sentry_sdk.capture_exception()


def exception_group():
    init()
    failures = []
    for job in (lambda: pay("amex"), lambda: charge("jcb")):
        try:
            job()
        except Exception as exc:
            failures.append(exc)
    try:
        raise ExceptionGroup("checkout failed", failures)
    except ExceptionGroup:
        sentry_sdk.capture_exception()


def messages():
    init(attach_stacktrace=True)
    warn("disk almost full")
    warn("queue is backing up")


def flask_error():
    from flask import Flask
    from sentry_sdk.integrations.flask import FlaskIntegration

    init(integrations=[FlaskIntegration()])
    app = Flask("shop")

    @app.route("/orders/<int:order_id>")
    def show_order(order_id):
        raise LookupError(f"order {order_id} not found")

    assert app.test_client().get("/orders/7").status_code == 500


def not_events():
    init(traces_sample_rate=1.0)
    with sentry_sdk.start_transaction(name="nightly-export"):
        pass
    capture_checkin(monitor_slug="nightly-export", status="ok")
    scope = sentry_sdk.get_isolation_scope()
    scope.start_session()
    scope.end_session()


globals()[scenario]()
sentry_sdk.flush(timeout=10)
print(sentry_sdk.get_client().transport._compression_algo)
"""

COMPRESSIONS = [
    pytest.param(
        "brotli",
        marks=pytest.mark.skipif(
            importlib.util.find_spec("brotli") is None, reason="brotli is not installed"
        ),
    ),
    "no-brotli",
]
EXPECTED_ALGORITHM = {"brotli": "br", "no-brotli": "gzip"}


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


async def run(*command: str) -> str:
    """Run a command to its end (the collector keeps serving meanwhile); its stdout."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("SENTRY_")}
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), SUBPROCESS_TIMEOUT_SECONDS)
    except asyncio.TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode == 0, stderr.decode(errors="replace")
    return stdout.decode()


async def sentry_python(collector: Collector, scenario: str, compression: str) -> None:
    output = await run(
        sys.executable, "-c", SENTRY_PYTHON_SCRIPT, collector.dsn, scenario, compression
    )
    assert output.split() == [EXPECTED_ALGORITHM[compression]]


async def event_page(session: aiohttp.ClientSession, collector: Collector, event_id: str) -> str:
    async with session.get(f"{collector.url}/events/{event_id}/") as response:
        assert response.status == 200
        return await response.text()


def chain_notes(page: str) -> list[str]:
    return [html.unescape(note) for note in re.findall(r'class="chain-note">(.*?)</p>', page)]


def sections(page: str) -> list[str]:
    return re.findall(r'<h2 id="([\w-]+)">', page)


# -- sentry-python --------------------------------------------------------------------------


@pytest.mark.parametrize("compression", COMPRESSIONS)
async def test_sentry_python_error(collector: Collector, compression: str) -> None:
    await sentry_python(collector, "error", compression)
    [event] = await collector.wait_for_events(1, ARRIVAL_TIMEOUT_SECONDS)
    assert event["sdk"]["name"] == "sentry.python"
    [group] = collector.groups()
    assert (group.title, group.culprit, group.count) == (
        "KeyError: 'amex'",
        "__main__ in charge",
        1,
    )


@pytest.mark.parametrize("compression", COMPRESSIONS)
async def test_sentry_python_chained_error(
    collector: Collector, session: aiohttp.ClientSession, compression: str
) -> None:
    await sentry_python(collector, "chained_error", compression)
    [event] = await collector.wait_for_events(1, ARRIVAL_TIMEOUT_SECONDS)
    assert [value["type"] for value in event["exception"]["values"]] == ["KeyError", "RuntimeError"]
    [group] = collector.groups()
    assert (group.title, group.culprit) == ("RuntimeError: payment failed", "__main__ in pay")
    # sentry-python does not say whether a plain chain is a cause or a context: the page says so.
    page = await event_page(session, collector, event["event_id"])
    assert chain_notes(page) == ["The above exception led to the following exception:"]


@pytest.mark.skipif(sys.version_info < (3, 11), reason="ExceptionGroup needs Python 3.11")
@pytest.mark.parametrize("compression", COMPRESSIONS)
async def test_sentry_python_exception_group_is_drawn_from_its_ids(
    collector: Collector, session: aiohttp.ClientSession, compression: str
) -> None:
    await sentry_python(collector, "exception_group", compression)
    [event] = await collector.wait_for_events(1, ARRIVAL_TIMEOUT_SECONDS)
    values = event["exception"]["values"]
    assert [(value["type"], value["value"]) for value in values] == [
        ("KeyError", "'jcb'"),
        ("KeyError", "'amex'"),
        ("RuntimeError", "payment failed"),
        ("ExceptionGroup", "checkout failed"),
    ]
    [group] = collector.groups()
    assert group.title == "ExceptionGroup: checkout failed"
    page = await event_page(session, collector, event["event_id"])
    assert chain_notes(page) == [
        "The above exception is part of the exception group ExceptionGroup (further below).",
        "The above exception was the direct cause of the following exception:",
        "The above exception is part of the following exception group:",
    ]


@pytest.mark.parametrize("compression", COMPRESSIONS)
async def test_sentry_python_messages_with_their_stack(
    collector: Collector, session: aiohttp.ClientSession, compression: str
) -> None:
    await sentry_python(collector, "messages", compression)
    events = await collector.wait_for_events(2, ARRIVAL_TIMEOUT_SECONDS)
    assert all("threads" in event and "exception" not in event for event in events)
    titles = sorted((group.title, group.level) for group in collector.groups())
    assert titles == [("disk almost full", "warning"), ("queue is backing up", "warning")]
    page = await event_page(session, collector, events[0]["event_id"])
    assert sections(page)[:2] == ["message", "stacktrace"]
    assert "<code>warn</code>" in page


@pytest.mark.parametrize("compression", COMPRESSIONS)
async def test_sentry_python_flask_error(collector: Collector, compression: str) -> None:
    await sentry_python(collector, "flask_error", compression)
    [event] = await collector.wait_for_events(1, ARRIVAL_TIMEOUT_SECONDS)
    assert event["request"]["url"] == "http://localhost/orders/7"
    assert event["exception"]["values"][-1]["mechanism"]["type"] == "flask"
    [group] = collector.groups()
    assert (group.title, group.culprit) == (
        "LookupError: order 7 not found",
        "__main__ in show_order",
    )


@pytest.mark.parametrize("compression", COMPRESSIONS)
async def test_sentry_python_session_and_check_in_are_stored_its_transaction_ignored(
    collector: Collector, compression: str, session: aiohttp.ClientSession
) -> None:
    await sentry_python(collector, "not_events", compression)
    await wait_until_async(lambda: sum(collector.ignored_items.values()) >= 1, 15)

    async def api(path: str) -> Any:
        async with session.get(f"{collector.url}{path}") as response:
            return await response.json()

    async def stored() -> bool:
        monitors = (await api("/api/0/monitors/"))["monitors"]
        releases = (await api("/api/0/releases/"))["releases"]
        return bool(monitors) and bool(releases)

    deadline = asyncio.get_running_loop().time() + ARRIVAL_TIMEOUT_SECONDS
    while not await stored():
        assert asyncio.get_running_loop().time() < deadline, "no session or check-in stored"
        await asyncio.sleep(0.05)
    assert dict(collector.ignored_items) == {"transaction": 1}
    [monitor] = (await api("/api/0/monitors/"))["monitors"]
    assert (monitor["slug"], monitor["status"]) == ("nightly-export", "ok")
    [release] = (await api("/api/0/releases/"))["releases"]
    assert (release["release"], release["sessions"], release["exited"]) == ("shop@1.0", 1, 1)
    assert collector.events() == []
    assert collector.request_statuses.keys() == {200}


# -- @sentry/node ---------------------------------------------------------------------------


def _skip_unless_required(reason: str) -> None:
    """Skip where Node is missing; CI (`ERRLINK_REQUIRE_NODE=1`, set by .ci/run) fails instead."""
    if os.environ.get("ERRLINK_REQUIRE_NODE") == "1":
        pytest.fail(f"ERRLINK_REQUIRE_NODE=1: {reason}")
    pytest.skip(reason)


async def test_sentry_javascript_node(collector: Collector, session: aiohttp.ClientSession) -> None:
    node = shutil.which("node")
    if node is None:
        _skip_unless_required("node is not installed")
    if not (JS_DIR / "node_modules" / "@sentry" / "node").is_dir():
        _skip_unless_required("@sentry/node is not installed: run `npm ci --prefix tests/js`")
    assert node is not None
    await run(node, str(JS_DIR / "send_events.js"), collector.dsn)
    events = await collector.wait_for_events(3, ARRIVAL_TIMEOUT_SECONDS)
    assert {event["sdk"]["name"] for event in events} == {"sentry.javascript.node"}

    groups = {group.title: group for group in collector.groups()}
    assert sorted(groups) == ["Error: payment failed", "disk almost full", "queue is backing up"]
    # Two messages sent from one function are two issues, each titled by its text.
    for text in ("disk almost full", "queue is backing up"):
        assert (groups[text].level, groups[text].count) == ("warning", 1)
        assert groups[text].culprit == "send_events in warn"

    error = next(event for event in events if "message" not in event)
    cause = error["exception"]["values"][0]
    assert cause["mechanism"]["type"] == "chained"
    assert cause["mechanism"]["source"] == "cause"
    page = await event_page(session, collector, error["event_id"])
    assert chain_notes(page) == [
        "The above exception was the direct cause of the following exception:"
    ]

    message = next(event for event in events if event.get("message") == "disk almost full")
    page = await event_page(session, collector, message["event_id"])
    assert sections(page)[:2] == ["message", "stacktrace"]
    assert "exception" not in sections(page)
