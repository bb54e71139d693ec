"""The collector's release health and monitors: stored from envelopes, summed, shown, served."""

from __future__ import annotations

import json
import time
from typing import Any

import aiohttp
import pytest

from errlink.collector import Collector


def _envelope(*items: tuple[str, dict[str, Any]]) -> bytes:
    lines = [b"{}"]
    for item_type, payload in items:
        body = json.dumps(payload).encode()
        lines += [json.dumps({"type": item_type, "length": len(body)}).encode(), body]
    return b"\n".join(lines) + b"\n"


async def _post(collector: Collector, *items: tuple[str, dict[str, Any]]) -> int:
    url = f"{collector.url}/api/1/envelope/?sentry_key={collector.public_key}"
    async with aiohttp.ClientSession() as http, http.post(url, data=_envelope(*items)) as answer:
        return answer.status


async def _get(collector: Collector, path: str) -> Any:
    async with aiohttp.ClientSession() as http, http.get(collector.url + path) as answer:
        assert answer.status == 200
        return await answer.json() if path.startswith("/api/") else await answer.text()


def _update(sid: str, seq: int, status: str, errors: int = 0) -> tuple[str, dict[str, Any]]:
    return (
        "session",
        {
            "sid": sid,
            "seq": seq,
            "init": seq == 0,
            "status": status,
            "errors": errors,
            "started": "2025-01-01T00:00:00Z",
            "attrs": {"release": "app@1", "environment": "prod"},
        },
    )


async def test_sessions_and_aggregates_sum_per_release(collector: Collector) -> None:
    aggregates = {
        "attrs": {"release": "app@1", "environment": "prod"},
        "aggregates": [
            {"started": "2025-01-01T00:00:00Z", "exited": 90, "errored": 3, "crashed": 2},
            {"started": "2025-01-01T00:01:00Z", "exited": 1},
        ],
    }
    assert await _post(collector, ("sessions", aggregates)) == 200
    assert await _post(collector, _update("a", 0, "ok"), _update("b", 0, "ok")) == 200
    # The update with the highest seq is the session's state, whatever the arrival order.
    assert await _post(collector, _update("a", 2, "crashed", 1), _update("a", 1, "ok", 1)) == 200
    assert await _post(collector, _update("b", 1, "exited", 2)) == 200

    (release,) = (await _get(collector, "/api/0/releases/"))["releases"]
    assert release == {
        "release": "app@1",
        "environment": "prod",
        "sessions": 98,
        "exited": 91,
        "errored": 4,
        "crashed": 3,
        "abnormal": 0,
        "crash_free_rate": pytest.approx(1 - 3 / 98),
    }
    page = await _get(collector, "/releases/")
    assert "app@1" in page
    assert "96.9%" in page
    assert 'href="/releases/"' in page
    raw = await _get(collector, "/api/0/sessions/")
    assert len(raw["sessions"]) == 5
    assert len(raw["aggregates"]) == 2


@pytest.mark.parametrize(
    ("item", "detail"),
    [
        (("session", {"status": "ok", "attrs": {"release": "1"}}), "needs a string 'sid'"),
        (("sessions", {"attrs": {"release": "1"}, "aggregates": [{"exited": 1}]}), "'started'"),
        (("check_in", {"check_in_id": "a", "monitor_slug": "m", "status": "done"}), "status"),
        (
            (
                "check_in",
                {
                    "check_in_id": "a",
                    "monitor_slug": "m",
                    "status": "ok",
                    "monitor_config": {"schedule": {"type": "crontab", "value": "* *"}},
                },
            ),
            "has 2 fields",
        ),
    ],
)
async def test_malformed_items_are_refused_with_a_reason(
    collector: Collector, item: tuple[str, dict[str, Any]], detail: str
) -> None:
    url = f"{collector.url}/api/1/envelope/?sentry_key={collector.public_key}"
    async with aiohttp.ClientSession() as http, http.post(url, data=_envelope(item)) as answer:
        assert answer.status == 400
        assert detail in (await answer.json())["detail"]


async def test_sessions_without_a_release_are_counted_not_stored(collector: Collector) -> None:
    # As Sentry does: SDKs send them when no release is configured; the envelope is fine.
    assert await _post(collector, ("session", {"sid": "x", "attrs": {}})) == 200
    assert await _post(collector, ("sessions", {"aggregates": []})) == 200
    assert collector.ignored_items == {"session": 1, "sessions": 1}


def _check_in(check_in_id: str, status: str, **more: Any) -> tuple[str, dict[str, Any]]:
    return (
        "check_in",
        {"check_in_id": check_in_id, "monitor_slug": "beat", "status": status, **more},
    )


async def test_monitors_show_runs_and_are_missed_once_overdue_past_their_margin(
    collector: Collector,
) -> None:
    config = {"schedule": {"type": "interval", "value": 5, "unit": "minute"}, "checkin_margin": 2}
    assert await _post(collector, _check_in("r1", "in_progress", monitor_config=config)) == 200
    assert await _post(collector, _check_in("r1", "ok", duration=1.25)) == 200
    assert await _post(collector, _check_in("r2", "in_progress")) == 200
    assert await _post(collector, _check_in("r2", "error", duration=0.5)) == 200

    now = time.time()
    (monitor,) = (await _get(collector, f"/api/0/monitors/?at={now}"))["monitors"]
    assert monitor["slug"] == "beat"
    assert monitor["status"] == "error"
    assert not monitor["missed"]
    assert [(r["status"], r["duration"]) for r in monitor["check_ins"]] == [
        ("error", 0.5),
        ("ok", 1.25),
    ]
    assert monitor["next_expected_at"] == pytest.approx(monitor["last_check_in_at"] + 300)
    # Due 5 minutes after the last check-in, with 2 minutes of margin: missed after 7.
    in_6 = monitor["last_check_in_at"] + 6 * 60
    in_8 = monitor["last_check_in_at"] + 8 * 60
    assert not (await _get(collector, f"/api/0/monitors/?at={in_6}"))["monitors"][0]["missed"]
    late = (await _get(collector, f"/api/0/monitors/?at={in_8}"))["monitors"][0]
    assert late["missed"]
    assert late["status"] == "missed"
    page = await _get(collector, f"/monitors/?at={in_8}")
    assert 'data-slug="beat"' in page
    assert "missed" in page
    assert "1.250 s" in page


async def test_a_crontab_monitor_is_due_at_its_next_slot(collector: Collector) -> None:
    config = {"schedule": {"type": "crontab", "value": "0 * * * *"}, "timezone": "Europe/Paris"}
    assert await _post(collector, _check_in("c1", "ok", monitor_config=config)) == 200
    (monitor,) = (await _get(collector, "/api/0/monitors/"))["monitors"]
    expected = monitor["next_expected_at"]
    assert expected % 3600 == 0
    assert 0 < expected - monitor["last_check_in_at"] <= 3600
    async with (
        aiohttp.ClientSession() as http,
        http.get(collector.url + "/api/0/monitors/?at=soon") as answer,
    ):
        assert answer.status == 400
