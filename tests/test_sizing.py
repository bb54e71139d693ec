"""The size estimate the hand-over bounds its bytes with: close to the real size, never stuck."""

from __future__ import annotations

import json
from typing import Any

from errlink._capture.event import EventBuilder
from errlink._capture.scope import Scope
from errlink._delivery.sizing import UNBOUNDED, estimate_size
from errlink._options import Options


def _captured_event(text: str) -> dict[str, Any]:
    def fail(big: str) -> None:
        rows = [big[i : i + 1000] for i in range(0, len(big), 1000)]  # noqa: F841 - a local
        raise ValueError("declined")

    try:
        fail(text)
    except ValueError as exc:
        return EventBuilder(Options()).exception_event(exc, Scope(), {})
    raise AssertionError("unreachable")


def test_the_estimate_is_near_the_encoded_size_of_a_captured_event() -> None:
    for text in ("small", "y" * 40_000):
        event = _captured_event(text)
        encoded = len(json.dumps(event))
        assert encoded / 2 <= estimate_size(event) <= encoded * 2


def test_bytes_count_as_their_length() -> None:
    assert estimate_size(b"x" * 12_345) == 12_345


def test_data_marshal_refuses_is_walked_and_a_cycle_counts_as_unbounded() -> None:
    class Opaque:
        pass

    assert 50_000 <= estimate_size({"a": "z" * 50_000, "b": Opaque()}) <= 60_000
    cyclic: dict[str, Any] = {"text": "x", "other": Opaque()}
    cyclic["self"] = cyclic
    assert estimate_size(cyclic) == UNBOUNDED
