"""The sync facade against the real collector on 127.0.0.1: threads, asyncio callers, exit, fork."""

from __future__ import annotations

import ast
import asyncio
import multiprocessing
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

import errlink
from errlink.sync import Client
from errlink.sync._bridge import loop_thread
from tests._support import free_port


@pytest.fixture(autouse=True)
def _no_default_client() -> Iterator[None]:
    yield
    errlink.close(timeout=1)


def _messages(events: list[dict[str, Any]]) -> list[str]:
    return [event["logentry"]["formatted"] for event in events if "logentry" in event]


def test_capture_builds_in_the_caller_and_arrives(collector_thread: Any) -> None:
    client = errlink.init(
        collector_thread.dsn, release="1.0", environment="test", auto_session_tracking=False
    )

    def fail() -> None:
        order_id = 7  # noqa: F841 - a local the event should carry
        raise ValueError("payment declined")

    try:
        fail()
    except ValueError:
        event_id = errlink.capture_exception()
    assert event_id is not None
    assert len(event_id) == 32
    assert errlink.flush(5) is True
    [event] = collector_thread.events()
    assert event["event_id"] == event_id
    assert event["release"] == "1.0"
    assert event["environment"] == "test"
    [value] = event["exception"]["values"]
    assert (value["type"], value["value"]) == ("ValueError", "payment declined")
    assert (
        value["stacktrace"]["frames"][-1]["function"]
        == "test_capture_builds_in_the_caller_and_arrives.<locals>.fail"
    )
    assert value["stacktrace"]["frames"][-1]["vars"]["order_id"] == 7
    assert client.stats.sent == 1


def test_50_threads_by_200_captures_all_arrive(collector_thread: Any) -> None:
    client = Client(collector_thread.dsn, queue_size=20_000)
    start = threading.Barrier(50)

    def worker(n: int) -> None:
        start.wait()
        for i in range(200):
            client.capture_message(f"thread {n} message {i}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert client.flush(60) is True
    messages = _messages(collector_thread.events())
    assert len(messages) == 10_000
    assert set(messages) == {f"thread {n} message {i}" for n in range(50) for i in range(200)}
    stats = client.stats
    assert (stats.captured, stats.sent, sum(stats.dropped.values())) == (10_000, 10_000, 0)
    client.close()


def test_capture_from_inside_a_running_loop_does_not_block_it(collector_thread: Any) -> None:
    errlink.init(collector_thread.dsn)

    async def app() -> list[str | None]:
        ids = []
        for n in range(20):
            try:
                raise KeyError(f"async {n}")
            except KeyError:
                ids.append(errlink.capture_exception())
            await asyncio.sleep(0)
        return ids

    ids = asyncio.run(app())
    assert all(ids)
    assert errlink.flush(5) is True
    received = [e["event_id"] for e in collector_thread.events()]
    assert sorted(received) == sorted(ids)


def test_flush_from_the_loop_thread_is_an_error_not_a_deadlock(collector_thread: Any) -> None:
    client = Client(collector_thread.dsn)
    client.capture_message("warm up")
    assert client.flush(5)
    result: list[bool] = []
    done = threading.Event()

    def inside_loop() -> None:
        result.append(client.flush(5))
        done.set()

    loop_thread().call_soon(inside_loop)
    assert done.wait(2), "flush called on the loop thread hung"
    assert result == [False]
    client.close()


def test_close_is_idempotent_and_capture_after_close_is_a_no_op(collector_thread: Any) -> None:
    client = Client(collector_thread.dsn)
    client.capture_message("before close")
    assert client.close(5) is True
    assert client.close(5) is True
    assert client.capture_message("after close") is None
    assert _messages(collector_thread.events()) == ["before close"]


def test_a_disabled_client_is_a_cheap_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ERRLINK_DSN", raising=False)
    monkeypatch.delenv("SENTRY_DSN", raising=False)
    client = errlink.init()
    assert client.enabled is False
    assert errlink.capture_message("nowhere") is None
    assert errlink.flush(1) is True
    assert client.stats.captured == 0


SCRIPT = textwrap.dedent(
    """
    import sys, errlink
    errlink.init(sys.argv[1], shutdown_timeout=float(sys.argv[2]), http_timeout=30)
    for n in range(5):
        try:
            raise RuntimeError(f"exit test {n}")
        except RuntimeError:
            errlink.capture_exception()
    print("captured", flush=True)
    """
)


def test_a_script_that_exits_without_flush_still_delivers(collector_thread: Any) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, collector_thread.dsn, "5"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    events = collector_thread.wait_for_events(5, timeout=5)
    values = sorted(e["exception"]["values"][-1]["value"] for e in events)
    assert values == [f"exit test {n}" for n in range(5)]


def test_with_the_server_down_exit_takes_at_most_shutdown_timeout() -> None:
    # A listening socket that never accepts: connections hang, the worst case for exit.
    with socket.socket() as black_hole:
        black_hole.bind(("127.0.0.1", 0))
        black_hole.listen(0)
        port = black_hole.getsockname()[1]
        dsn = f"http://key@127.0.0.1:{port}/1"
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-c", SCRIPT, dsn, "1.0"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    assert "captured" in proc.stdout
    # Interpreter start-up plus a 1 s shutdown_timeout; never the 30 s http_timeout.
    assert elapsed < 10, elapsed
    refused_port = free_port()
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, f"http://key@127.0.0.1:{refused_port}/1", "1.0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    assert time.monotonic() - started < 10


def test_a_process_with_nothing_queued_exits_without_delay(collector_thread: Any) -> None:
    script = "import sys, errlink; errlink.init(sys.argv[1], shutdown_timeout=20)"
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", script, collector_thread.dsn], capture_output=True, timeout=30
    )
    assert proc.returncode == 0
    assert time.monotonic() - started < 10  # far below the 20 s shutdown_timeout


def test_an_uncaught_exception_in_a_script_is_reported(collector_thread: Any) -> None:
    script = "import sys, errlink; errlink.init(sys.argv[1]); raise SystemError('uncaught!')"
    proc = subprocess.run(
        [sys.executable, "-c", script, collector_thread.dsn],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 1
    assert "SystemError: uncaught!" in proc.stderr  # the default hook still ran
    [event] = collector_thread.wait_for_events(1, timeout=5)
    [value] = event["exception"]["values"]
    assert value["value"] == "uncaught!"
    assert value["mechanism"]["handled"] is False
    assert value["mechanism"]["type"] == "excepthook"
    assert event["level"] == "fatal"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_parent_and_child_each_deliver_exactly_once(collector_thread: Any) -> None:
    client = errlink.init(collector_thread.dsn, http_timeout=5)
    errlink.capture_message("parent before fork")
    # Leave it possibly queued: the child must never send the parent's queued events.
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            errlink.capture_message("child after fork")
            code = 0 if errlink.flush(10) else 2
        finally:
            os._exit(code)
    errlink.capture_message("parent after fork")
    assert client.flush(10)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    messages = Counter(_messages(collector_thread.wait_for_events(3, timeout=5)))
    assert messages == {"parent before fork": 1, "child after fork": 1, "parent after fork": 1}


def _child_task(n: int) -> tuple[bool, dict[str, int]]:
    errlink.capture_message(f"pool child {n}")
    flushed = errlink.flush(10)
    client = errlink.sync.default_client()
    assert client is not None
    return flushed, client.stats.dropped


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_multiprocessing_fork_children_deliver(collector_thread: Any) -> None:
    errlink.init(collector_thread.dsn)
    errlink.capture_message("parent")
    context = multiprocessing.get_context("fork")
    with context.Pool(3) as pool:
        results = pool.map(_child_task, range(6), chunksize=1)
    assert results == [(True, {})] * 6, collector_thread.request_statuses
    assert errlink.flush(10)
    messages = Counter(_messages(collector_thread.wait_for_events(7, timeout=5)))
    assert messages == {"parent": 1, **{f"pool child {n}": 1 for n in range(6)}}


def test_close_with_the_server_down_gives_up_after_a_failed_send_not_after_the_timeout() -> None:
    refused_port = free_port()  # nothing listens: every connection is refused at once
    client = Client(f"http://key@127.0.0.1:{refused_port}/1", shutdown_timeout=30)
    for i in range(20):
        client.capture_message(f"message {i}")
    started = time.monotonic()
    assert client.close() is False  # nothing was delivered
    # Against its own 30 s budget: it gave up after the failures instead of waiting it out.
    assert time.monotonic() - started < 30 / 4
    stats = client.stats
    assert (stats.sent, stats.pending, dict(stats.dropped)) == (0, 0, {"network_error": 20})


FRAMEWORKS_SCRIPT = textwrap.dedent(
    """
    import sys, errlink
    errlink.init(sys.argv[1])
    frameworks = ("flask", "django", "celery", "quart", "sanic", "tornado", "starlette", "fastapi",
                  "litestar", "aiohttp.web")
    print(sorted(name for name in frameworks if name in sys.modules))
    print(sorted(errlink.sync.default_client().core.builder.sdk["integrations"]))
    libraries = ("httpx", "requests", "sqlalchemy", "asyncpg", "redis")
    print(sorted(name for name in libraries if name in sys.modules))
    """
)


def test_init_imports_no_framework_the_app_did_not_import(collector_thread: Any) -> None:
    proc = subprocess.run(
        [sys.executable, "-W", "error", "-c", FRAMEWORKS_SCRIPT, collector_thread.dsn],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    imported, integrations, libraries = proc.stdout.splitlines()
    assert (imported, libraries) == ("[]", "[]")
    # The installed client libraries are enabled (hooked if the app imports them), no framework.
    named = set(ast.literal_eval(integrations))
    assert {"excepthook", "logging", "httpx", "sqlalchemy", "redis"} <= named
    assert not named & {"flask", "django", "celery", "quart", "sanic", "tornado", "starlette"}
