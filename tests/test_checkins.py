"""Cron monitors: `errlink.monitor` and `errlink.capture_checkin`, what they send and refuse."""

from __future__ import annotations

import asyncio
import datetime
import json
import urllib.request
from typing import Any

import pytest

import errlink
from errlink._wire.crontab import parse_crontab
from errlink.collector import Collector
from tests._support.transports import MemoryTransport

DSN = "http://key@127.0.0.1:9/1"


def _check_ins(transport: MemoryTransport) -> list[dict[str, Any]]:
    return [i.json() for env in transport.envelopes for i in env.items if i.type == "check_in"]


async def test_a_monitored_coroutine_sends_in_progress_then_ok_under_one_id() -> None:
    transport = MemoryTransport()
    async with errlink.AsyncClient(DSN, transport=transport, release="9") as client:

        @errlink.monitor("nightly", schedule="0 3 * * *", checkin_margin=5, max_runtime=30)
        async def nightly() -> str:
            await asyncio.sleep(0.02)
            return "done"

        assert await nightly() == "done"
        await client.flush(5)
    start, end = _check_ins(transport)
    assert (start["status"], end["status"]) == ("in_progress", "ok")
    assert start["check_in_id"] == end["check_in_id"]
    assert len(end["check_in_id"]) == 32
    assert "duration" not in start
    assert end["duration"] >= 0.02
    assert end["monitor_config"] == {
        "schedule": {"type": "crontab", "value": "0 3 * * *"},
        "checkin_margin": 5,
        "max_runtime": 30,
    }
    assert end["monitor_slug"] == "nightly"
    assert end["release"] == "9"


async def test_a_cancelled_monitored_coroutine_sends_error_not_a_hang() -> None:
    transport = MemoryTransport()
    async with errlink.AsyncClient(DSN, transport=transport) as client:
        started = asyncio.Event()

        @errlink.monitor("slow-job")
        async def slow() -> None:
            started.set()
            await asyncio.sleep(3600)

        task = asyncio.ensure_future(slow())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await client.flush(5)
    assert [c["status"] for c in _check_ins(transport)] == ["in_progress", "error"]


def test_sync_decorator_and_context_manager_report_errors() -> None:
    transport = MemoryTransport()
    with errlink.Client(DSN, transport=transport) as client, errlink.new_scope():
        from errlink._capture.binding import bind_client

        with bind_client(client.core):

            @errlink.monitor("sync-job", schedule=(10, "minute"))
            def job(fail: bool) -> None:
                if fail:
                    raise RuntimeError("job failed")

            job(False)
            with pytest.raises(RuntimeError):
                job(True)
            paris = errlink.monitor("block", schedule="30 2 * * *", timezone="Europe/Paris")
            with pytest.raises(KeyError), paris:
                raise KeyError("inside")
            client.flush(5)
    sent = _check_ins(transport)
    assert [(c["monitor_slug"], c["status"]) for c in sent] == [
        ("sync-job", "in_progress"),
        ("sync-job", "ok"),
        ("sync-job", "in_progress"),
        ("sync-job", "error"),
        ("block", "in_progress"),
        ("block", "error"),
    ]
    assert sent[0]["monitor_config"]["schedule"] == {
        "type": "interval",
        "value": 10,
        "unit": "minute",
    }


async def test_capture_checkin_by_hand() -> None:
    transport = MemoryTransport()
    async with errlink.AsyncClient(DSN, transport=transport) as client:
        check_in_id = errlink.capture_checkin("by-hand", "in_progress")
        assert check_in_id is not None
        errlink.capture_checkin(
            "by-hand",
            "ok",
            check_in_id=check_in_id,
            duration=1.5,
            schedule=datetime.timedelta(hours=2),
        )
        await client.flush(5)
    first, second = _check_ins(transport)
    assert first["check_in_id"] == second["check_in_id"] == check_in_id
    assert second["duration"] == 1.5
    assert second["monitor_config"]["schedule"] == {"type": "interval", "value": 2, "unit": "hour"}


def test_without_a_client_nothing_is_sent_and_nothing_raises() -> None:
    errlink.close()
    assert errlink.capture_checkin("lonely") is None

    @errlink.monitor("lonely")
    def job() -> int:
        return 1

    assert job() == 1


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"monitor_slug": "Bad Slug"}, ValueError, "monitor slug 'Bad Slug' is not valid"),
        ({"monitor_slug": "x" * 51}, ValueError, "1 to 50"),
        ({"monitor_slug": "ok", "schedule": "* * *"}, ValueError, "has 3 fields; it needs 5"),
        ({"monitor_slug": "ok", "schedule": "0 25 * * *"}, ValueError, "hour field '25'"),
        ({"monitor_slug": "ok", "schedule": "*/0 * * * *"}, ValueError, "step '0'"),
        (
            {"monitor_slug": "ok", "schedule": "* * * * *", "checkin_margin": -1},
            ValueError,
            "checkin_margin must be 0 or more",
        ),
        ({"monitor_slug": "ok", "schedule": (0, "minute")}, ValueError, "1 or more"),
        ({"monitor_slug": "ok", "schedule": (1, "fortnight")}, ValueError, "unit must be"),
        ({"monitor_slug": "ok", "schedule": 5}, TypeError, "schedule must be"),
        (
            {"monitor_slug": "ok", "schedule": "* * * * *", "timezone": "Mars/Base"},
            ValueError,
            "tz database",
        ),
        ({"monitor_slug": "ok", "max_runtime": 5}, ValueError, "give schedule= too"),
    ],
)
def test_bad_input_fails_where_the_monitor_is_declared(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    slug = kwargs.pop("monitor_slug")
    with pytest.raises(error, match=message.replace("(", r"\(").replace("*", r"\*")):
        errlink.monitor(slug, **kwargs)
    with pytest.raises(error):
        errlink.capture_checkin(slug, **kwargs)
    with pytest.raises(ValueError, match="status"):
        errlink.capture_checkin("ok", "done")


def test_crontab_names_lists_ranges_and_next_slot() -> None:
    crontab = parse_crontab("0,30 9-17/4 * jan-mar MON-fri")
    assert sorted(crontab.minutes) == [0, 30]
    assert sorted(crontab.hours) == [9, 13, 17]
    assert sorted(crontab.months) == [1, 2, 3]
    assert sorted(crontab.weekdays) == [1, 2, 3, 4, 5]
    saturday = datetime.datetime(2025, 1, 4, 12, 0, tzinfo=datetime.timezone.utc)
    assert crontab.next_after(saturday) == saturday.replace(day=6, hour=9, minute=0)
    assert sorted(parse_crontab("* * * * 7").weekdays) == [0]


async def test_a_429_for_monitor_stops_check_ins_and_events_keep_flowing(
    collector: Collector,
) -> None:
    collector.set_faults(limit_categories=("monitor",), retry_after=60)
    async with errlink.AsyncClient(collector.dsn) as client:
        errlink.capture_checkin("limited", "ok")
        await client.flush(5)  # answered 429: the client now limits the category
        for _ in range(3):
            errlink.capture_checkin("limited", "ok")
        await client.capture_message("still flowing")
        await client.flush(5)
        dropped = client.stats.dropped
    events = await collector.wait_for_events(1)
    assert [e["logentry"]["formatted"] for e in events] == ["still flowing"]
    assert collector.request_statuses[429] == 1  # the first check-in only: the rest never left
    assert dropped.get("ratelimit_backoff", 0) >= 3
    assert collector.discarded_totals().get(("ratelimit_backoff", "monitor"), 0) >= 3
    monitors = await asyncio.to_thread(_get_json, collector.url + "/api/0/monitors/")
    assert monitors["monitors"] == []


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url) as answer:
        return json.loads(answer.read())
