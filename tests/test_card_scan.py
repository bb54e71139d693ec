"""The card-number scan on text full of digits: cheap, and still finding the cards.

Its cost is measured in `benchmarks/bench_scan.py` (timings are never asserted here). What is
checked here is the work it does: text full of numbers but holding no card must need no Luhn
check at all, since the Luhn check is the part paid per candidate.
"""

from __future__ import annotations

import json
import random

import pytest

from errlink import AsyncClient
from errlink._capture import sensitive
from errlink._capture.scrub import Scrubber
from errlink._capture.sensitive import FILTERED
from errlink._capture.serialize import Meta, Serializer
from errlink.collector import Collector

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
    assert Scrubber().scrub_text(text) == text
    assert checks == []


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
