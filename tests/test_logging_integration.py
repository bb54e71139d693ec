from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

import errlink
from errlink._capture.scope import isolated_scope


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


def test_info_records_become_breadcrumbs_on_the_next_event(collector_thread: Any) -> None:
    errlink.init(collector_thread.dsn)
    log = logging.getLogger("checkout")
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
