"""One headless Chromium and one collector holding the sample application's events, shared by
the browser tests of a module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver

from errlink.collector import CollectorThread
from tests.browser import _sample_app
from tests.browser._chromium import headless_chromium


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    with headless_chromium() as driver:
        yield driver


@pytest.fixture(scope="module")
def sample_collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorThread]:
    """A collector that received the sample application's reports, then a Lambda function's
    timeout warning."""
    db: Path = tmp_path_factory.mktemp("browser") / "events.db"
    with CollectorThread(db_path=db) as collector:
        sent = _sample_app.run(collector.dsn)
        collector.wait_for_events(sent, timeout=30)
        _sample_app.lambda_timeout(collector.dsn, lambda: collector.event_count() > sent)
        yield collector
