"""Release health: request sessions (aggregated per minute) and the process session of `init`.

Logic runs against an in-memory transport; the process session of real scripts (clean exit,
uncaught exception, SIGTERM) against a real collector on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import textwrap
import urllib.request
from typing import Any

import pytest

import errlink
from errlink._capture.binding import request_scope
from errlink.collector import CollectorThread
from tests._support import wait_until_async
from tests._support.transports import MemoryTransport

DSN = "http://key@127.0.0.1:9/1"


def _items(transport: MemoryTransport, item_type: str) -> list[dict[str, Any]]:
    return [i.json() for env in transport.envelopes for i in env.items if i.type == item_type]


def _totals(transport: MemoryTransport) -> dict[str, int]:
    totals: dict[str, int] = {}
    for item in _items(transport, "sessions"):
        for bucket in item["aggregates"]:
            for name in ("exited", "errored", "crashed", "abnormal"):
                if name in bucket:
                    totals[name] = totals.get(name, 0) + bucket[name]
    return totals


async def test_request_outcomes_are_counted_per_release_and_environment() -> None:
    transport = MemoryTransport()
    async with errlink.AsyncClient(
        DSN, transport=transport, release="1.0", environment="staging"
    ) as client:
        for n in range(20):
            with request_scope(client.core):
                errlink.set_tag("n", n)  # a copy of the request's scope still marks it
                if n < 3:
                    await client.capture_exception(ValueError("handled"))
                elif n < 5:
                    await client.capture_exception(ValueError("crash"), handled=False)
        await client.flush(5)
    (item,) = _items(transport, "sessions")
    assert item["attrs"] == {"release": "1.0", "environment": "staging"}
    assert all(bucket["started"].endswith(":00.000Z") for bucket in item["aggregates"])
    assert _totals(transport) == {"exited": 15, "errored": 3, "crashed": 2}
    assert len(transport.events()) == 5


async def test_a_cancelled_request_is_abnormal_and_a_handled_then_unhandled_error_crashes() -> None:
    transport = MemoryTransport()
    async with errlink.AsyncClient(DSN, transport=transport, release="1.0") as client:

        async def request() -> None:
            with request_scope(client.core):
                await asyncio.sleep(10)

        task = asyncio.ensure_future(request())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        with request_scope(client.core):
            exc = ValueError("seen twice")
            await client.capture_exception(exc)
            await client.capture_exception(exc, handled=False)
    assert _totals(transport) == {"abnormal": 1, "crashed": 1}


async def test_sessions_are_sent_on_flush_and_close_only_when_there_is_something_new() -> None:
    transport = MemoryTransport()
    client = errlink.AsyncClient(DSN, transport=transport, release="1.0")
    with request_scope(client.core):
        pass
    await client.flush(5)
    await client.flush(5)  # nothing new: no second item
    with request_scope(client.core):
        pass
    await client.aclose()
    assert [i["aggregates"][0]["exited"] for i in _items(transport, "sessions")] == [1, 1]


async def test_the_periodic_flush_sends_aggregates_without_a_flush_call() -> None:
    transport = MemoryTransport()
    async with errlink.AsyncClient(DSN, transport=transport, release="1.0") as client:
        pipeline = client.core.pipeline
        assert pipeline is not None
        pipeline.tick_interval = 0.01
        with request_scope(client.core):
            pass
        await wait_until_async(lambda: _items(transport, "sessions"))
    assert _totals(transport) == {"exited": 1}


@pytest.mark.parametrize(
    "options", [{}, {"release": "1.0", "auto_session_tracking": False}], ids=["no-release", "off"]
)
async def test_no_sessions_without_a_release_or_when_turned_off(options: dict[str, Any]) -> None:
    transport = MemoryTransport()
    async with errlink.AsyncClient(DSN, transport=transport, **options) as client:
        assert client.core.sessions is None
        with request_scope(client.core):
            await client.capture_exception(ValueError("x"))
    assert _items(transport, "sessions") == []
    assert len(transport.events()) == 1


def test_auto_session_tracking_is_validated() -> None:
    with pytest.raises(TypeError, match="auto_session_tracking"):
        errlink.AsyncClient(DSN, auto_session_tracking="yes")  # type: ignore[arg-type]


# -- application mode: real scripts, a real collector -------------------------------------------

_SCRIPT = """
import os, signal, sys, time
import errlink
errlink.init({dsn!r}, release="tool@1", send_default_pii=True, shutdown_timeout=5)
errlink.set_user({{"id": "u-7"}})
try:
    raise KeyError("handled once")
except KeyError:
    errlink.capture_exception()
{ending}
"""
_ENDINGS = {
    "exits": "print('done', flush=True)",
    "raises": "raise RuntimeError('uncaught')",
    "killed": "print('ready', flush=True)\ntime.sleep(60)",
}


def _run_script(collector: CollectorThread, ending: str) -> subprocess.CompletedProcess[str]:
    code = _SCRIPT.format(dsn=collector.dsn, ending=_ENDINGS[ending])
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    if ending == "killed":
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
        process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=30)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def _session_updates(collector: CollectorThread) -> list[dict[str, Any]]:
    with urllib.request.urlopen(collector.url + "/api/0/sessions/") as answer:
        updates: list[dict[str, Any]] = json.loads(answer.read())["sessions"]
    return sorted(updates, key=lambda update: update["seq"])


@pytest.mark.parametrize(
    ("ending", "status", "returncode"),
    [("exits", "exited", 0), ("raises", "crashed", 1), ("killed", "abnormal", -signal.SIGTERM)],
)
def test_a_script_ends_its_session_with_the_right_status(
    collector_thread: CollectorThread, ending: str, status: str, returncode: int
) -> None:
    finished = _run_script(collector_thread, ending)
    assert finished.returncode == returncode, finished.stderr

    updates = _session_updates(collector_thread)
    assert updates, finished.stderr
    final = updates[-1]
    assert final["status"] == status
    assert final["errors"] == (1 if ending != "raises" else 2)
    assert final["did"] == "u-7"  # the user id, because send_default_pii is on
    assert final["attrs"] == {"release": "tool@1", "environment": "production"}
    assert updates[0]["init"] is True
    assert all(u["init"] is False for u in updates[1:])
    assert len({u["sid"] for u in updates}) == 1
    assert final["duration"] >= 0
    if ending == "raises":
        assert "RuntimeError: uncaught" in finished.stderr  # the app's own excepthook still ran


def test_an_applications_own_sigterm_handler_is_left_alone(
    collector_thread: CollectorThread,
) -> None:
    code = f"""
import signal, sys, time
def stop(signum, frame):
    print("graceful", flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
import errlink
errlink.init({collector_thread.dsn!r}, release="tool@1")
print("ready", flush=True)
time.sleep(60)
"""
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert stdout.strip() == "graceful"
    (update,) = _session_updates(collector_thread)
    assert update["status"] == "exited"
    assert "did" not in update
