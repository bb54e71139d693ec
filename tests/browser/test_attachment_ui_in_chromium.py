"""Attachments and feedback on the collector's event page, in headless Chromium: listed with a
download link and the feedback shown; and an attachment named ``<script>.html`` holding HTML
with a script is saved as a file when opened, never rendered, so its script never runs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.wait import WebDriverWait

from errlink import Attachment
from errlink.collector import CollectorThread
from errlink.sync import Client

WAIT_SECONDS = 20
HOSTILE_NAME = "<script>.html"
HOSTILE_HTML = (
    b"<!doctype html><title>rendered</title>"
    b"<script>document.title = 'script ran'; alert('script ran')</script>"
    b"<p id='inside'>attachment body</p>"
)


@pytest.fixture(scope="module")
def reported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CollectorThread, str]]:
    """A collector holding one event with two attachments and a person's feedback on it."""
    db: Path = tmp_path_factory.mktemp("attachments") / "events.db"
    with CollectorThread(db_path=db) as collector:
        with Client(collector.dsn) as client:
            try:
                raise LookupError("order 7 not found")
            except LookupError:
                event_id = client.capture_exception(
                    attachments=[
                        Attachment(HOSTILE_HTML, filename=HOSTILE_NAME, content_type="text/html"),
                        Attachment(b"a,b\n1,2\n", filename="rows.csv"),
                    ]
                )
            assert event_id is not None
            client.capture_feedback(
                "I clicked <b>pay</b> twice", name="Ann", associated_event_id=event_id
            )
            assert client.flush(30)
        yield collector, event_id


def test_the_event_page_lists_attachments_and_feedback(
    browser: WebDriver, reported: tuple[CollectorThread, str]
) -> None:
    collector, event_id = reported
    browser.get(f"{collector.ui_url.rstrip('/')}/events/{event_id}/")
    links = browser.find_elements(By.CSS_SELECTOR, "table.attachments a.attachment")
    assert [link.text for link in links] == [HOSTILE_NAME, "rows.csv"]
    assert all("/download/" in (link.get_attribute("href") or "") for link in links)
    cells = browser.find_element(By.CSS_SELECTOR, "table.attachments").text
    assert "text/html" in cells
    assert "text/csv" in cells
    feedback = browser.find_element(By.CSS_SELECTOR, "ul.feedback .feedback-message").text
    assert feedback == "I clicked <b>pay</b> twice"  # shown as text, not markup
    assert "Ann" in browser.find_element(By.CSS_SELECTOR, "ul.feedback").text


def test_an_html_attachment_downloads_and_never_renders(
    browser: WebDriver, reported: tuple[CollectorThread, str], tmp_path: Path
) -> None:
    collector, event_id = reported
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    browser.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    event_page = f"{collector.ui_url.rstrip('/')}/events/{event_id}/"
    browser.get(event_page)
    link = browser.find_element(By.LINK_TEXT, HOSTILE_NAME)
    href = link.get_attribute("href")
    assert href is not None
    # The headers as the browser itself receives them (the page's own policy forbids fetch()).
    browser.execute_cdp_cmd("Page.setBypassCSP", {"enabled": True})
    browser.get(event_page)
    headers = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0]).then(r => done({"
        "  type: r.headers.get('content-type'),"
        "  disposition: r.headers.get('content-disposition'),"
        "  nosniff: r.headers.get('x-content-type-options'),"
        "  csp: r.headers.get('content-security-policy')}));",
        href,
    )
    assert headers["type"] == "text/html"
    assert headers["disposition"].startswith("attachment;")
    assert headers["nosniff"] == "nosniff"
    assert headers["csp"].startswith("sandbox")
    browser.execute_cdp_cmd("Page.setBypassCSP", {"enabled": False})
    browser.get(event_page)

    browser.get(href)  # typed into the address bar: still a download, not a page

    def saved(_: WebDriver) -> list[Path]:
        return [p for p in downloads.iterdir() if not p.name.endswith(".crdownload")]

    [file] = WebDriverWait(browser, WAIT_SECONDS).until(saved)
    assert file.read_bytes() == HOSTILE_HTML
    assert file.suffix == ".html"
    # The browser never left the event page, and nothing of the attachment ran or showed.
    assert browser.current_url == event_page
    assert browser.title != "script ran"
    assert browser.title != "rendered"
    assert browser.find_elements(By.ID, "inside") == []
    assert os.path.basename(file.name) != HOSTILE_NAME  # the OS-unsafe name was made safe
