"""The card-number scan on text full of digits: cheap, and still finding the cards.

Its cost is measured in `benchmarks/bench_scan.py` (timings are never asserted here). What is
checked here is the work it does: text full of numbers but holding no card must need no Luhn
check at all, since the Luhn check is the part paid per candidate. (Card-shaped numbers, those
Relay filters by their network's prefix and length, need no Luhn check to be found.)
"""

from __future__ import annotations

import json
import random
import re

import pytest

from errlink import AsyncClient
from errlink._capture import sensitive
from errlink._capture.scrub import Scrubber
from errlink._capture.sensitive import FILTERED
from errlink._capture.serialize import Meta, Serializer
from errlink.collector import Collector

# Numbers with the prefix and length of a Visa, Mastercard, Amex or Discover number, written as
# Relay's default scrubbing finds them.
CARD_SHAPED = re.compile(
    r"(?<![0-9A-Za-z_])(?:4\d{3}|3[47]\d|5[1-5]\d\d|6011|65\d\d)(?:[-\s]?\d){12}(?![0-9A-Za-z_])"
)
_rng = random.Random(3)
# 100 KB each: numbers separated by spaces or dashes, and numbers in a comma-separated row.
NUMBERS = {
    "groups of 4": "1234 5678 " * 10_000,
    "random short numbers": "".join(
        "".join(_rng.choice("0123456789") for _ in range(_rng.randint(1, 8))) + _rng.choice(" -")
        for _ in range(20_000)
    )[:100_000],
    "a row of amounts": ", ".join(str(_rng.randrange(10**9)) for _ in range(10_000))[:100_000],
    "one long number": "5" * 100_000,
}


@pytest.mark.parametrize("name", sorted(NUMBERS))
def test_numbers_without_cards_need_no_luhn_check(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks = []
    luhn_valid = sensitive._luhn_valid

    def counted(digits: bytes) -> bool:
        checks.append(digits)
        return luhn_valid(digits)

    monkeypatch.setattr(sensitive, "_luhn_valid", counted)
    text = NUMBERS[name]
    scrubbed = Scrubber().scrub_text(text)
    assert checks == []
    if name == "random short numbers":
        # Among 20,000 random numbers, some runs make up the shape of a card number (16 digits
        # from a group starting with 4, say), which Relay would filter: they are filtered.
        assert 0 < scrubbed.count(FILTERED) < 1000
        assert CARD_SHAPED.search(scrubbed) is None
    else:
        assert scrubbed == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Among a long run of short numbers, a card written without separators.
        ("1234 5678 " * 50 + "4111111111111111 " + "1234 5678 " * 50, FILTERED),
        # Cards in a list, one after the other.
        ("4111111111111111 5555555555554444 378282246310005", " ".join([FILTERED] * 3)),
        ("4111 1111 1111 1111 5555-5555-5555-4444", f"{FILTERED} {FILTERED}"),
        # A card in groups after a short number joined by a dash, or before a year.
        ("ref 6-4012 8888 8888 1881", f"ref 6-{FILTERED}"),
        ("4111 1111 1111 1111 2024", f"{FILTERED} 2024"),
        ("amex 3782 822463 10005.", f"amex {FILTERED}."),
        ("non-ASCII é4111-1111-1111-1111é", f"non-ASCII é{FILTERED}é"),
    ],
)
def test_cards_among_numbers_are_filtered(text: str, expected: str) -> None:
    scrubbed = Scrubber().scrub_text(text)
    assert scrubbed.replace("1234 5678 ", "").strip() == expected


def test_a_card_in_groups_across_the_cut_after_digits_is_filtered_whole() -> None:
    meta: Meta = {}
    serializer = Serializer(max_value_length=40, scrubber=Scrubber())
    text = "1234 5678 " * 3 + "card 4111 1111 1111 1111 exp 12/25" + "." * 1000
    result = serializer.normalize(text, meta)
    assert result == "1234 5678 " * 3 + "card [F..."
    assert meta == {
        "": {"len": len(text), "rem": [["!config", "s", 35, 37], ["!limit", "s", 37, 40]]}
    }


async def test_locals_full_of_numbers_reach_the_server_with_cards_filtered(
    collector: Collector,
) -> None:
    def settle(rows: list[str], card: str) -> None:
        raise ValueError("settlement failed")

    rows = [NUMBERS["groups of 4"][:1000]] * 40
    card = " ".join(["4" + "1" * 3] + ["1" * 4] * 3)  # not in any source line the event shows
    async with AsyncClient(collector.dsn) as client:
        try:
            settle(rows, card)
        except ValueError as exc:
            await client.capture_exception(exc)
        assert await client.flush(10)
    (event,) = await collector.wait_for_events(1)
    frame_vars = event["exception"]["values"][0]["stacktrace"]["frames"][-1]["vars"]
    assert frame_vars["card"] == FILTERED
    assert frame_vars["rows"][:2] == rows[:2]  # the numbers are kept as they are
    assert card not in json.dumps(event)


def _card_dense(rng: random.Random, size: int) -> str:
    """Random digits with a space or dash one character in 16: numbers of 16 digits on average,
    many shaped like cards and one in ten or so passing the Luhn check."""
    return "".join(rng.choice("0123456789" * 3 + " -") for _ in range(size))


class _LuhnChecks:
    """How many Luhn checks were made. Not a list: a capture's frames hold it, and a list the
    serializer walks while each of its items adds one would never end."""

    def __init__(self) -> None:
        self.count = 0

    def __len__(self) -> int:
        return self.count

    def clear(self) -> None:
        self.count = 0


def _count_luhn_checks(monkeypatch: pytest.MonkeyPatch) -> _LuhnChecks:
    checks = _LuhnChecks()
    luhn_valid = sensitive._luhn_valid

    def counted(digits: bytes) -> bool:
        checks.count += 1
        return luhn_valid(digits)

    monkeypatch.setattr(sensitive, "_luhn_valid", counted)
    return checks


def _cards_left(value: object) -> list[str]:
    """Texts in ``value`` that still hold a card, by the scan without any budget."""
    texts = json.loads(json.dumps(value))
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for item in node.values():
                walk(item)
        elif isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, str) and sensitive.filter_card_numbers(node)[1]:
            found.append(node)

    walk(texts)
    return found


def test_text_dense_with_card_shaped_numbers_costs_a_bounded_number_of_checks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = random.Random(5)
    rows = [_card_dense(rng, 1000) for _ in range(50)]
    checks = _count_luhn_checks(monkeypatch)
    for row in rows:
        Scrubber().scrub_text(row)
    unbounded = len(checks)
    checks.clear()

    meta: Meta = {}
    result = Serializer(scrubber=Scrubber()).normalize_mapping({"rows": rows}, meta)

    assert len(checks) * 10 < unbounded  # the budget, not the text, bounds the work
    assert _cards_left(result) == []  # and nothing unchecked leaves
    # The first rows were scanned number by number, the rest filtered whole (from their first
    # digit to their last), all in `_meta`.
    assert any(FILTERED in row and row.strip(" -") != FILTERED for row in result["rows"][:3])
    assert all(row.strip(" -") == FILTERED for row in result["rows"][-40:])
    start = result["rows"][-1].index(FILTERED)
    assert meta["rows"]["49"] == {"": {"rem": [["!config", "s", start, start + len(FILTERED)]]}}


def test_past_the_budget_single_numbers_and_plain_rows_are_still_checked_exactly() -> None:
    rng = random.Random(6)
    tree = {
        "dense": [_card_dense(rng, 1000) for _ in range(10)],
        "order_id": "2111111111111112",  # fails the Luhn check, and is no network's shape
        "shaped": "4111111111111112",  # fails the Luhn check, but has a Visa number's shape
        "card": "4111111111111111",
        "row": "1234 5678 " * 20,  # a long run of short numbers
        "line": "paid 12.50 with 4111 1111 1111 1111 on 2024-01-31",
    }
    result = Serializer(scrubber=Scrubber()).normalize_mapping(tree)
    assert all(row.strip(" -") == FILTERED for row in result["dense"][-5:])  # budget spent
    assert result["order_id"] == "2111111111111112"
    assert result["shaped"] == FILTERED
    assert result["card"] == FILTERED
    assert result["row"] == "1234 5678 " * 20
    assert result["line"] == f"paid 12.50 with {FILTERED} on 2024-01-31"


async def test_frames_of_one_stack_trace_share_the_scan_budget(
    collector: Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(8)

    def nested(depth: int, rows: list[str]) -> None:
        if depth:
            nested(depth - 1, [_card_dense(rng, 1000) for _ in range(5)])
        raise ValueError("settlement failed")

    checks = _count_luhn_checks(monkeypatch)
    async with AsyncClient(collector.dsn) as client:
        try:
            nested(20, [])
        except ValueError as exc:
            await client.capture_exception(exc)
        assert await client.flush(10)
    (event,) = await collector.wait_for_events(1)
    frames = event["exception"]["values"][0]["stacktrace"]["frames"]
    # 100 KB of card-dense text over 20 frames: every frame holds some, the last ones whole
    # [Filtered], and no card reached the server.
    assert len([frame for frame in frames if frame.get("vars", {}).get("rows")]) == 20
    assert [row.strip(" -") for row in frames[-2]["vars"]["rows"]] == [FILTERED] * 5
    assert _cards_left(event) == []
    assert len(checks) < 300
