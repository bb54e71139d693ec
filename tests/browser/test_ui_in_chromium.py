"""The collector's web UI as a person sees it, in headless Chromium: from the issue list to a
group to an event, what is shown, what is folded, that injected markup stays text, and that
pages use the window's width."""

from __future__ import annotations

from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.wait import WebDriverWait

from errlink.collector import CollectorThread
from tests.browser._sample_app import FLAKY_RUNS, INJECTED, LONG_WORD, RAISE_LINE

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
    assert len(titles) == 8
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
    Select(form.find_element(By.NAME, "level")).select_by_visible_text("debug")
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


# -- issue 19, item 7: the collector shows what it stored ------------------------------------


def open_issue(browser: WebDriver, collector: CollectorThread, title: str) -> None:
    browser.get(collector.ui_url)
    follow(browser, title)


def rows_of(table: WebElement, cells: int) -> list[list[str]]:
    return [
        [cell.text for cell in row.find_elements(By.CSS_SELECTOR, "th, td")][:cells]
        for row in table.find_elements(By.TAG_NAME, "tr")
    ]


def test_a_lambda_timeout_warning_shows_the_handlers_stack(
    browser: WebDriver, sample_collector: CollectorThread
) -> None:
    open_issue(browser, sample_collector, "nightly-report is about to time out")
    # The issue page shows its latest event in full: the stack errlink sent under `threads`.
    latest = browser.find_element(By.CSS_SELECTOR, ".issue-main .latest-event")
    assert latest.find_element(By.ID, "stacktrace").text == "Stack trace"
    thread = latest.find_element(By.CSS_SELECTOR, "details.thread")
    assert thread.get_attribute("open") is not None
    assert thread.find_element(By.CSS_SELECTOR, ".flag-current").text == "current"
    frame = frame_showing(browser, "lambda_timeout.<locals>.build_report")
    assert "in-app" in (frame.get_attribute("class") or "")
    line = frame.find_element(By.CSS_SELECTOR, "tr.context-line")
    assert line.is_displayed()
    assert "wait_until(warned" in line.text
    # pytest's own frames are library frames: folded, as under an exception.
    assert (
        thread.find_element(By.CSS_SELECTOR, "details.library-frames").get_attribute("open") is None
    )


def test_a_message_sent_with_attach_stacktrace_shows_where_it_was_sent(
    browser: WebDriver, sample_collector: CollectorThread
) -> None:
    open_issue(browser, sample_collector, "export finished with a long id")
    follow(browser, "latest event")
    assert browser.find_element(By.ID, "stacktrace").text == "Stack trace"
    [thread] = browser.find_elements(By.CSS_SELECTOR, "details.thread")
    assert thread.find_element(By.CSS_SELECTOR, "summary").text == "thread current"
    frame = frame_showing(browser, "export_report")
    assert 'client.capture_message(f"export finished' in (
        frame.find_element(By.CSS_SELECTOR, "tr.context-line").text
    )


def test_every_thread_of_a_dump_is_drawn_the_crashed_and_current_ones_open(
    browser: WebDriver, sample_collector: CollectorThread
) -> None:
    open_issue(browser, sample_collector, "watchdog: worker stuck")
    follow(browser, "latest event")
    assert browser.find_element(By.ID, "threads").text == "Threads (3)"
    threads = browser.find_elements(By.CSS_SELECTOR, "details.thread")
    heads = [t.find_element(By.CSS_SELECTOR, "summary.thread-head").text for t in threads]
    assert heads == ["MainThread id 1 current", "worker-7 id 7 crashed", "heartbeat id 9"]
    assert [t.get_attribute("open") is not None for t in threads] == [True, True, False]
    crashed = threads[1].find_element(By.CSS_SELECTOR, "tr.context-line")
    assert crashed.is_displayed()
    assert "lock.acquire()" in crashed.text
    idle = threads[2].find_element(By.CSS_SELECTOR, "tr.context-line")
    assert not idle.is_displayed()
    threads[2].find_element(By.TAG_NAME, "summary").click()
    WebDriverWait(browser, WAIT_SECONDS).until(lambda _: idle.is_displayed())


def test_the_issue_page_shows_its_latest_event_and_a_breakdown_of_its_tags(
    browser: WebDriver, sample_collector: CollectorThread
) -> None:
    open_issue(browser, sample_collector, "nightly sync timed out")
    latest = browser.find_element(By.CSS_SELECTOR, ".issue-main .latest-event")
    assert latest.find_element(By.CSS_SELECTOR, ".message-text").text == "nightly sync timed out"
    region, server = FLAKY_RUNS[-1]
    assert f"region: {region}" in latest.find_element(By.CSS_SELECTOR, ".tags").text
    assert f"server_name {server}" in latest.text

    side = browser.find_element(By.CSS_SELECTOR, "aside.issue-side")
    assert "Counted over the issue's 4 stored events." in side.text
    cards = {
        card.find_element(By.TAG_NAME, "h3").text: card
        for card in side.find_elements(By.CSS_SELECTOR, ".tag-card")
    }
    assert list(cards) == ["environment", "server_name", "region"]
    tables = {
        key: card.find_element(By.CSS_SELECTOR, "table.tag-values") for key, card in cards.items()
    }
    assert rows_of(tables["environment"], 3) == [["browser-test", "4", "100%"]]
    assert rows_of(tables["server_name"], 3) == [["worker-1", "3", "75%"], ["worker-2", "1", "25%"]]
    assert rows_of(tables["region"], 3) == [["eu", "3", "75%"], ["us", "1", "25%"]]
    meter = tables["region"].find_element(By.TAG_NAME, "meter")
    assert meter.is_displayed()
    assert (meter.get_attribute("value"), meter.get_attribute("max")) == ("3", "4")
    # A wide window puts the tags beside the event; the events table follows.
    main = browser.find_element(By.CSS_SELECTOR, ".issue-main")
    assert side.rect["x"] >= main.rect["x"] + main.rect["width"]
    events = browser.find_elements(By.CSS_SELECTOR, "table.events tbody tr")
    assert len(events) == len(FLAKY_RUNS)


def test_the_query_string_is_a_table_of_decoded_parameters(
    browser: WebDriver, sample_collector: CollectorThread
) -> None:
    open_issue(browser, sample_collector, "ValueError: <script>")
    follow(browser, "latest event")
    table = browser.find_element(By.CSS_SELECTOR, "table.query")
    assert rows_of(table, 2) == [
        ["term", "café au lait"],
        ["page", ""],
        ["token", "[Filtered]"],
        ["page", "2"],
        ["q", INJECTED],
    ]
    assert_injection_is_inert(browser)


def no_horizontal_scroll(browser: WebDriver) -> bool:
    return bool(
        browser.execute_script(
            "return document.documentElement.scrollWidth <= document.documentElement.clientWidth"
        )
    )


def test_pages_use_the_windows_width_and_wrap_long_lines(
    browser: WebDriver, sample_collector: CollectorThread
) -> None:
    browser.get(sample_collector.ui_url)
    follow(browser, "export finished with a long id")
    issue_url = browser.current_url
    follow(browser, "latest event")
    pages = [sample_collector.ui_url, issue_url, browser.current_url]
    try:
        for width in (1600, 700):
            browser.set_window_size(width, 1000)
            for url in pages:
                browser.get(url)
                main = browser.find_element(By.TAG_NAME, "main")
                window = browser.execute_script("return document.documentElement.clientWidth")
                assert main.rect["width"] == window, url
                assert no_horizontal_scroll(browser), url
            # The 3,000-character word wraps inside the message's box.
            message = browser.find_element(By.CSS_SELECTOR, ".message-text")
            assert LONG_WORD[:100] in message.text
            assert message.rect["x"] + message.rect["width"] <= main.rect["width"]
            assert message.rect["height"] > 100
        browser.set_window_size(1600, 1000)
        browser.get(pages[-1])
        assert browser.find_element(By.TAG_NAME, "main").rect["width"] > 1500
    finally:
        browser.set_window_size(1280, 1600)
