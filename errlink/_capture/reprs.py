"""Bounded reprs: what a value that is not plain data looks like in an event, never too long."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Mapping
from itertools import islice
from typing import TYPE_CHECKING, Any

from .repr_guard import SlowReprs
from .sensitive import FILTERED

if TYPE_CHECKING:
    from .scrub import Scrubber

# Integers wider than this are sent as a placeholder: int -> str is quadratic (~1200 digits).
MAX_INT_TEXT_BITS = 4000
ELLIPSIS = "..."
_SURROGATE = re.compile("[\ud800-\udfff]")

SEQUENCE_TYPES = (list, tuple, set, frozenset, deque)
_BRACKETS: dict[type, tuple[str, str]] = {
    list: ("[", "]"),
    tuple: ("(", ")"),
    set: ("{", "}"),
    frozenset: ("frozenset({", "})"),
    deque: ("deque([", "])"),
}


def without_surrogates(text: str) -> str:
    """``text`` safe for UTF-8 encoders: surrogate pairs joined, lone surrogates -> U+FFFD."""
    if _SURROGATE.search(text) is None:
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def type_name(value: object) -> str:
    try:
        name = type(value).__qualname__
    except Exception:
        return "object"
    return name if type(name) is str else "object"


def try_repr(value: object) -> str | None:
    try:
        text = repr(value)
    except Exception:  # includes RecursionError from a self-referencing __repr__
        return None
    return text if type(text) is str else str.__str__(text)


class BoundedRepr:
    """reprs within ``max_value_length``; containers show their first ``max_breadth`` items
    with the values of sensitive keys filtered; values of a type known to be slow to repr show
    as ``<TypeName object>`` (see `repr_guard`)."""

    __slots__ = (
        "_scrubber",
        "ellipsis",
        "keep",
        "max_breadth",
        "max_value_length",
        "slow_reprs",
    )

    def __init__(
        self,
        max_value_length: int,
        max_breadth: int,
        scrubber: Scrubber | None,
        slow_reprs: SlowReprs | None = None,
    ) -> None:
        self.max_value_length = max_value_length
        self.max_breadth = max_breadth
        self._scrubber = scrubber
        self.slow_reprs = SlowReprs() if slow_reprs is None else slow_reprs
        self.keep = max(max_value_length - len(ELLIPSIS), 0)
        self.ellipsis = ELLIPSIS[: max_value_length - self.keep]

    def _is_sensitive_key(self, key: object) -> bool:
        return self._scrubber is not None and self._scrubber.is_sensitive_key(key)

    def bounded(self, value: object) -> str:
        """A repr no longer than about ``max_value_length`` for builtin strings, bytes and
        containers (built from their first items only); plain repr() for anything else."""
        value_type = type(value)
        if isinstance(value, str):
            return repr(str.__getitem__(value, slice(0, self.max_value_length)))
        if value_type is bytes or value_type is bytearray:
            return repr(value[: self.max_value_length])  # type: ignore[index]
        if value_type is int and value.bit_length() > MAX_INT_TEXT_BITS:  # type: ignore[attr-defined]
            return f"<int of {value.bit_length()} bits>"  # type: ignore[attr-defined]
        if isinstance(value, dict | Mapping | list | tuple | set | frozenset | deque):
            return self._container(value)
        text = self.slow_reprs.guarded(try_repr, value)
        return text if text is not None else self.placeholder("unrepresentable", value)

    def _container(self, container: Any) -> str:
        limit = self.max_value_length
        is_mapping = isinstance(container, dict | Mapping)
        if is_mapping:
            opening, closing = "{", "}"
            items: Any = container.items()
        else:
            base = next(cls for cls in type(container).__mro__ if cls in _BRACKETS)
            opening, closing = _BRACKETS[base]
            items = container
        parts: list[str] = []
        size = 0
        length = len(container)
        for item in islice(items, self.max_breadth):
            if is_mapping:
                key, item_value = item
                sensitive = self._is_sensitive_key(key)
                shown = FILTERED if sensitive else item_value
                part = f"{self._short(key)}: {self._short(shown)}"
            else:
                part = self._short(item)
            parts.append(part)
            size += len(part) + 2
            if size >= limit:
                break
        if len(parts) < length:
            parts.append(ELLIPSIS)
        if not parts and type(container) is set:
            return "set()"
        inner = ", ".join(parts)
        if type(container) is tuple and length == 1:
            inner += ","
        text = f"{opening}{inner}{closing}"
        if type(container) not in _BRACKETS and type(container) is not dict:
            text = f"{type_name(container)}({text})"
        return text

    def _short(self, value: object) -> str:
        """repr of one element inside a container repr: nested containers are not opened."""
        value_type = type(value)
        if value is None or value_type is bool or value_type is float:
            return repr(value)
        if value_type is int:
            return repr(value) if value.bit_length() <= MAX_INT_TEXT_BITS else "<int>"  # type: ignore[attr-defined]
        if isinstance(value, dict | Mapping):
            return "{...}" if len(value) else "{}"
        if isinstance(value, SEQUENCE_TYPES):
            base = next(cls for cls in type(value).__mro__ if cls in _BRACKETS)
            opening, closing = _BRACKETS[base]
            return f"{opening}{'...' if len(value) else ''}{closing}"
        text = self.bounded(value)
        return text[: self.max_value_length]

    def placeholder(self, what: str, value: object) -> str:
        return self.cut(without_surrogates(f"<{what} {type_name(value)} object>"))

    def slow_placeholder(self, value: object) -> str:
        """What a value of a slow type is sent as (counted)."""
        self.slow_reprs.count_placeholder()
        return self.cut(without_surrogates(f"<{type_name(value)} object>"))

    def cut(self, text: str) -> str:
        """``text`` within ``max_value_length``, for texts we make ourselves (no meta, no
        scrubbing needed)."""
        if len(text) <= self.max_value_length:
            return text
        return text[: self.keep] + self.ellipsis
