"""Serializer: any Python value to bounded JSON-able data, with the protocol's `_meta` trail."""

from __future__ import annotations

import enum
import json
import math
import tracemalloc
from collections import OrderedDict, deque
from collections.abc import Iterator, Mapping
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sentry_relay.processing import StoreNormalizer, meta_with_chunks

from errlink._capture.scrub import Scrubber
from errlink._capture.serialize import Meta, Serializer

# -- hostile and odd objects ----------------------------------------------------------------------


# The hostile classes misbehave only while armed, so that hypothesis can still describe a failing
# example once the test body is over.
ARMED = [True]


@pytest.fixture(autouse=True)
def _armed() -> None:
    ARMED[0] = True


class RaisingRepr:
    def __repr__(self) -> str:
        if ARMED[0]:
            raise ValueError("no repr for you")
        return "RaisingRepr()"


class NonStrRepr:
    def __repr__(self) -> Any:
        return 42 if ARMED[0] else "NonStrRepr()"


class RecursiveRepr:
    def __repr__(self) -> str:
        return repr(self) if ARMED[0] else "RecursiveRepr()"


class HugeRepr:
    def __repr__(self) -> str:
        return "x" * 100_000


class SurrogateRepr:
    def __repr__(self) -> str:
        return "bad \ud800 repr"


class Unprintable:
    def __str__(self) -> str:
        if ARMED[0]:
            raise RuntimeError("no str")
        return "Unprintable()"

    def __repr__(self) -> str:
        if ARMED[0]:
            raise RuntimeError("no repr")
        return "Unprintable()"


class StrRaises:
    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __repr__(self) -> str:
        return "<StrRaises fine>"


class NoReprList(list[int]):
    """A big list whose repr must never be asked for."""

    def __repr__(self) -> str:
        raise AssertionError("repr of a whole container was built")


class Color(enum.Enum):
    RED = 1


class Level(enum.IntEnum):
    HIGH = 3


class Markup(str):
    pass


class Count(int):
    pass


class ReadOnly(Mapping[str, int]):
    def __init__(self, data: dict[str, int]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> int:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


class BrokenMapping(Mapping[str, int]):
    """Yields one item, then fails, like a mapping changed under our feet."""

    def __getitem__(self, key: str) -> int:
        return 1

    def __iter__(self) -> Iterator[str]:
        yield "first"
        raise RuntimeError("changed during iteration")

    def __len__(self) -> int:
        return 2


class Plain:
    pass


# -- scalars --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        (True, True),
        (False, False),
        (0, 0),
        (-(2**63), -(2**63)),
        (2**64 - 1, 2**64 - 1),
        (2**64, "18446744073709551616"),
        (-(2**63) - 1, "-9223372036854775809"),
        (1.5, 1.5),
        (math.nan, "nan"),
        (math.inf, "inf"),
        (-math.inf, "-inf"),
        (2**5000, "<int of 5001 bits>"),
        (Count(7), 7),
        (Markup("<b>hi</b>"), "<b>hi</b>"),
        (Color.RED, "<Color.RED: 1>"),
        (Level.HIGH, "<Level.HIGH: 3>"),
    ],
)
def test_scalars(value: object, expected: object) -> None:
    meta: Meta = {}
    result = Serializer().normalize(value, meta)
    assert result == expected
    assert type(result) is type(expected)
    assert meta == {}


def test_long_string_is_cut_with_relay_style_remark() -> None:
    meta: Meta = {}
    result = Serializer(max_value_length=10).normalize("abcdefghijklmnop", meta)
    assert result == "abcdefg..."
    assert meta == {"": {"len": 16, "rem": [["!limit", "s", 7, 10]]}}
    # Relay reads the remark the way we mean it: text, then a "..." substitution.
    chunks = meta_with_chunks(result, meta)[""]["chunks"]  # type: ignore[no-untyped-call]
    assert chunks == [
        {"type": "text", "text": "abcdefg"},
        {"type": "redaction", "text": "...", "rule_id": "!limit", "remark": "s"},
    ]


def test_string_at_the_limit_is_untouched() -> None:
    meta: Meta = {}
    assert Serializer(max_value_length=10).normalize("abcdefghij", meta) == "abcdefghij"
    assert meta == {}


@pytest.mark.parametrize(("limit", "expected"), [(1, "."), (2, ".."), (3, "..."), (4, "a...")])
def test_tiny_limits_still_bound_strings(limit: int, expected: str) -> None:
    assert Serializer(max_value_length=limit).normalize("abcdef") == expected


@pytest.mark.parametrize("bad", [0, -1, 1.5, None])
def test_limits_are_validated(bad: Any) -> None:
    with pytest.raises(ValueError, match="max_depth must be a positive integer"):
        Serializer(max_depth=bad)


# -- containers -----------------------------------------------------------------------------------


def test_containers_become_lists_and_dicts() -> None:
    result = Serializer().normalize(
        {
            "tuple": (1, "a"),
            "set": {3},
            "frozenset": frozenset({4}),
            "deque": deque([5, 6]),
            "ordered": OrderedDict(b=2),
            "mapping": ReadOnly({"x": 1}),
            "nested": [[{"k": None}]],
        }
    )
    assert result == {
        "tuple": [1, "a"],
        "set": [3],
        "frozenset": [4],
        "deque": [5, 6],
        "ordered": {"b": 2},
        "mapping": {"x": 1},
        "nested": [[{"k": None}]],
    }


def test_keys_become_strings() -> None:
    result = Serializer().normalize({None: 1, 1: 2, ("a", 1): 3, b"k": 4, Markup("m"): 5})
    assert result == {"None": 1, "1": 2, "('a', 1)": 3, "b'k'": 4, "m": 5}


def test_breadth_cut_is_recorded_with_original_length() -> None:
    meta: Meta = {}
    serializer = Serializer(max_breadth=3)
    result = serializer.normalize(
        {"list": list(range(100)), "dict": dict.fromkeys("abcdef", 0)}, meta
    )
    assert result == {"list": [0, 1, 2], "dict": {"a": 0, "b": 0, "c": 0}}
    assert meta == {"list": {"": {"len": 100}}, "dict": {"": {"len": 6}}}


def test_meta_is_nested_by_key_and_list_index() -> None:
    meta: Meta = {}
    result = Serializer(max_value_length=5).normalize(
        {"a": [1, "long text", {"b": "xxxxxxx"}]}, meta
    )
    assert result == {"a": [1, "lo...", {"b": "xx..."}]}
    assert meta == {
        "a": {
            "1": {"": {"len": 9, "rem": [["!limit", "s", 2, 5]]}},
            "2": {"b": {"": {"len": 7, "rem": [["!limit", "s", 2, 5]]}}},
        }
    }


def test_too_deep_containers_become_a_short_repr() -> None:
    meta: Meta = {}
    value = [[[[1, [2]], {"k": "v"}]]]
    result = Serializer(max_depth=3).normalize(value, meta)
    assert result == [[["[1, [...]]", "{'k': 'v'}"]]]
    assert meta == {
        "0": {
            "0": {
                "0": {"": {"rem": [["!limit", "s"]]}},
                "1": {"": {"rem": [["!limit", "s"]]}},
            }
        }
    }


def test_node_budget_stops_breadth_times_depth_blowups() -> None:
    meta: Meta = {}
    grid = [[0] * 50 for _ in range(50)]
    result = Serializer(max_nodes=100).normalize(grid, meta)
    # The top list (1 node) and its 50 rows use 51 nodes; the first row gets the 49 left.
    assert result == [[0] * 49] + [[] for _ in range(49)]
    assert meta == {str(row): {"": {"len": 50}} for row in range(50)}


def test_cycles_are_marked_not_followed() -> None:
    cyclic: dict[str, Any] = {"name": "root"}
    cyclic["self"] = cyclic
    looped: list[Any] = [1]
    looped.append(looped)
    shared = [1]
    assert Serializer().normalize(cyclic) == {"name": "root", "self": "<cyclic>"}
    assert Serializer().normalize(looped) == [1, "<cyclic>"]
    assert Serializer().normalize([shared, shared]) == [[1], [1]]


def test_mapping_failing_mid_iteration_keeps_what_was_read() -> None:
    assert Serializer().normalize({"m": BrokenMapping()}) == {"m": {"first": 1}}


def test_nothing_is_written_to_meta_when_nothing_is_cut() -> None:
    meta: Meta = {}
    locals_ = {"n": 1, "s": "short", "d": {"a": [1, 2]}, "l": list(range(10)), "o": Plain()}
    result = Serializer(scrubber=Scrubber()).normalize_mapping(locals_, meta)
    assert meta == {}
    assert result["o"].startswith(f"<{__name__}.Plain object at 0x")
    assert result["d"] == {"a": [1, 2]}


# -- text and bytes -------------------------------------------------------------------------------


def test_bytes_are_sliced_then_decoded_as_utf8() -> None:
    meta: Meta = {}
    serializer = Serializer(max_value_length=10)
    assert serializer.normalize(b"hello") == "hello"
    assert serializer.normalize(b"\xff\xfeok") == "\ufffd\ufffdok"
    assert serializer.normalize(bytearray(b"abc")) == "abc"
    assert serializer.normalize(memoryview(b"abc")) == "abc"
    assert serializer.normalize(b"a" * 10_000_000, meta) == "aaaaaaa..."
    assert meta == {"": {"len": 10_000_000, "rem": [["!limit", "s", 7, 10]]}}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a\ud800b", "a\ufffdb"),
        ("\udfff", "\ufffd"),
        ("\ud83d\ude00", "\U0001f600"),  # a surrogate pair is joined into the real character
        ("caf\u00e9", "caf\u00e9"),
    ],
)
def test_surrogates_are_made_encodable(value: str, expected: str) -> None:
    result = Serializer().normalize({"v": value, value: 1})
    assert result == {"v": expected, expected: 1}
    orjson.dumps(result)
    json.dumps(result, ensure_ascii=False).encode()


def test_huge_string_costs_no_more_than_its_slice() -> None:
    serializer = Serializer(scrubber=Scrubber())
    huge = "\u00e9" * 10_000_000 + "\ud800"
    tracemalloc.start()
    try:
        result = serializer.normalize(huge, {})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(result) == 1024
    assert peak < 100_000  # nothing proportional to the 10 MB input was built


def test_huge_builtin_container_repr_is_never_built() -> None:
    big = NoReprList(range(1_000_000))
    serializer = Serializer(max_depth=1)
    first_items = ", ".join(str(number) for number in range(50))  # max_breadth items, then "..."
    expected = f"NoReprList([{first_items}, ...])"
    assert serializer.normalize({"big": big}) == {"big": expected}
    assert serializer.safe_repr(big) == expected


# -- hostile reprs and strs -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (RaisingRepr(), "<unrepresentable RaisingRepr object>"),
        (NonStrRepr(), "<unrepresentable NonStrRepr object>"),
        (RecursiveRepr(), "<unrepresentable RecursiveRepr object>"),
        (SurrogateRepr(), "bad \ufffd repr"),
    ],
)
def test_hostile_reprs_never_break_normalize(value: object, expected: str) -> None:
    serializer = Serializer()
    assert serializer.normalize({"v": value}) == {"v": expected}
    assert serializer.safe_repr(value) == expected


def test_huge_repr_is_cut() -> None:
    meta: Meta = {}
    result = Serializer(max_value_length=8).normalize(HugeRepr(), meta)
    assert result == "xxxxx..."
    assert meta == {"": {"len": 100_000, "rem": [["!limit", "s", 5, 8]]}}


def test_safe_str_falls_back_to_repr_then_to_a_placeholder() -> None:
    serializer = Serializer(max_value_length=12)
    assert serializer.safe_str(ValueError("boom")) == "boom"
    assert serializer.safe_str(StrRaises()) == "<StrRaise..."
    assert serializer.safe_str(Unprintable()) == "<unprinta..."
    assert Serializer().safe_str(Unprintable()) == "<unprintable Unprintable object>"
    assert serializer.safe_str("x" * 10_000_000) == "xxxxxxxxx..."
    assert serializer.safe_str({"a": 1}) == "{'a': 1}"
    assert serializer.safe_str(None) == "None"


def test_safe_repr_is_bounded_for_builtins() -> None:
    serializer = Serializer(max_value_length=30)
    assert serializer.safe_repr("x" * 10_000_000) == "'" + "x" * 26 + "..."
    assert serializer.safe_repr(list(range(1_000_000))) == "[0, 1, 2, 3, 4, 5, 6, 7, 8,..."
    assert serializer.safe_repr((1,)) == "(1,)"
    assert serializer.safe_repr(set()) == "set()"
    assert serializer.safe_repr(deque([1])) == "deque([1])"
    assert serializer.safe_repr(b"\x00" * 100).startswith("b'\\x00")
    assert len(serializer.safe_repr(b"\x00" * 100)) == 30


def test_normalize_mapping_always_returns_a_dict() -> None:
    meta: Meta = {}
    serializer = Serializer()
    assert serializer.normalize_mapping({"a": (1,)}) == {"a": [1]}
    assert serializer.normalize_mapping(ReadOnly({"b": 2})) == {"b": 2}
    assert serializer.normalize_mapping([1, 2], meta) == {}  # type: ignore[arg-type]
    assert meta == {"": {"err": [["invalid_data", {"reason": "expected a mapping"}]]}}


# -- scrubbing through the serializer --------------------------------------------------------------


def test_sensitive_keys_are_filtered_with_config_remark() -> None:
    meta: Meta = {}
    serializer = Serializer(scrubber=Scrubber())
    local_vars = {
        "password": "hunter2",
        "author": "ann",
        "config": {"db_password": "pw", "API-Key": ["k"], "host": "db"},
        "note": "paid with 4111 1111 1111 1111 today",
    }
    result = serializer.normalize_mapping(local_vars, meta)
    assert result == {
        "password": "[Filtered]",
        "author": "[Filtered]",  # holds "auth": Relay's default scrubbing filters it too
        "config": {"db_password": "[Filtered]", "API-Key": "[Filtered]", "host": "db"},
        "note": "paid with [Filtered] today",
    }
    assert meta == {
        "password": {"": {"rem": [["!config", "s"]]}},
        "author": {"": {"rem": [["!config", "s"]]}},
        "config": {
            "db_password": {"": {"rem": [["!config", "s"]]}},
            "API-Key": {"": {"rem": [["!config", "s"]]}},
        },
        "note": {"": {"rem": [["!config", "s", 10, 20]]}},
    }


def test_card_number_across_the_cut_is_filtered_whole() -> None:
    meta: Meta = {}
    serializer = Serializer(max_value_length=20, scrubber=Scrubber())
    result = serializer.normalize("x" * 10 + "4111111111111111 and more", meta)
    assert result == "xxxxxxxxxx[Filter..."
    assert meta == {"": {"len": 35, "rem": [["!config", "s", 10, 17], ["!limit", "s", 17, 20]]}}


def test_deep_container_repr_hides_sensitive_values() -> None:
    serializer = Serializer(max_depth=1, scrubber=Scrubber())
    result = serializer.normalize({"conf": {"session": "abc", "x": 1}})
    assert result == {"conf": "{'session': '[Filtered]', 'x': 1}"}
    # A repr that names a secret (`'token': ...`) is a value Relay filters whole: so is it here.
    assert serializer.normalize({"conf": {"token": "abc"}}) == {"conf": "[Filtered]"}


def test_safe_str_scrubs_card_numbers() -> None:
    serializer = Serializer(scrubber=Scrubber())
    assert serializer.safe_str(ValueError("card 5555555555554444 declined")) == (
        "card [Filtered] declined"
    )


def test_relay_keeps_our_meta() -> None:
    serializer = Serializer(max_value_length=10, max_breadth=2, scrubber=Scrubber())
    meta: Meta = {}
    extra = serializer.normalize_mapping(
        {"long": "a" * 50, "secret": "s", "items": [1, 2, 3]}, meta
    )
    event = {"message": "m", "extra": extra, "_meta": {"extra": meta}}
    normalized = StoreNormalizer().normalize_event(event)
    assert normalized["extra"] == {"long": "aaaaaaa...", "secret": "[Filtered]"}
    assert normalized["_meta"]["extra"] == meta


# -- property: anything in, bounded JSON out -------------------------------------------------------

MAX_VALUE_LENGTH = 8
MAX_DEPTH = 3
MAX_BREADTH = 4
MAX_NODES = 40

_tricky_text = st.text(
    alphabet=st.sampled_from(["a", "\u00e9", "\ud800", "\udfff", "\ud83d", "\ude00", "4", " "]),
    max_size=30,
)
_text = st.text(max_size=20) | _tricky_text
# Built per example (hypothesis would call the hostile reprs to describe a sampled_from list).
_hostile = st.one_of(
    [
        st.builds(cls)
        for cls in (RaisingRepr, NonStrRepr, RecursiveRepr, HugeRepr, SurrogateRepr, Unprintable)
    ]
) | st.sampled_from([Plain(), Color.RED, Markup("m\ud800"), Count(2**70)])
_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([2**64, -(2**63) - 1, 2**5000, -(2**70)])
    | st.floats(allow_nan=True, allow_infinity=True)
    | _text
    | st.binary(max_size=30)
    | _hostile
)
_keys = _text | st.integers() | st.none() | st.binary(max_size=5)
_values = st.recursive(
    _leaves,
    lambda children: (
        st.lists(children, max_size=6)
        | st.lists(children, max_size=6).map(tuple)
        | st.dictionaries(_keys, children, max_size=6)
        | st.frozensets(st.integers() | _text, max_size=6)
        | st.lists(children, max_size=6).map(deque)
    ),
    max_leaves=60,
)


def _check_bounds(value: Any, depth: int) -> int:
    """Asserts every limit holds below ``value``; returns the number of nodes."""
    assert depth <= MAX_DEPTH + 1
    if isinstance(value, str):
        assert len(value) <= MAX_VALUE_LENGTH
        return 1
    if isinstance(value, list):
        assert len(value) <= MAX_BREADTH
        return 1 + sum(_check_bounds(item, depth + 1) for item in value)
    if isinstance(value, dict):
        assert len(value) <= MAX_BREADTH
        for key in value:
            assert isinstance(key, str)
            assert len(key) <= MAX_VALUE_LENGTH
        return 1 + sum(_check_bounds(item, depth + 1) for item in value.values())
    assert value is None or type(value) in (bool, int, float)
    if type(value) is int:
        assert -(2**63) <= value < 2**64
    if type(value) is float:
        assert math.isfinite(value)
    return 1


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=_values, scrub=st.booleans())
def test_anything_becomes_bounded_json(value: object, scrub: bool) -> None:
    serializer = Serializer(
        max_value_length=MAX_VALUE_LENGTH,
        max_depth=MAX_DEPTH,
        max_breadth=MAX_BREADTH,
        max_nodes=MAX_NODES,
        scrubber=Scrubber() if scrub else None,
    )
    meta: Meta = {}
    ARMED[0] = True
    try:
        result = serializer.normalize(value, meta)
        texts = [serializer.safe_repr(value), serializer.safe_str(value)]
    finally:
        ARMED[0] = False
    assert _check_bounds(result, 1) <= MAX_NODES
    json.dumps(result, allow_nan=False, ensure_ascii=False).encode()
    orjson.dumps(result)
    orjson.dumps(meta)
    assert all(len(text) <= MAX_VALUE_LENGTH for text in texts)
    orjson.dumps(texts)


HEADER_PAIRS = [
    (b"host", b"shop.example"),
    (b"authorization", b"Bearer top-secret"),
    ["Cookie", "sessionid=abc"],
    ("X-Forwarded-For", "203.0.113.9"),
    ("accept", "*/*"),
]


def test_header_pairs_in_locals_have_their_secrets_filtered() -> None:
    meta: Meta = {}
    result = Serializer(scrubber=Scrubber()).normalize({"headers": HEADER_PAIRS}, meta)
    assert result["headers"] == [
        ["host", "shop.example"],
        # The name too: Relay's default scrubbing filters a text naming auth in a plain list.
        ["[Filtered]", "[Filtered]"],
        ["Cookie", "[Filtered]"],
        ["X-Forwarded-For", "[Filtered]"],  # the client's address: personal data
        ["accept", "*/*"],
    ]
    assert meta["headers"]["1"] == {"1": {"": {"rem": [["!config", "s"]]}}}
    with_pii = Serializer(scrubber=Scrubber(send_default_pii=True)).normalize(HEADER_PAIRS)
    assert with_pii[3] == ["X-Forwarded-For", "203.0.113.9"]
    assert with_pii[1] == ["[Filtered]", "[Filtered]"]  # a secret all the same


def test_an_asgi_scope_in_locals_keeps_neither_secrets_nor_the_client_address() -> None:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "path": "/orders",
        "query_string": b"page=2&token=abc",
        "client": ("203.0.113.9", 51000),
        "headers": HEADER_PAIRS,
    }
    result = Serializer(scrubber=Scrubber()).normalize({"scope": scope})["scope"]
    assert result["path"] == "/orders"
    # Scrubbed (`token=%5BFiltered%5D`), it still names a token: filtered whole, as Relay would.
    assert result["query_string"] == "[Filtered]"
    assert result["client"] == "[Filtered]"
    assert result["headers"][1] == ["[Filtered]", "[Filtered]"]
    assert scope["client"] == ("203.0.113.9", 51000)  # the app's own scope is left as it was
    with_pii = Serializer(scrubber=Scrubber(send_default_pii=True)).normalize(scope)
    assert with_pii["client"] == ["203.0.113.9", 51000]
