"""Structured logs in the collector's web UI, in headless Chromium: the logs page filtered by
level, text and trace, and the way there from an event ("logs in this trace")."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.wait import WebDriverWait

import errlink
from errlink.collector import CollectorThread

WAIT_SECONDS = 20
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
OTHER_TRACE = "0af7651916cd43dd8448eb211c80319c"


@dataclass(frozen=True)
class Logged:
    collector: CollectorThread
    event_id: str  # an error in TRACE


async def _send(dsn: str) -> str | None:
    async with errlink.AsyncClient(dsn) as client:
        with errlink.continue_trace({"sentry-trace": f"{TRACE}-{'1' * 16}-1"}):
            errlink.logger.info("checkout started for cart {cart}", cart=41)
            errlink.logger.warning("payment provider slow: {ms} ms", ms=2300)
            errlink.logger.error("payment {order} declined", order=7)
            event_id = await client.capture_message("payment declined", level="error")
        with errlink.continue_trace({"sentry-trace": f"{OTHER_TRACE}-{'2' * 16}-1"}):
            errlink.logger.info("nightly report written")
            errlink.logger.error("report upload failed: <b>disk</b> full")
        assert await client.flush(timeout=10)
    return event_id


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Logged]:
    db: Path = tmp_path_factory.mktemp("browser-logs") / "events.db"
    with CollectorThread(db_path=db) as collector:
        event_id = asyncio.run(_send(collector.dsn))
        assert event_id is not None
        collector.wait_for_events(1, timeout=10)
        yield Logged(collector, event_id)


def bodies(browser: WebDriver) -> list[str]:
    return [cell.text for cell in browser.find_elements(By.CSS_SELECTOR, "table.logs .log-body")]


def submit_and_wait(browser: WebDriver, button: WebElement) -> None:
    before = browser.current_url
    button.click()
    WebDriverWait(browser, WAIT_SECONDS).until(
        lambda b: (
            b.current_url != before and b.execute_script("return document.readyState") == "complete"
        )
    )


def test_the_logs_page_lists_newest_first(browser: WebDriver, logged: Logged) -> None:
    browser.get(f"{logged.collector.url}/logs/")
    assert bodies(browser) == [
        "report upload failed: <b>disk</b> full",
        "nightly report written",
        "payment 7 declined",
        "payment provider slow: 2300 ms",
        "checkout started for cart 41",
    ]
    assert browser.execute_script("return document.querySelector('table.logs b')") is None


def test_filtering_by_level_then_text(browser: WebDriver, logged: Logged) -> None:
    browser.get(f"{logged.collector.url}/logs/")
    form = browser.find_element(By.CSS_SELECTOR, "form.filters")
    Select(form.find_element(By.NAME, "level")).select_by_value("error")
    submit_and_wait(browser, form.find_element(By.TAG_NAME, "button"))
    assert bodies(browser) == ["report upload failed: <b>disk</b> full", "payment 7 declined"]
    form = browser.find_element(By.CSS_SELECTOR, "form.filters")
    form.find_element(By.NAME, "q").send_keys("payment")
    submit_and_wait(browser, form.find_element(By.TAG_NAME, "button"))
    assert bodies(browser) == ["payment 7 declined"]


def test_filtering_by_a_trace_id_typed_in(browser: WebDriver, logged: Logged) -> None:
    browser.get(f"{logged.collector.url}/logs/")
    form = browser.find_element(By.CSS_SELECTOR, "form.filters")
    form.find_element(By.NAME, "trace").send_keys(OTHER_TRACE)
    submit_and_wait(browser, form.find_element(By.TAG_NAME, "button"))
    assert bodies(browser) == ["report upload failed: <b>disk</b> full", "nightly report written"]


def test_from_an_event_to_the_logs_of_its_trace(browser: WebDriver, logged: Logged) -> None:
    browser.get(f"{logged.collector.url}/events/{logged.event_id}/")
    link = browser.find_element(By.CSS_SELECTOR, "a.logs-in-trace")
    assert link.text == "logs in this trace"
    submit_and_wait(browser, link)
    assert bodies(browser) == [
        "payment 7 declined",
        "payment provider slow: 2300 ms",
        "checkout started for cart 41",
    ]
    assert browser.find_element(By.NAME, "trace").get_attribute("value") == TRACE
