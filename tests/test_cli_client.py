"""`errlink test` and `errlink demo`, run as a user runs them (a subprocess), and what
`debug=True` shows of each send."""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from errlink import AsyncClient
from errlink.collector import Collector

ROOT = Path(__file__).resolve().parent.parent


def _errlink(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    environment.pop("ERRLINK_DSN", None)
    environment.pop("SENTRY_DSN", None)
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "errlink", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
    )


def test_errlink_test_succeeds_against_the_collector(collector_thread: Any) -> None:
    result = _errlink("test", collector_thread.dsn)
    assert result.returncode == 0, result.stderr
    assert "accepted" in result.stdout
    [event] = collector_thread.events()
    assert event["tags"]["errlink_test"] == "yes"
    assert event["logentry"]["formatted"].startswith("errlink test event")


def test_errlink_test_reads_the_dsn_from_the_environment(collector_thread: Any) -> None:
    result = _errlink("test", env={"ERRLINK_DSN": collector_thread.dsn})
    assert result.returncode == 0, result.stderr
    assert collector_thread.event_count() == 1


def test_errlink_test_prints_the_servers_own_reason_when_it_refuses(
    collector_thread: Any,
) -> None:
    wrong_key = collector_thread.dsn.replace("//errlink@", "//wrong@")
    result = _errlink("test", wrong_key)
    assert result.returncode == 1
    address = f"127.0.0.1:{collector_thread.port}"
    assert result.stderr == (
        f"errlink test: the server at {address} refused the test event: "
        "HTTP 401: invalid public key\n"
    )
    assert collector_thread.event_count() == 0


def test_errlink_test_says_in_one_line_that_a_host_is_unreachable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: connections are refused
    result = _errlink("test", f"http://key@127.0.0.1:{port}/1")
    assert result.returncode == 1
    assert result.stdout == ""
    # One line, and nothing about trying again: the command is done.
    assert result.stderr == f"errlink test: cannot reach 127.0.0.1:{port}: connection refused\n"


@pytest.mark.parametrize("timeout", ["0", "-1", "nan"])
def test_errlink_test_names_the_timeout_flag_when_it_is_not_positive(timeout: str) -> None:
    result = _errlink("test", "--timeout", timeout, "http://key@127.0.0.1:9/1")
    assert result.returncode == 2
    assert result.stderr.startswith("usage: errlink test ")
    assert f"errlink test: error: argument --timeout: must be more than 0, got {timeout}" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr
    assert "http_timeout" not in result.stderr


def test_errlink_test_without_a_dsn_or_with_a_bad_one_is_a_usage_error() -> None:
    result = _errlink("test")
    assert result.returncode == 2
    assert "no DSN given" in result.stderr
    result = _errlink("test", "https://k:hunter2@example.com")
    assert result.returncode == 2
    assert "missing project id" in result.stderr
    assert "hunter2" not in result.stderr


def test_errlink_demo_reports_sample_errors_and_exits_0() -> None:
    result = _errlink("demo")
    assert result.returncode == 0, result.stderr
    assert "the collector received 4 events" in result.stdout
    assert "CheckoutError: checkout failed for order 7 <- ConnectionError" in result.stdout
    assert "secrets scrubbed before sending: yes" in result.stdout
    assert "grouped into 4 issues:" in result.stdout
    assert (
        "1x [error] KeyError: 'name'  (errlink._cli.demo in _async_app.<locals>.fetch_profile)"
        in (result.stdout)
    )
    # The collector stops with the demo: its last lines say how to keep one, not where it was.
    last_lines = result.stdout.split("secrets scrubbed before sending: yes")[1]
    assert "http://" not in last_lines
    assert "run `errlink demo --serve` (it keeps running until Ctrl-C)" in last_lines


def test_errlink_demo_serve_keeps_the_web_ui_up_until_interrupted() -> None:
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "errlink", "demo", "--serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )
    watchdog = threading.Timer(60, process.kill)  # a hung demo fails this test, not the run
    watchdog.start()
    try:
        assert process.stdout is not None
        for line in process.stdout:
            found = re.match(r"web UI: (http://127\.0\.0\.1:\d+/) ", line)
            if found:
                break
        else:
            raise AssertionError("no web UI address printed")
        with urllib.request.urlopen(found.group(1), timeout=10) as response:
            listing = response.read().decode()
        assert listing.count('class="group-title"') == 4
        assert "CheckoutError: checkout failed for order 7" in listing
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0


@pytest.fixture
def errlink_log_restored(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """`debug=True` adds a stderr handler to the `errlink` logger: take it away afterwards."""
    import errlink._log

    monkeypatch.setattr(errlink._log, "_debug_handler", None, raising=False)
    errlink_logger = logging.getLogger("errlink")
    handlers, level = list(errlink_logger.handlers), errlink_logger.level
    yield
    errlink_logger.handlers[:] = handlers
    errlink_logger.setLevel(level)


SENT_LINE = re.compile(r"errlink: sent event ([0-9a-f]{32}) \((\d+) bytes\): HTTP 200 in \d+ ms")


@pytest.mark.usefixtures("errlink_log_restored")
async def test_debug_logs_each_successful_send_with_status_size_and_time(
    collector: Collector, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="errlink"):
        async with AsyncClient(collector.dsn, debug=True) as client:
            event_ids = [await client.capture_message(f"hello {n}") for n in range(3)]
            await client.flush(10)
    await collector.wait_for_events(3, timeout=10)
    sent = [
        (record.levelno, found)
        for record in caplog.records
        if (found := SENT_LINE.search(record.getMessage()))
    ]
    assert sorted(found.group(1) for _, found in sent) == sorted(event_ids)
    assert all(level == logging.DEBUG and int(found.group(2)) > 0 for level, found in sent)


@pytest.mark.usefixtures("errlink_log_restored")
async def test_without_debug_successful_sends_are_not_logged(
    collector: Collector, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="errlink"):
        async with AsyncClient(collector.dsn) as client:
            await client.capture_message("hello")
            await client.flush(10)
    await collector.wait_for_events(1, timeout=10)
    assert not [record for record in caplog.records if SENT_LINE.search(record.getMessage())]


def test_errlink_test_debug_shows_the_send(collector_thread: Any) -> None:
    result = _errlink("test", "--debug", collector_thread.dsn)
    assert result.returncode == 0, result.stderr
    assert SENT_LINE.search(result.stderr)
