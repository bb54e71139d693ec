"""`errlink test` and `errlink demo`, run as a user runs them (a subprocess)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from typing import Any

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


def test_errlink_test_fails_when_the_server_refuses(collector_thread: Any) -> None:
    wrong_key = collector_thread.dsn.replace("//errlink@", "//wrong@")
    result = _errlink("test", wrong_key)
    assert result.returncode == 1
    assert "did not accept" in result.stderr
    assert "send_error" in result.stderr
    assert collector_thread.event_count() == 0


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
    assert re.search(r"web UI: http://127\.0\.0\.1:\d+/ ", result.stdout)


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
