"""Real code for the stack and exception tests: frames here have source on disk.

Line positions matter to the tests only through `marker_line`, which finds them by text.
"""

from __future__ import annotations

import builtins
import sys
from types import FrameType
from typing import Any

# Python 3.11+; the tests that need it are skipped on 3.10.
ExceptionGroup: Any = vars(builtins).get("ExceptionGroup")


class PaymentError(Exception):
    pass


class Outer:
    class InnerError(Exception):
        pass


class Account:
    def withdraw(self, amount: int) -> None:
        balance = 10
        if amount > balance:
            raise PaymentError(f"cannot withdraw {amount}")  # marker: withdraw-raise


def call_chain(depth: int) -> None:
    """Raise ValueError `depth` calls deep, each frame holding five locals."""
    first, second, third, fourth = depth, "x" * depth, [depth], {"depth": depth}
    if depth <= 1:
        raise ValueError("bottom reached")  # marker: chain-raise
    call_chain(depth - 1)
    del first, second, third, fourth


def recurse_forever(level: int = 0) -> int:
    return recurse_forever(level + 1) + 1  # marker: recursion


def raise_from() -> None:
    try:
        int("not a number")
    except ValueError as low:
        raise RuntimeError("conversion failed") from low  # marker: raise-from


def raise_implicitly() -> None:
    try:
        {}["missing"]
    except KeyError:
        raise TypeError("while handling")  # noqa: B904  # marker: implicit


def raise_suppressed() -> None:
    try:
        {}["missing"]
    except KeyError:
        raise TypeError("context hidden") from None


def nested_group() -> None:
    """Raise Group("outer", [ValueError, Group("inner", [KeyError, OSError]), TypeError-from-x])."""
    errors: list[Exception] = []
    try:
        raise ValueError("one")
    except ValueError as e:
        errors.append(e)
    inner: list[Exception] = []
    for exc in (KeyError("two"), OSError("three")):
        try:
            raise exc
        except Exception as e:
            inner.append(e)
    try:
        raise ExceptionGroup("inner", inner)
    except Exception as e:
        errors.append(e)
    try:
        try:
            raise LookupError("cause")
        except LookupError as cause:
            raise TypeError("four") from cause
    except TypeError as e:
        errors.append(e)
    raise ExceptionGroup("outer", errors)


def current_frame() -> FrameType:
    return sys._getframe()


def take_stack(extractor: Any) -> dict[str, Any]:
    local_marker = "here"
    stack: dict[str, Any] = extractor.from_stack()
    return stack if local_marker else {}


def marker_line(marker: str) -> int:
    with open(__file__, encoding="utf-8") as file:
        for number, line in enumerate(file, start=1):
            if f"# marker: {marker}" in line:
                return number
    raise LookupError(marker)
