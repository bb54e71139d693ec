from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

import pytest

from errlink._capture.exceptions import exception_summary_type, exception_values
from errlink._capture.source import SourceCache
from errlink._capture.stacktrace import FrameExtractor, Meta

try:
    from tests import _stack_helpers as helpers
    from tests._stack_relay import assert_relay_accepts
except ImportError:
    import _stack_helpers as helpers  # type: ignore[no-redef]
    from _stack_relay import assert_relay_accepts  # type: ignore[no-redef]

needs_groups = pytest.mark.skipif(sys.version_info < (3, 11), reason="ExceptionGroup is 3.11+")


def repr_vars(mapping: Mapping[str, object], meta: Meta) -> dict[str, Any]:
    return {key: repr(value)[:100] for key, value in mapping.items()}


@pytest.fixture
def frames() -> FrameExtractor:
    return FrameExtractor(vars_normalizers=lambda: repr_vars, source_cache=SourceCache())


def caught(func: Any, *args: Any) -> BaseException:
    try:
        func(*args)
    except BaseException as exc:
        return exc
    raise AssertionError("expected an exception")


def summary(values: list[dict[str, Any]]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(value["type"], value["value"], value["mechanism"]) for value in values]


def test_a_plain_exception(frames: FrameExtractor) -> None:
    values = exception_values(caught(helpers.Account().withdraw, 100), frames=frames)

    assert len(values) == 1
    value = values[0]
    assert value["type"] == "PaymentError"
    assert value["value"] == "cannot withdraw 100"
    assert value["module"] == helpers.__name__
    assert value["mechanism"] == {"type": "generic", "handled": True, "exception_id": 0}
    last_frame = value["stacktrace"]["frames"][-1]
    assert last_frame["lineno"] == helpers.marker_line("withdraw-raise")
    assert last_frame["vars"]["amount"] == "100"
    assert_relay_accepts(values)


def test_the_callers_mechanism_goes_on_the_captured_exception_only(frames: FrameExtractor) -> None:
    values = exception_values(
        caught(helpers.raise_from), frames=frames, mechanism_type="celery", handled=False
    )

    assert values[-1]["mechanism"] == {"type": "celery", "handled": False, "exception_id": 0}
    assert values[0]["mechanism"]["type"] == "chained"
    assert "handled" not in values[0]["mechanism"]
    out = assert_relay_accepts(values)
    assert out["exception"]["values"][-1]["mechanism"]["handled"] is False


def test_raise_from_lists_the_cause_first(frames: FrameExtractor) -> None:
    values = exception_values(caught(helpers.raise_from), frames=frames)

    assert summary(values) == [
        (
            "ValueError",
            "invalid literal for int() with base 10: 'not a number'",
            {"type": "chained", "source": "__cause__", "exception_id": 1, "parent_id": 0},
        ),
        (
            "RuntimeError",
            "conversion failed",
            {"type": "generic", "handled": True, "exception_id": 0},
        ),
    ]
    assert values[0]["module"] == "builtins"
    assert values[0]["stacktrace"]["frames"][-1]["function"] == "raise_from"
    assert values[1]["stacktrace"]["frames"][-1]["lineno"] == helpers.marker_line("raise-from")
    assert_relay_accepts(values)


def test_implicit_chaining_follows_the_context(frames: FrameExtractor) -> None:
    values = exception_values(caught(helpers.raise_implicitly), frames=frames)

    assert summary(values) == [
        (
            "KeyError",
            "'missing'",
            {"type": "chained", "source": "__context__", "exception_id": 1, "parent_id": 0},
        ),
        ("TypeError", "while handling", {"type": "generic", "handled": True, "exception_id": 0}),
    ]
    assert_relay_accepts(values)


def test_raise_from_none_hides_the_context(frames: FrameExtractor) -> None:
    values = exception_values(caught(helpers.raise_suppressed), frames=frames)

    assert [value["type"] for value in values] == ["TypeError"]
    assert_relay_accepts(values)


def test_a_cycle_in_the_context_chain_ends(frames: FrameExtractor) -> None:
    first, second, third = ValueError("first"), KeyError("second"), OSError("third")
    first.__context__ = second
    second.__context__ = third
    third.__context__ = first
    selfish = ValueError("me again")
    selfish.__cause__ = selfish

    values = exception_values(first, frames=frames)
    alone = exception_values(selfish, frames=frames)

    assert [value["type"] for value in values] == ["OSError", "KeyError", "ValueError"]
    assert [value["mechanism"].get("parent_id") for value in values] == [1, 0, None]
    assert all("stacktrace" not in value for value in values)  # never raised: no traceback
    assert [value["value"] for value in alone] == ["me again"]
    assert_relay_accepts(values)


@needs_groups
def test_exception_groups_send_every_member_as_a_tree(frames: FrameExtractor) -> None:
    values = exception_values(caught(helpers.nested_group), frames=frames)

    # Depth-first from the root (id 0), members in order, sent reversed: the root comes last.
    assert summary(values) == [
        (
            "LookupError",
            "cause",
            {"type": "chained", "source": "__cause__", "exception_id": 6, "parent_id": 5},
        ),
        (
            "TypeError",
            "four",
            {"type": "chained", "source": "exceptions[2]", "exception_id": 5, "parent_id": 0},
        ),
        (
            "OSError",
            "three",
            {"type": "chained", "source": "exceptions[1]", "exception_id": 4, "parent_id": 2},
        ),
        (
            "KeyError",
            "'two'",
            {"type": "chained", "source": "exceptions[0]", "exception_id": 3, "parent_id": 2},
        ),
        (
            "ExceptionGroup",
            "inner (2 sub-exceptions)",
            {
                "type": "chained",
                "source": "exceptions[1]",
                "exception_id": 2,
                "parent_id": 0,
                "is_exception_group": True,
            },
        ),
        (
            "ValueError",
            "one",
            {"type": "chained", "source": "exceptions[0]", "exception_id": 1, "parent_id": 0},
        ),
        (
            "ExceptionGroup",
            "outer (3 sub-exceptions)",
            {"type": "generic", "handled": True, "exception_id": 0, "is_exception_group": True},
        ),
    ]
    assert all("stacktrace" in value for value in values)
    out = assert_relay_accepts(values)
    assert out["exception"]["values"][0]["mechanism"]["parent_id"] == 5


@needs_groups
def test_exception_ids_count_up_from_the_last_value(frames: FrameExtractor) -> None:
    values = exception_values(caught(helpers.nested_group), frames=frames)

    ids = [value["mechanism"]["exception_id"] for value in values]
    assert ids == list(range(len(values) - 1, -1, -1))
    for position, value in enumerate(values[:-1]):
        parent_id = value["mechanism"]["parent_id"]
        assert parent_id < value["mechanism"]["exception_id"]
        assert ids.index(parent_id) > position  # parents come after their children


def test_the_number_of_exceptions_is_bounded(frames: FrameExtractor) -> None:
    chain = [ValueError(f"link {index}") for index in range(200)]
    for newer, older in zip(chain[1:], chain[:-1], strict=True):
        newer.__context__ = older

    values = exception_values(chain[-1], frames=frames, max_exceptions=10)

    assert [value["value"] for value in values] == [f"link {index}" for index in range(190, 200)]
    assert values[-1]["mechanism"]["exception_id"] == 0
    assert values[0]["mechanism"]["exception_id"] == 9
    assert_relay_accepts(values)


@needs_groups
def test_a_huge_group_is_bounded(frames: FrameExtractor) -> None:
    group = helpers.ExceptionGroup("many", [KeyError(index) for index in range(500)])

    values = exception_values(group, frames=frames)

    assert len(values) == 50
    assert values[-1]["type"] == "ExceptionGroup"
    assert {value["mechanism"].get("parent_id") for value in values[:-1]} == {0}
    assert_relay_accepts(values)


class StrRaises(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no str for you")

    def __repr__(self) -> str:
        return "StrRaises(repr works)"


class StrNotText(Exception):
    def __str__(self) -> Any:
        return 42

    def __repr__(self) -> str:
        return "StrNotText()"


class NothingWorks(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


class FancyText(str):
    pass


class StrSubclass(Exception):
    def __str__(self) -> str:
        return FancyText("fancy")


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (StrRaises(), "StrRaises(repr works)"),
        (StrNotText(), "StrNotText()"),
        (NothingWorks(), "<unprintable NothingWorks object>"),
        (StrSubclass(), "fancy"),
    ],
)
def test_hostile_str_and_repr_never_escape(
    frames: FrameExtractor, exc: BaseException, expected: str
) -> None:
    def raise_it() -> None:
        raise exc

    values = exception_values(caught(raise_it), frames=frames)

    assert values[0]["value"] == expected
    assert type(values[0]["value"]) is str
    assert_relay_accepts(values)


def test_stacktrace_meta_lands_under_the_value_index() -> None:
    def trimming(mapping: Mapping[str, object], meta: Meta) -> dict[str, Any]:
        meta[""] = {"len": 1000}
        return {}

    frames = FrameExtractor(vars_normalizers=lambda: trimming)
    meta: Meta = {}
    values = exception_values(caught(helpers.raise_from), frames=frames, meta=meta)

    assert set(meta) == {"0", "1"}
    for index, value in enumerate(values):
        frame_metas = meta[str(index)]["stacktrace"]["frames"]
        assert len(frame_metas) == len(value["stacktrace"]["frames"])
        assert all(node == {"vars": {"": {"len": 1000}}} for node in frame_metas.values())
    assert_relay_accepts(values, meta)


def test_an_exception_that_was_never_raised_has_no_stacktrace(frames: FrameExtractor) -> None:
    meta: Meta = {}
    values = exception_values(KeyError("never raised"), frames=frames, meta=meta)

    assert values == [
        {
            "type": "KeyError",
            "value": "'never raised'",
            "module": "builtins",
            "mechanism": {"type": "generic", "handled": True, "exception_id": 0},
        }
    ]
    assert meta == {}
    assert_relay_accepts(values)


def test_base_exceptions_are_described_too(frames: FrameExtractor) -> None:
    values = exception_values(caught(sys.exit, 3), frames=frames)
    assert (values[0]["type"], values[0]["value"]) == ("SystemExit", "3")


def test_summary_type_is_the_qualified_name() -> None:
    assert exception_summary_type(ValueError()) == "ValueError"
    assert exception_summary_type(helpers.PaymentError()) == f"{helpers.__name__}.PaymentError"
    assert (
        exception_summary_type(helpers.Outer.InnerError()) == f"{helpers.__name__}.Outer.InnerError"
    )
    assert exception_summary_type(caught(helpers.recurse_forever)) == "RecursionError"
