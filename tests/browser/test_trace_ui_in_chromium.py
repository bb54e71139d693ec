"""A trace in the collector's web UI, in headless Chromium: from an event to the other event of
its trace, and to the trace's page."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.wait import WebDriverWait

import errlink
from errlink.collector import CollectorThread

WAIT_SECONDS = 20
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
OTHER_TRACE = "0af7651916cd43dd8448eb211c80319c"


@dataclass(frozen=True)
class Traced:
    collector: CollectorThread
    request_failed: str  # in TRACE
    job_failed: str  # in TRACE
    unrelated: str  # in OTHER_TRACE


async def _send(dsn: str) -> tuple[str | None, ...]:
    ids = []
    async with errlink.AsyncClient(dsn) as client:
        with errlink.continue_trace({"sentry-trace": f"{TRACE}-{'1' * 16}-1"}):
            ids.append(await client.capture_message("payment request failed", level="error"))
            assert await client.flush(timeout=10)
            try:
                raise TimeoutError("settlement job timed out")
            except TimeoutError:
                ids.append(await client.capture_exception())
            assert await client.flush(timeout=10)
        with errlink.continue_trace({"sentry-trace": f"{OTHER_TRACE}-{'2' * 16}-1"}):
            ids.append(await client.capture_message("unrelated failure", level="error"))
            assert await client.flush(timeout=10)
    return tuple(ids)


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Traced]:
    db: Path = tmp_path_factory.mktemp("browser-traces") / "events.db"
    with CollectorThread(db_path=db) as collector:
        request_failed, job_failed, unrelated = asyncio.run(_send(collector.dsn))
        assert request_failed is not None
        assert job_failed is not None
        assert unrelated is not None
        collector.wait_for_events(3, timeout=10)
        yield Traced(collector, request_failed, job_failed, unrelated)


def click_and_wait(browser: WebDriver, link: WebElement) -> None:
    before = browser.current_url
    link.click()
    WebDriverWait(browser, WAIT_SECONDS).until(
        lambda b: (
            b.current_url != before and b.execute_script("return document.readyState") == "complete"
        )
    )


def test_following_other_events_in_this_trace_to_the_other_event(
    browser: WebDriver, traced: Traced
) -> None:
    browser.get(f"{traced.collector.url}/events/{traced.request_failed}/")
    section = browser.find_element(By.ID, "trace")
    heading = section.find_element(By.TAG_NAME, "h2").text
    assert heading == "Other events in this trace"
    links = section.find_elements(By.CSS_SELECTOR, "a.event-link")
    assert [link.text for link in links] == [traced.job_failed[:12]]
    assert "TimeoutError: settlement job timed out" in section.text
    assert traced.unrelated[:12] not in browser.find_element(By.TAG_NAME, "main").text

    click_and_wait(browser, links[0])
    assert browser.current_url.endswith(f"/events/{traced.job_failed}/")
    assert "settlement job timed out" in browser.find_element(By.TAG_NAME, "h1").text
    back = browser.find_element(By.ID, "trace").find_elements(By.CSS_SELECTOR, "a.event-link")
    assert [link.text for link in back] == [traced.request_failed[:12]]

    # The trace id leads to the trace's page: both events, newest first, and nothing else.
    click_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "#trace a.trace-id"))
    assert browser.title == f"Trace {TRACE} · errlink"
    listed = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "a.event-link")]
    assert listed == [traced.job_failed[:12], traced.request_failed[:12]]
