"""fit_event: the whole encoded event under a byte cap, with what was cut said in `_meta`."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from sentry_relay.processing import StoreNormalizer

from errlink._delivery.limits import DEFAULT_MAX_EVENT_BYTES, fit_event


def _stdlib_encode(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


ENCODERS: list[Callable[[Any], bytes]] = [orjson.dumps, _stdlib_encode]
REMOVED = {"": {"rem": [["!limit", "x"]]}}


def _frame(index: int, vars_size: int) -> dict[str, Any]:
    return {
        "filename": f"app/module{index}.py",
        "abs_path": f"/srv/app/module{index}.py",
        "function": f"handler{index}",
        "module": f"app.module{index}",
        "lineno": 10 + index,
        "pre_context": ["a = 1", "b = 2"],
        "context_line": "raise Boom()",
        "post_context": ["", "# end"],
        "in_app": True,
        "vars": {f"v{number}": "x" * 1000 for number in range(vars_size)},
    }


def _event(
    *, frames: list[int], crumbs: int = 0, crumb_size: int = 100, body: int = 0
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": "a" * 32,
        "timestamp": 1_700_000_000.0,
        "platform": "python",
        "level": "error",
        "exception": {
            "values": [
                {
                    "type": "Boom",
                    "value": "it broke",
                    "module": "app.errors",
                    "mechanism": {"type": "generic", "handled": True},
                    "stacktrace": {
                        "frames": [_frame(index, size) for index, size in enumerate(frames)]
                    },
                }
            ]
        },
        "breadcrumbs": {
            "values": [
                {
                    "timestamp": 1_700_000_000 + number,
                    "message": f"crumb {number}",
                    "data": {"blob": "c" * crumb_size},
                }
                for number in range(crumbs)
            ]
        },
        "extra": {"small": 1, "big": "e" * 50_000},
        "contexts": {"runtime": {"name": "CPython", "version": "3.11"}},
    }
    if body:
        event["request"] = {
            "url": "https://example.com/upload",
            "method": "POST",
            "headers": {"Content-Type": "application/json"},
            "data": {"payload": "d" * body},
        }
    return event


def _positions(event: dict[str, Any]) -> list[tuple[str, str, int]]:
    frames = event["exception"]["values"][0]["stacktrace"]["frames"]
    return [(frame["filename"], frame["function"], frame["lineno"]) for frame in frames]


@pytest.mark.parametrize("encode", ENCODERS)
def test_small_event_is_encoded_unchanged(encode: Callable[[Any], bytes]) -> None:
    event = _event(frames=[2, 3], crumbs=5)
    before = copy.deepcopy(event)
    assert fit_event(event, encode) == encode(before)
    assert event == before


@pytest.mark.parametrize("encode", ENCODERS)
def test_huge_event_fits_and_keeps_what_matters(encode: Callable[[Any], bytes]) -> None:
    event = _event(frames=[200] * 30, crumbs=100, crumb_size=10_000, body=300_000)
    original_positions = _positions(event)
    assert len(encode(event)) > 6 * DEFAULT_MAX_EVENT_BYTES

    encoded = fit_event(event, encode)

    assert len(encoded) <= DEFAULT_MAX_EVENT_BYTES
    sent = json.loads(encoded)
    exception = sent["exception"]["values"][0]
    assert (exception["type"], exception["value"]) == ("Boom", "it broke")
    assert _positions(sent) == original_positions
    # Locals went first, biggest first: here all of them were needed.
    frames_meta = sent["_meta"]["exception"]["values"]["0"]["stacktrace"]["frames"]
    assert frames_meta == {str(index): {"vars": REMOVED} for index in range(30)}
    assert all(frame["vars"] is None for frame in exception["stacktrace"]["frames"])
    # Then the oldest breadcrumbs; the newest are kept.
    crumbs = sent["breadcrumbs"]["values"]
    assert 0 < len(crumbs) < 100
    assert crumbs[-1]["message"] == "crumb 99"
    assert crumbs[0]["message"] == f"crumb {100 - len(crumbs)}"
    assert sent["_meta"]["breadcrumbs"] == {"values": {"": {"len": 100}}}
    # The request body and extra come after breadcrumbs: not needed here.
    assert sent["request"]["data"] == {"payload": "d" * 300_000}
    assert sent["extra"]["big"] == "e" * 50_000


def test_frame_vars_go_biggest_first() -> None:
    event = _event(frames=[10, 300, 20, 400, 30])
    limit = len(orjson.dumps(event)) - 450_000  # more than the biggest, less than the two
    sent = json.loads(fit_event(event, orjson.dumps, limit))
    frames = sent["exception"]["values"][0]["stacktrace"]["frames"]
    assert [frame["vars"] is None for frame in frames] == [False, True, False, True, False]
    assert sent["_meta"] == {
        "exception": {
            "values": {
                "0": {"stacktrace": {"frames": {"1": {"vars": REMOVED}, "3": {"vars": REMOVED}}}}
            }
        }
    }


def test_breadcrumb_meta_moves_with_the_kept_crumbs() -> None:
    event = _event(frames=[], crumbs=10, crumb_size=10_000)
    event["_meta"] = {
        "breadcrumbs": {
            "values": {
                "1": {"message": {"": {"len": 5000}}},
                "9": {"message": {"": {"len": 7000}}},
            }
        }
    }
    shared_crumbs = event["breadcrumbs"]["values"]
    limit = len(orjson.dumps(event)) - 25_000  # three crumbs must go
    sent = json.loads(fit_event(event, orjson.dumps, limit))
    assert [crumb["message"] for crumb in sent["breadcrumbs"]["values"]] == [
        f"crumb {number}" for number in range(3, 10)
    ]
    assert sent["_meta"]["breadcrumbs"] == {
        "values": {"": {"len": 10}, "6": {"message": {"": {"len": 7000}}}}
    }
    assert len(shared_crumbs) == 10  # a list shared with the scope is not cut in place


def test_request_data_then_extra_then_other_parts() -> None:
    event = _event(frames=[], body=200_000)
    event["modules"] = {f"package{number}": "1.0.0" for number in range(3000)}
    event["contexts"]["huge"] = {"blob": "h" * 100_000}
    limit = len(orjson.dumps(event)) - 330_000
    sent = json.loads(fit_event(event, orjson.dumps, limit))
    assert sent["request"]["data"] is None
    assert sent["extra"] == {"small": 1, "big": None}
    assert sent["contexts"]["huge"] is None
    assert sent["contexts"]["runtime"] == {"name": "CPython", "version": "3.11"}
    assert len(sent["modules"]) == 3000  # smaller than what had to go
    assert sent["_meta"] == {
        "request": {"data": REMOVED},
        "extra": {"big": REMOVED},
        "contexts": {"huge": REMOVED},
    }


def test_relay_accepts_the_trimmed_event_and_keeps_its_meta() -> None:
    event = _event(frames=[50, 60], crumbs=20, crumb_size=10_000, body=100_000)
    limit = len(orjson.dumps(event)) - 200_000
    sent = json.loads(fit_event(event, orjson.dumps, limit))
    normalized = StoreNormalizer().normalize_event(sent)
    frames_meta = normalized["_meta"]["exception"]["values"]["0"]["stacktrace"]["frames"]
    assert frames_meta == {"0": {"vars": REMOVED}, "1": {"vars": REMOVED}}
    assert normalized["_meta"]["breadcrumbs"] == {"values": {"": {"len": 20}}}


def test_protected_parts_alone_too_big_are_sent_as_they_are() -> None:
    event = _event(frames=[1])
    event["exception"]["values"][0]["value"] = "v" * 5_000
    encoded = fit_event(event, orjson.dumps, 1_000)
    sent = json.loads(encoded)
    assert len(encoded) > 1_000
    assert sent["exception"]["values"][0]["value"] == "v" * 5_000
    assert _positions(sent) == [("app/module0.py", "handler0", 10)]
