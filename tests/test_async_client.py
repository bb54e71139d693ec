"""AsyncClient: the public async API, end to end against the collector on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import Counter
from typing import Any

import pytest

import errlink
from errlink import AsyncClient
from tests._support.transports import MemoryTransport


def _raise_nested(depth: int, message: str) -> None:
    marker = depth  # noqa: F841 - a local the event should carry
    if depth == 0:
        raise ValueError(message)
    _raise_nested(depth - 1, message)


async def test_ten_thousand_events_arrive_exactly_once_with_fields(collector: Any) -> None:
    async with AsyncClient(collector.dsn, queue_size=10_000, release="r1") as client:
        ids = []
        for n in range(10_000):
            errlink.set_tag("n", n)  # scope tag, from the task's context
            ids.append(await client.capture_message(f"event {n}", level="warning"))
        assert None not in ids
        assert await client.flush(timeout=60) is True
        stats = client.stats
    assert (stats.captured, stats.sent, stats.pending, sum(stats.dropped.values())) == (
        10_000,
        10_000,
        0,
        0,
    )
    events = collector.events()
    assert len(events) == 10_000
    assert Counter(e["event_id"] for e in events) == Counter(ids)
    by_id = {e["event_id"]: e for e in events}
    sample = by_id[ids[1234]]
    assert sample["logentry"]["formatted"] == "event 1234"
    assert sample["level"] == "warning"
    assert sample["release"] == "r1"
    assert sample["tags"]["n"] == "1234"
    assert sample["platform"] == "python"
    assert sample["sdk"]["name"] == "errlink"


async def test_capture_exception_uses_the_exception_being_handled(collector: Any) -> None:
    async with AsyncClient(collector.dsn) as client:
        try:
            _raise_nested(3, "deep failure")
        except ValueError:
            event_id = await client.capture_exception(tags={"where": "checkout"})
        assert await client.flush(5)
    [event] = collector.events()
    assert event["event_id"] == event_id
    assert event["tags"]["where"] == "checkout"
    [value] = event["exception"]["values"]
    assert value["value"] == "deep failure"
    frames = value["stacktrace"]["frames"]
    assert [f["function"] for f in frames[-4:]] == ["_raise_nested"] * 4
    assert [f["vars"]["marker"] for f in frames[-4:]] == [3, 2, 1, 0]
    assert frames[-1]["in_app"] is True


async def test_no_exception_being_handled_returns_none(collector: Any) -> None:
    async with AsyncClient(collector.dsn) as client:
        assert await client.capture_exception() is None
        assert client.stats.captured == 0


async def test_aclose_leaves_nothing_behind(collector: Any) -> None:
    client = AsyncClient(collector.dsn, queue_size=2000)
    for n in range(500):
        await client.capture_message(f"m{n}")
    assert await client.aclose(timeout=30) is True
    assert len(collector.events()) == 500
    assert client.stats.pending == 0
    assert await client.aclose() is True  # idempotent
    assert await client.capture_message("after close") is None


async def test_disabled_client_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ERRLINK_DSN", raising=False)
    monkeypatch.delenv("SENTRY_DSN", raising=False)
    async with AsyncClient() as client:
        assert client.enabled is False
        assert await client.capture_message("nothing") is None
        try:
            raise RuntimeError
        except RuntimeError:
            assert await client.capture_exception() is None
        assert await client.flush(1) is True


def test_invalid_dsn_fails_at_construction() -> None:
    with pytest.raises(ValueError, match="invalid dsn"):
        AsyncClient("https://no-project-id@example.com")


async def test_an_unknown_level_does_not_raise_and_is_sent_as_an_error() -> None:
    transport = MemoryTransport()
    client = AsyncClient(transport=transport)
    assert await client.capture_message("x", level="loud") is not None
    await client.aclose()
    assert [event["level"] for event in transport.events()] == ["error"]


async def test_module_level_functions_reach_the_client_inside_async_with(collector: Any) -> None:
    async with AsyncClient(collector.dsn) as client:
        try:
            raise LookupError("via module function")
        except LookupError:
            event_id = errlink.capture_exception()
        assert event_id is not None
        assert await client.flush(5)
    [event] = collector.events()
    assert event["exception"]["values"][0]["value"] == "via module function"


async def test_the_same_exception_is_sent_once() -> None:
    transport = MemoryTransport()
    async with AsyncClient(transport=transport) as client:
        try:
            raise KeyError("twice")
        except KeyError as exc:
            first = await client.capture_exception()
            second = await client.capture_exception(exc)
        assert first is not None
        assert second is None
        await client.flush(5)
    assert len(transport.events()) == 1


async def test_ignore_errors_by_class_and_by_name() -> None:
    class Expected(Exception):
        pass

    transport = MemoryTransport()
    qualified = f"{Expected.__module__}.{Expected.__qualname__}"
    async with AsyncClient(
        transport=transport, ignore_errors=[KeyError, qualified, "TimeoutError"]
    ) as client:
        for exc in (KeyError("a"), Expected("b"), TimeoutError("c"), ValueError("d")):
            await client.capture_exception(exc)
        await client.flush(5)
    assert [e["exception"]["values"][0]["type"] for e in transport.events()] == ["ValueError"]


async def test_before_send_can_edit_drop_or_fail() -> None:
    def before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any] | None:
        message = event["logentry"]["formatted"]
        if message == "drop me":
            return None
        if message == "explode":
            raise RuntimeError("hook bug")
        event["tags"] = {"edited": "yes"}
        return event

    transport = MemoryTransport()
    async with AsyncClient(transport=transport, before_send=before_send) as client:
        assert await client.capture_message("keep me") is not None
        assert await client.capture_message("drop me") is None
        assert await client.capture_message("explode") is not None
        await client.flush(5)
        stats = client.stats
    events = {e["logentry"]["formatted"]: e for e in transport.events()}
    assert set(events) == {"keep me", "explode"}
    assert events["keep me"]["tags"] == {"edited": "yes"}
    assert stats.dropped == {"before_send": 1}
    assert transport.client_reports()[0]["discarded_events"] == [
        {"reason": "before_send", "category": "error", "quantity": 1}
    ]


async def test_coroutine_before_send_runs_in_the_sender() -> None:
    async def before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any] | None:
        await asyncio.sleep(0)
        if event["logentry"]["formatted"] == "drop me":
            return None
        event["extra"] = {"async_hook": True}
        return event

    transport = MemoryTransport()
    async with AsyncClient(transport=transport, before_send=before_send) as client:
        await client.capture_message("keep me")
        await client.capture_message("drop me")
        await client.flush(5)
        stats = client.stats
    [event] = transport.events()
    assert event["extra"] == {"async_hook": True}
    assert stats.dropped == {"before_send": 1}


async def test_sample_rate_zero_drops_and_reports_it() -> None:
    transport = MemoryTransport()
    async with AsyncClient(transport=transport, sample_rate=0.0) as client:
        for _ in range(5):
            assert await client.capture_message("sampled out") is None
        await client.flush(5)
    assert transport.events() == []
    assert transport.client_reports()[0]["discarded_events"] == [
        {"reason": "sample_rate", "category": "error", "quantity": 5}
    ]


async def test_a_client_used_from_a_second_loop_says_so(caplog: pytest.LogCaptureFixture) -> None:
    transport = MemoryTransport()
    client = AsyncClient(transport=transport)
    await client.capture_message("first loop")
    result: list[str | None] = []

    def other_thread() -> None:
        result.append(asyncio.run(client.capture_message("second loop")))

    with caplog.at_level(logging.ERROR, logger="errlink"):
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
    assert result == [None]
    assert "create one AsyncClient per event loop" in caplog.text
    await client.flush(5)
    assert [e["logentry"]["formatted"] for e in transport.events()] == ["first loop"]
    assert client.stats.dropped == {"internal_sdk_error": 1}
    await client.aclose()


async def test_concurrent_requests_keep_their_own_scope_in_events() -> None:
    transport = MemoryTransport()
    async with AsyncClient(transport=transport, queue_size=500) as client:

        async def request(n: int) -> None:
            with errlink.new_scope():
                errlink.set_tag("request", n)
                errlink.set_user({"id": str(n)})
                errlink.add_breadcrumb(f"start {n}")
                await asyncio.sleep(0.001 * (n % 7))
                await client.capture_message(f"request {n}")

        await asyncio.gather(*(request(n) for n in range(100)))
        await client.flush(5)
    events = transport.events()
    assert len(events) == 100
    for event in events:
        n = event["logentry"]["formatted"].split()[1]
        assert event["tags"]["request"] == n
        assert event["user"] == {"id": n}
        assert [c["message"] for c in event["breadcrumbs"]["values"]] == [f"start {n}"]


async def test_debug_prints_errlinks_own_log(capsys: pytest.CaptureFixture[str]) -> None:
    import errlink._log as core

    saved_level = logging.getLogger("errlink").level
    try:
        transport = MemoryTransport(status=400)
        async with AsyncClient(transport=transport, debug=True) as client:
            await client.capture_message("refused")
            await client.flush(5)
        assert "[errlink]" in capsys.readouterr().err
    finally:
        if core._debug_handler is not None:
            logging.getLogger("errlink").removeHandler(core._debug_handler)
            core._debug_handler = None
        logging.getLogger("errlink").setLevel(saved_level)
