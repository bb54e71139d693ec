"""The collector's web UI as a person sees it, in headless Chromium: from the issue list to a
group to an event, what is shown, what is folded, and that injected markup stays text."""

from __future__ import annotations

from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.wait import WebDriverWait

from errlink.collector import CollectorThread
from tests.browser._sample_app import INJECTED, RAISE_LINE

WAIT_SECONDS = 20


def follow(browser: WebDriver, link_text: str) -> None:
    """Click the link showing `link_text` and wait for the next page to load."""
    link = browser.find_element(By.PARTIAL_LINK_TEXT, link_text)
    before = browser.current_url
    link.click()
    WebDriverWait(browser, WAIT_SECONDS).until(
        lambda b: (
            b.current_url != before and b.execute_script("return document.readyState") == "complete"
        )
    )


def submit(browser: WebDriver, form: WebElement) -> None:
    before = browser.current_url
    form.submit()
    WebDriverWait(browser, WAIT_SECONDS).until(
        lambda b: (
            b.current_url != before and b.execute_script("return document.readyState") == "complete"
        )
    )


def issue_titles(browser: WebDriver) -> list[str]:
    return [e.text for e in browser.find_elements(By.CSS_SELECTOR, "table.groups .group-title")]


def frame_showing(browser: WebDriver, function: str) -> WebElement:
    for frame in browser.find_elements(By.CSS_SELECTOR, "details.frame"):
        summary = frame.find_element(By.TAG_NAME, "summary").get_attribute("textContent") or ""
        if summary.rstrip().split(" in ", 1)[-1].startswith(function + ","):
            return frame
    raise AssertionError(f"no frame of {function}()")


def test_from_the_list_to_an_event_with_its_exception_and_highlighted_line(
    browser: WebDriver, sample_collector: CollectorThread
) -> None:
    browser.get(sample_collector.ui_url)
    assert browser.title == "Issues · errlink"
    titles = issue_titles(browser)
    assert len(titles) == 4
    assert "CheckoutError: checkout failed for order 7" in titles

    follow(browser, "CheckoutError: checkout failed for order 7")
    heading = browser.find_element(By.TAG_NAME, "h1").text
    assert heading.endswith("CheckoutError: checkout failed for order 7")
    assert "browser-test: 1" in browser.find_element(By.CSS_SELECTOR, ".stats").text

    follow(browser, "latest event")
    types = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".exception-type")]
    values = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".exception-value")]
    assert types == ["ConnectionError", "tests.browser._sample_app.CheckoutError"]
    assert values == ["payment gateway timed out", "checkout failed for order 7"]
    assert (
        "direct cause of the following exception"
        in browser.find_element(By.CSS_SELECTOR, ".chain-note").text
    )

    frame = frame_showing(browser, "charge")
    assert frame.get_attribute("open") is not None  # the application's own frames are open
    line = frame.find_element(By.CSS_SELECTOR, "tr.context-line")
    assert line.is_displayed()
    assert RAISE_LINE in line.text
    plain = frame.find_element(By.CSS_SELECTOR, "table.source tr:not(.context-line)")
    highlight = line.value_of_css_property("background-color")
    assert highlight != plain.value_of_css_property("background-color")
    assert highlight not in ("rgba(0, 0, 0, 0)", "transparent")
    # The raising frame shows its locals; secrets arrive scrubbed.
    locals_text = frame.find_element(By.CSS_SELECTOR, "details.locals").text
    assert "gateway sandbox-eu" in locals_text
    assert "card_number" in locals_text
    assert "4111" not in locals_text


def test_a_logged_error_shows_its_breadcrumbs_in_order(
    browser: WebDriver, sample_collector: CollectorThread
) -> None:
    browser.get(sample_collector.ui_url)
    follow(browser, "could not reserve stock for sku-42")
    follow(browser, "latest event")
    crumbs = browser.find_elements(By.CSS_SELECTOR, "ol.timeline li")
    assert [c.find_element(By.CSS_SELECTOR, ".crumb-message").text for c in crumbs] == [
        "cart loaded with 3 items",
        "inventory low for sku-42",
    ]
    assert crumbs[1].find_element(By.CSS_SELECTOR, ".level").text == "warning"
    assert crumbs[0].find_element(By.CSS_SELECTOR, ".crumb-category").text == "shop.cart"


def test_library_frames_are_folded_until_opened(
    browser: WebDriver, sample_collector: CollectorThread
) -> None:
    browser.get(sample_collector.ui_url)
    follow(browser, "JSONDecodeError")
    follow(browser, "latest event")
    app_frame = frame_showing(browser, "import_settings")
    assert "json.loads" in app_frame.find_element(By.CSS_SELECTOR, "tr.context-line").text
    folded = browser.find_element(By.CSS_SELECTOR, "details.library-frames")
    assert folded.get_attribute("open") is None
    assert "library frames" in folded.find_element(By.TAG_NAME, "summary").text
    inner_line = folded.find_element(By.CSS_SELECTOR, "tr.context-line")
    assert not inner_line.is_displayed()
    folded.find_element(By.TAG_NAME, "summary").click()
    first_library_frame = folded.find_element(By.CSS_SELECTOR, "details.frame")
    first_library_frame.find_element(By.TAG_NAME, "summary").click()
    WebDriverWait(browser, WAIT_SECONDS).until(lambda _: inner_line.is_displayed())


def assert_injection_is_inert(browser: WebDriver) -> None:
    assert browser.execute_script("return window.__pwned") is None
    assert browser.title != "pwned"
    assert browser.find_elements(By.XPATH, "//b[text()='bold?']") == []
    try:
        alert = browser.switch_to.alert
    except NoAlertPresentException:
        pass
    else:
        raise AssertionError(f"an alert opened: {alert.text}")


def test_injected_markup_shows_as_text_and_never_runs(
    browser: WebDriver, sample_collector: CollectorThread
) -> None:
    browser.get(sample_collector.ui_url)
    hostile = f"ValueError: {INJECTED}"
    assert hostile in issue_titles(browser)
    assert_injection_is_inert(browser)

    follow(browser, "ValueError: <script>")
    assert browser.find_element(By.TAG_NAME, "h1").text.endswith(hostile)
    assert_injection_is_inert(browser)

    follow(browser, "latest event")
    assert_injection_is_inert(browser)
    page_text = browser.find_element(By.TAG_NAME, "body").text
    assert INJECTED in browser.find_element(By.CSS_SELECTOR, ".exception-value").text
    assert f"note: {INJECTED}" in page_text  # the tag
    assert INJECTED in browser.find_element(By.CSS_SELECTOR, "ol.timeline").text
    assert page_text.count(INJECTED) >= 5  # title, value, tag, user, breadcrumb, request...


def test_filters_and_search_from_the_form(
    browser: WebDriver, sample_collector: CollectorThread
) -> None:
    browser.get(sample_collector.ui_url)
    form = browser.find_element(By.CSS_SELECTOR, "form.filters")
    form.find_element(By.NAME, "q").send_keys("stock")
    submit(browser, form)
    assert issue_titles(browser) == ["could not reserve stock for sku-42"]

    form = browser.find_element(By.CSS_SELECTOR, "form.filters")
    search = form.find_element(By.NAME, "q")
    search.clear()
    Select(form.find_element(By.NAME, "environment")).select_by_visible_text("browser-test")
    Select(form.find_element(By.NAME, "level")).select_by_visible_text("warning")
    submit(browser, form)
    assert issue_titles(browser) == []
    assert "No issue matches" in browser.find_element(By.TAG_NAME, "main").text

    form = browser.find_element(By.CSS_SELECTOR, "form.filters")
    Select(form.find_element(By.NAME, "level")).select_by_visible_text("error")
    search = form.find_element(By.NAME, "q")
    search.send_keys(INJECTED)
    submit(browser, form)
    assert issue_titles(browser) == [f"ValueError: {INJECTED}"]
    assert browser.find_element(By.NAME, "q").get_attribute("value") == INJECTED
    assert_injection_is_inert(browser)
