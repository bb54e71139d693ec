"""Plain misuse of the setters and capture calls: what can be meant is taken, the rest is logged
once and ignored, and nothing raises into the application."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

import errlink
from errlink import AsyncClient
from errlink._capture.misuse import forget_warnings
from errlink._capture.scope import isolated_scope
from errlink.collector import Collector, CollectorThread
from errlink.sync import Client


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text for you")

    def __repr__(self) -> str:
        return "Unprintable()"


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    forget_warnings()
    with isolated_scope():
        yield
    forget_warnings()


def warnings_from_errlink(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "errlink" and record.levelno == logging.WARNING
    ]


async def test_stdlib_level_names_and_numbers_are_levels(collector: Collector) -> None:
    async with AsyncClient(collector.dsn) as client:
        for level in ("critical", "ERROR", "warn", "Info", logging.DEBUG, logging.WARNING):
            await client.capture_message(f"at {level}", level=level)  # type: ignore[arg-type]
        errlink.capture_message("module level", level="CRITICAL")
        errlink.set_level("WARN")
        await client.capture_message("scope level")
        assert await client.flush(10)
    events = await collector.wait_for_events(8)
    levels = {event["logentry"]["formatted"]: event["level"] for event in events}
    assert levels == {
        "at critical": "fatal",
        "at ERROR": "error",
        "at warn": "warning",
        "at Info": "info",
        "at 10": "debug",
        "at 30": "warning",
        "scope level": "warning",
        "module level": "fatal",
    }


async def test_an_unknown_level_is_logged_once_and_the_message_sent_as_an_error(
    collector: Collector, caplog: pytest.LogCaptureFixture
) -> None:
    async with AsyncClient(collector.dsn) as client:
        await client.capture_message("first", level="loud")
        await client.capture_message("second", level="loud")
        errlink.set_level("loud")  # ignored: the scope keeps no level
        await client.capture_message("third")
        assert await client.flush(10)
    events = await collector.wait_for_events(3)
    levels = {event["logentry"]["formatted"]: event["level"] for event in events}
    assert levels == {"first": "error", "second": "error", "third": "info"}
    assert warnings_from_errlink(caplog) == [
        "errlink.capture_message: expected a level (fatal, error, warning, info, debug, or a "
        "logging level name or number), not 'loud'; using 'error' (logged once)",
        "errlink.set_level: expected a level (fatal, error, warning, info, debug, or a "
        "logging level name or number), not 'loud'; ignored (logged once)",
    ]


async def test_an_unknown_level_does_not_raise_from_a_disabled_client() -> None:
    client = AsyncClient()  # no DSN: disabled
    assert await client.capture_message("x", level="loud") is None
    await client.aclose()


def test_no_level_raises_from_the_sync_client_or_the_module_functions(
    collector_thread: CollectorThread, caplog: pytest.LogCaptureFixture
) -> None:
    own = Client(collector_thread.dsn)
    try:
        own.capture_message("client critical", level="critical")
        own.capture_message("client loud", level="loud")
        errlink.init(
            collector_thread.dsn,
            logging_event_level=None,
            logging_breadcrumb_level=None,
            excepthook=False,
        )
        errlink.capture_message("module critical", level="critical")
        errlink.capture_message("module loud", level="loud")
        errlink.set_level("loud")  # ignored: the scope keeps no level
        errlink.capture_message("after a loud scope level")
        errlink.set_level("critical")
        errlink.capture_message("after a critical scope level")
        assert own.flush(10)
        assert errlink.flush(10)
    finally:
        own.close(timeout=1)
        errlink.close(timeout=1)
    events = collector_thread.wait_for_events(6)
    levels = {event["logentry"]["formatted"]: event["level"] for event in events}
    assert levels == {
        "client critical": "fatal",
        "client loud": "error",
        "module critical": "fatal",
        "module loud": "error",
        "after a loud scope level": "info",
        "after a critical scope level": "fatal",
    }
    assert [message.split(":")[0] for message in warnings_from_errlink(caplog)] == [
        "errlink.capture_message",
        "errlink.set_level",
    ]


async def test_setters_take_what_can_be_meant(collector: Collector) -> None:
    async with AsyncClient(collector.dsn, send_default_pii=True) as client:
        errlink.set_user("alice")
        errlink.set_context("db", "primary")
        errlink.set_fingerprint(5)
        errlink.set_transaction(42)  # type: ignore[arg-type]
        errlink.set_tag(7, 8)  # type: ignore[arg-type]
        errlink.set_extra(("a", 1), "tuple key")  # type: ignore[arg-type]
        await client.capture_message("first")
        errlink.set_user(1001)
        errlink.set_fingerprint("checkout")
        await client.capture_message("second")
        assert await client.flush(10)
    first, second = sorted(
        await collector.wait_for_events(2), key=lambda event: event["logentry"]["formatted"]
    )
    assert first["user"] == {"id": "alice"}
    assert first["contexts"]["db"] == {"value": "primary"}
    assert first["fingerprint"] == ["5"]
    assert first["transaction"] == "42"
    assert first["tags"]["7"] == "8"
    assert first["extra"] == {"('a', 1)": "tuple key"}
    assert second["user"] == {"id": "1001"}
    assert second["fingerprint"] == ["checkout"]


async def test_setters_ignore_nonsense_log_once_and_never_raise(
    collector: Collector, caplog: pytest.LogCaptureFixture
) -> None:
    async with AsyncClient(collector.dsn) as client:
        errlink.set_user({"id": "42"})
        errlink.set_fingerprint(["kept"])
        errlink.set_transaction("/kept")
        errlink.set_tags({"kept": "yes"})
        nonsense: Any = [1, 2]
        errlink.set_user(nonsense)
        errlink.set_user(nonsense)
        errlink.set_tags(nonsense)
        errlink.remove_tag(nonsense)
        errlink.set_context("order", nonsense)  # kept as {"value": [1, 2]}
        errlink.set_fingerprint([Unprintable()])
        errlink.set_transaction(Unprintable())  # type: ignore[arg-type]
        errlink.add_breadcrumb("paid", level="loud", data=nonsense, hint=nonsense)
        await client.capture_message("after the nonsense")
        assert await client.flush(10)
    (event,) = await collector.wait_for_events(1)
    assert event["user"] == {"id": "42"}
    assert event["fingerprint"] == ["kept"]
    assert event["transaction"] == "/kept"
    assert event["tags"]["kept"] == "yes"
    assert event["contexts"]["order"] == {"value": [1, 2]}
    (crumb,) = event["breadcrumbs"]["values"]
    assert (crumb["message"], crumb["level"]) == ("paid", "info")
    assert "data" not in crumb
    logged = warnings_from_errlink(caplog)
    assert [message.split(":")[0] for message in logged] == [
        "errlink.set_user",
        "errlink.set_tags",
        "errlink.set_fingerprint",
        "errlink.set_transaction",
        "errlink.add_breadcrumb",
    ]
    assert logged[0] == "errlink.set_user: expected a mapping, not [1, 2]; ignored (logged once)"


async def test_a_transaction_or_fingerprint_whose_str_raises_drops_only_that_field(
    collector: Collector,
) -> None:
    async with AsyncClient(collector.dsn) as client:
        try:
            raise KeyError("sku")
        except KeyError as exc:
            event_id = await client.capture_exception(
                exc, transaction=Unprintable(), fingerprint=["cart", Unprintable()], logger="shop"
            )
        assert event_id is not None
        assert await client.flush(10)
        assert client.stats.dropped == {}
    (event,) = await collector.wait_for_events(1)
    assert event["exception"]["values"][0]["type"] == "KeyError"
    assert event["logger"] == "shop"
    assert "transaction" not in event
    assert "fingerprint" not in event
    assert event["_meta"]["transaction"] == {
        "": {"err": [["invalid_data", {"reason": "str() of the Unprintable raised"}]]}
    }
    assert event["_meta"]["fingerprint"] == {
        "": {"err": [["invalid_data", {"reason": "a part of the list is not text"}]]}
    }
