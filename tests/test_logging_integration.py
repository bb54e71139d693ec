from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

import errlink
from errlink._capture.binding import bind_client
from errlink._capture.scope import isolated_scope
from errlink.integrations.logging import EventHandler


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    with isolated_scope():
        yield
    errlink.close(timeout=1)


def test_logger_exception_becomes_an_event_with_the_traceback(collector_thread: Any) -> None:
    errlink.init(collector_thread.dsn)
    log = logging.getLogger("shop.payments")
    try:
        {}["card"]
    except KeyError:
        log.exception("charge failed for %s", "order-7", extra={"order_id": 7})
    assert errlink.flush(5)
    [event] = collector_thread.events()
    assert event["logger"] == "shop.payments"
    assert event["level"] == "error"
    assert event["logentry"] == {
        "message": "charge failed for %s",
        "params": ["order-7"],
        "formatted": "charge failed for order-7",
    }
    [value] = event["exception"]["values"]
    assert value["type"] == "KeyError"
    assert value["mechanism"]["type"] == "logging"
    assert value["stacktrace"]["frames"][-1]["context_line"].strip() == '{}["card"]'
    assert event["extra"]["order_id"] == 7


def test_error_without_exception_is_a_message_event(collector_thread: Any) -> None:
    errlink.init(collector_thread.dsn)
    logging.getLogger("jobs").error("queue %s is full", "mail")
    assert errlink.flush(5)
    [event] = collector_thread.events()
    assert "exception" not in event
    assert event["logentry"]["formatted"] == "queue mail is full"
    assert event["logentry"]["message"] == "queue %s is full"


@pytest.fixture
def info_logger() -> Iterator[logging.Logger]:
    """The application's own configuration: the "checkout" logger lets INFO through."""
    log = logging.getLogger("checkout")
    log.setLevel(logging.INFO)
    yield log
    log.setLevel(logging.NOTSET)


def test_info_records_become_breadcrumbs_on_the_next_event(
    collector_thread: Any, info_logger: logging.Logger
) -> None:
    errlink.init(collector_thread.dsn)
    log = info_logger
    log.debug("too low to keep")
    log.info("cart loaded with %d items", 3)
    log.warning("stock low", extra={"sku": "A-1"})
    errlink.capture_message("boom", level="error")
    assert errlink.flush(5)
    [event] = collector_thread.events()
    crumbs = event["breadcrumbs"]["values"]
    assert [(c["category"], c["level"], c["message"]) for c in crumbs] == [
        ("checkout", "info", "cart loaded with 3 items"),
        ("checkout", "warning", "stock low"),
    ]
    assert crumbs[1]["data"] == {"sku": "A-1"}


def test_errlinks_own_records_never_loop(collector_thread: Any) -> None:
    def noisy_before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
        logging.getLogger("app").error("logged from inside before_send")
        return event

    errlink.init(collector_thread.dsn, before_send=noisy_before_send)
    logging.getLogger("errlink").error("errlink talking about itself")
    logging.getLogger("errlink.transport").error("and its children")
    logging.getLogger("app").error("the one real error")
    assert errlink.flush(5)
    events = collector_thread.events()
    assert [e["logentry"]["formatted"] for e in events] == ["the one real error"]


def test_levels_are_configurable_and_validated(collector_thread: Any) -> None:
    errlink.init(collector_thread.dsn, logging_event_level="WARNING", logging_breadcrumb_level=None)
    logging.getLogger("x").info("not a breadcrumb")
    logging.getLogger("x").warning("now an event")
    assert errlink.flush(5)
    [event] = collector_thread.events()
    assert event["level"] == "warning"
    assert "breadcrumbs" not in event
    with pytest.raises(ValueError, match="logging_event_level"):
        errlink.init(collector_thread.dsn, logging_event_level="LOUD")


def test_init_adds_no_handler_and_changes_no_level(collector_thread: Any) -> None:
    loggers = [logging.getLogger(), logging.getLogger("checkout"), logging.getLogger("werkzeug")]
    before = [(lg.level, lg.handlers[:]) for lg in loggers]
    errlink.init(collector_thread.dsn)
    assert [(lg.level, lg.handlers[:]) for lg in loggers] == before
    errlink.close(timeout=1)
    assert [(lg.level, lg.handlers[:]) for lg in loggers] == before


def test_only_what_the_logging_configuration_lets_through_is_captured(
    collector_thread: Any, info_logger: logging.Logger
) -> None:
    errlink.init(collector_thread.dsn)
    quiet = logging.getLogger("quiet.library")
    quiet.setLevel(logging.CRITICAL)
    filtered = logging.getLogger("filtered")
    filtered.addFilter(lambda record: "secret" not in record.getMessage())
    try:
        quiet.error("below the logger's own level")
        filtered.error("a secret the filter drops")
        info_logger.info("let through")
        info_logger.error("the event")
    finally:
        quiet.setLevel(logging.NOTSET)
        filtered.filters.clear()
    assert errlink.flush(5)
    [event] = collector_thread.events()
    assert event["logentry"]["formatted"] == "the event"
    assert [c["message"] for c in event["breadcrumbs"]["values"]] == ["let through"]


def test_loggers_that_do_not_propagate_are_captured_too(collector_thread: Any) -> None:
    errlink.init(collector_thread.dsn)
    isolated = logging.getLogger("isolated")
    isolated.propagate = False
    try:
        isolated.error("never reaches the root logger")
    finally:
        isolated.propagate = True
    assert errlink.flush(5)
    [event] = collector_thread.events()
    assert event["logger"] == "isolated"


def test_a_record_an_event_handler_received_is_captured_once(collector_thread: Any) -> None:
    handler = EventHandler(event_level=logging.WARNING)
    log = logging.getLogger("routed")
    log.addHandler(handler)
    try:
        errlink.init(collector_thread.dsn)
        log.warning("an event through the handler's own level")
        log.error("one event, not two")
    finally:
        log.removeHandler(handler)
    assert errlink.flush(5)
    messages = [e["logentry"]["formatted"] for e in collector_thread.events()]
    assert sorted(messages) == ["an event through the handler's own level", "one event, not two"]


def test_close_unhooks_logging(collector_thread: Any) -> None:
    original = logging.Logger.callHandlers
    errlink.init(collector_thread.dsn)
    assert logging.Logger.callHandlers is not original
    errlink.close(timeout=1)
    assert logging.Logger.callHandlers is original
    client = errlink.Client(collector_thread.dsn)
    with bind_client(client.core):
        logging.getLogger("after").error("not captured: init's hook is gone")
        client.capture_message("the only event")
    assert client.flush(5)
    assert [e["logentry"]["formatted"] for e in collector_thread.events()] == ["the only event"]
    client.close()


def test_a_wrapper_added_after_init_survives_close(collector_thread: Any) -> None:
    errlink.init(collector_thread.dsn)
    ours = logging.Logger.callHandlers
    seen: list[str] = []

    def theirs(self: logging.Logger, record: logging.LogRecord) -> None:
        seen.append(record.getMessage())
        ours(self, record)

    logging.Logger.callHandlers = theirs  # type: ignore[method-assign]
    try:
        logging.getLogger("app").error("while both are on")
        errlink.close(timeout=5)
        assert logging.Logger.callHandlers is theirs
        logging.getLogger("app").error("after close")
        assert seen == ["while both are on", "after close"]
        assert [e["logentry"]["formatted"] for e in collector_thread.events()] == [
            "while both are on"
        ]
        errlink.init(collector_thread.dsn)  # hooks again through the wrapper left in place
        logging.getLogger("app").error("hooked again")
        assert errlink.flush(5)
        assert len(collector_thread.events()) == 2
    finally:
        errlink.close(timeout=1)
        logging.Logger.callHandlers = ours  # type: ignore[method-assign]
        errlink.init(collector_thread.dsn)
        errlink.close(timeout=1)  # restores the original, now that ours is on top again
