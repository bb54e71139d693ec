"""Release health and cron monitors in the collector's web UI, in headless Chromium: the release
page with the numbers a release is judged by, and the monitors page with each run's status and
duration, and a monitor marked missed once its schedule says a check-in is overdue."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By

import errlink
import errlink.sync
from errlink.collector import CollectorThread

WAIT_SECONDS = 20
RELEASE = "shop@3.1.0"
REQUESTS, CRASHING, HANDLED = 200, 2, 3


@dataclass(frozen=True)
class Health:
    collector: CollectorThread
    last_check_in_at: float
    durations: list[float | None]  # as the JSON API has them, newest run first


def _api(collector: CollectorThread, path: str) -> Any:
    with urllib.request.urlopen(collector.url + path) as answer:
        return json.loads(answer.read())


def _wait_for(what: str, check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"the collector never showed {what}")
        time.sleep(0.05)


def _serve_flask_requests(dsn: str) -> None:
    """A Flask app with errlink serves REQUESTS requests: CRASHING raise, HANDLED capture."""
    from flask import Flask

    from errlink.integrations.flask import Errlink

    app = Flask("shop")

    @app.get("/ok")
    def ok() -> str:
        return "ok"

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("checkout crashed")

    @app.get("/handled")
    def handled() -> str:
        try:
            raise ValueError("coupon expired")
        except ValueError:
            errlink.capture_exception()
        return "handled"

    errlink.close(timeout=1)  # no default client left by another module: the app's is it
    Errlink(app, dsn=dsn, release=RELEASE, environment="prod")
    assert errlink.sync.default_client() is Errlink.client_for(app)
    client = app.test_client()
    paths = ["/boom"] * CRASHING + ["/handled"] * HANDLED
    for path in paths + ["/ok"] * (REQUESTS - len(paths)):
        client.get(path)

    @errlink.monitor("nightly-report", schedule=(5, "minute"), checkin_margin=2)
    def nightly_report() -> None:
        time.sleep(0.01)

    nightly_report()
    run = errlink.capture_checkin("nightly-report", "in_progress")
    errlink.capture_checkin("nightly-report", "error", check_in_id=run, duration=12.5)
    Errlink.client_for(app).close(5)
    errlink.close(5)


@pytest.fixture(scope="module")
def health(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Health]:
    db: Path = tmp_path_factory.mktemp("browser-health") / "events.db"
    with CollectorThread(db_path=db) as collector:
        _serve_flask_requests(collector.dsn)

        def arrived() -> bool:
            releases = _api(collector, "/api/0/releases/")["releases"]
            monitors = _api(collector, "/api/0/monitors/")["monitors"]
            return (
                [r["sessions"] for r in releases] == [REQUESTS]
                and len(monitors) == 1
                and [c["status"] for c in monitors[0]["check_ins"]] == ["error", "ok"]
            )

        _wait_for("the sessions and the check-ins", arrived)
        (monitor,) = _api(collector, "/api/0/monitors/")["monitors"]
        yield Health(
            collector,
            monitor["last_check_in_at"],
            [c["duration"] for c in monitor["check_ins"]],
        )
    errlink.clear_breadcrumbs()


def _cells(browser: WebDriver, row: str, names: list[str]) -> list[str]:
    (found,) = browser.find_elements(By.CSS_SELECTOR, row)
    return [found.find_element(By.CSS_SELECTOR, f"td.{name}").text for name in names]


def test_the_release_page_shows_sessions_and_crash_free_rate(
    browser: WebDriver, health: Health
) -> None:
    browser.get(f"{health.collector.url}/releases/")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Releases"
    (row,) = browser.find_elements(By.CSS_SELECTOR, "table.releases tr.release")
    assert row.find_element(By.TAG_NAME, "code").text == RELEASE
    assert _cells(
        browser, "tr.release", ["sessions", "crash-free", "errored", "crashed", "abnormal"]
    ) == ["200", "99.0%", "3", "2", "0"]
    headers = [th.text for th in browser.find_elements(By.CSS_SELECTOR, "table.releases th")]
    assert headers == [
        "release",
        "environment",
        "sessions",
        "crash-free",
        "errored",
        "crashed",
        "abnormal",
    ]


def test_the_monitors_page_shows_each_run_with_its_status_and_duration(
    browser: WebDriver, health: Health
) -> None:
    browser.get(f"{health.collector.url}/monitors/?at={health.last_check_in_at + 60}")
    section = browser.find_element(By.CSS_SELECTOR, 'section.monitor[data-slug="nightly-report"]')
    assert section.find_element(By.CSS_SELECTOR, ".monitor-status").text == "error"
    assert "every 5 minute" in section.text
    assert "next check-in expected" in section.text
    rows = section.find_elements(By.CSS_SELECTOR, "tr.check-in")
    statuses = [r.find_element(By.CSS_SELECTOR, ".check-in-status").text for r in rows]
    durations = [r.find_element(By.CSS_SELECTOR, ".duration").text for r in rows]
    assert statuses == ["error", "ok"]
    error_run, ok_run = health.durations
    assert (error_run, durations[0]) == (12.5, "12.500 s")
    assert ok_run is not None
    assert ok_run >= 0.01
    assert durations[1] == f"{ok_run:.3f} s"


def test_an_overdue_monitor_is_shown_missed(browser: WebDriver, health: Health) -> None:
    # Due 5 minutes after the last check-in, with 2 minutes of margin.
    browser.get(f"{health.collector.url}/monitors/?at={health.last_check_in_at + 6 * 60}")
    status = browser.find_element(By.CSS_SELECTOR, '[data-slug="nightly-report"] .monitor-status')
    assert status.text == "error"
    browser.get(f"{health.collector.url}/monitors/?at={health.last_check_in_at + 8 * 60}")
    status = browser.find_element(By.CSS_SELECTOR, '[data-slug="nightly-report"] .monitor-status')
    assert status.text == "missed"
    assert "status-missed" in (status.get_attribute("class") or "")
    # The runs that did report stay listed under the missed monitor.
    rows = browser.find_elements(By.CSS_SELECTOR, '[data-slug="nightly-report"] tr.check-in')
    assert len(rows) == 2
