"""Turning arbitrary Python objects into bounded, JSON-able data.

This runs in the host application's thread for every captured error (frame locals, extra,
contexts), so it is written for speed: common types are recognised by exact type, plain values are
copied inline without a function call, and ``_meta`` nodes are only created when something was
actually cut or filtered.

What gets cut is recorded in the protocol's ``_meta`` format, one node per position, child keys
being the dict key or the list index as a string, annotations under the ``""`` key:

* a string cut to ``max_value_length``:
  ``{"len": ORIGINAL_LEN, "rem": [["!limit", "s", START, END]]}``, where ``START:END`` is the
  ``...`` that replaced the tail (the format Relay itself writes when it trims);
* a container cut by breadth or by the node budget: ``{"len": ORIGINAL_LEN}``;
* a container deeper than ``max_depth``, replaced by a short repr: ``{"rem": [["!limit", "s"]]}``;
* a value under a sensitive key: ``{"rem": [["!config", "s"]]}`` (the value becomes ``[Filtered]``);
* a value of a type whose repr() was slow (see `repr_guard`), sent as ``<TypeName object>``:
  ``{"rem": [["!limit", "s"]]}``;
* a card number inside a string: ``["!config", "s", START, END]`` for the ``[Filtered]`` text.
  Each call shares one `ScanBudget` among its strings; past it, a chunk of digits dense with
  card-shaped numbers is filtered whole (same remark) rather than checked number by number.

Bytes are decoded as UTF-8 (invalid sequences become U+FFFD) after slicing to
``max_value_length`` bytes; a ``len`` annotation then counts bytes, not characters.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from itertools import islice
from time import perf_counter
from typing import TYPE_CHECKING, Any

from .repr_guard import SLOW_SECONDS, SLOW_TYPES, SUSPECTS, SlowReprs
from .reprs import (
    MAX_INT_TEXT_BITS,
    SEQUENCE_TYPES,
    BoundedRepr,
    try_repr,
    without_surrogates,
)
from .request_locals import REQUEST_MARKERS, RequestLocals, is_request_object_type
from .sensitive import FILTERED, ScanBudget
from .text_secrets import CLEAN_MAX_CHARS, Span

if TYPE_CHECKING:
    from .scrub import Scrubber

Meta = dict[str, Any]
# Where a value sits in the meta tree: the caller's node itself, or (parent position, key) built
# lazily, so that nothing is allocated in the tree until something has to be written there.
_Where = Any
# A scrubber's text rules (`TextRules.scrub`): (text, budget, known spans) -> (text, spans).
_SpanScrub = Callable[[str, ScanBudget | None, Iterable[Span]], tuple[str, list[Span]]]

# Integers from -2**63 to 2**64 - 1 (written as literals below, for speed) are the widest that
# JSON parsers (orjson, serde_json) take exactly; bigger ones are sent as text.
_CYCLIC = "<cyclic>"
# A card number straddling the cut must be filtered whole, not left as a tell-tale prefix: the
# scrubber sees this much text beyond the cut (19 digits with separators need 37 characters).
_CARD_MARGIN = 40
_LIMIT_REMARK = ["!limit", "s"]
_FILTERED_REMARK = ["!config", "s"]
# A (name, value) pair is a header only if its name is short.
MAX_PAIR_NAME = 64


def _meta_node(where: _Where) -> Meta:
    if type(where) is dict:
        return where
    parent, key = where
    node = _meta_node(parent)
    child: Meta | None = node.get(key)
    if child is None:
        child = node[key] = {}
    return child


def _annotations(where: _Where) -> dict[str, Any]:
    node = _meta_node(where)
    annotations: dict[str, Any] | None = node.get("")
    if annotations is None:
        annotations = node[""] = {}
    return annotations


def _add_remarks(where: _Where, remarks: list[list[Any]]) -> None:
    annotations = _annotations(where)
    existing = annotations.get("rem")
    if existing is None:
        annotations["rem"] = remarks
    else:
        existing.extend(remarks)


# The end of a text cut short is scrubbed again over this many characters: the cut itself may
# make a finding there (`1.2.3.456` cut to `1.2.3.4`, a card number's digits cut from a longer
# number) that the text before the cut did not hold.
_RESCRUB_CHARS = 80


def _scrub_end(
    head: str, spans: list[Span], budget: ScanBudget | None, scrub: _SpanScrub
) -> tuple[str, list[Span]]:
    """``head`` (a scrubbed text, cut) with its end scrubbed again; ``spans``: its
    placeholders, carried over."""
    start = max(0, len(head) - _RESCRUB_CHARS)
    for span_start, span_end in spans:
        if span_start < start < span_end:
            start = span_start  # not from inside a placeholder
    known = [(s - start, e - start) for s, e in spans if s >= start]
    tail, tail_spans = scrub(head[start:], budget, known)
    if tail_spans == known and len(tail) == len(head) - start:
        return head, spans
    return head[:start] + tail, [
        *(span for span in spans if span[0] < start),
        *((s + start, e + start) for s, e in tail_spans),
    ]


def _str_else_repr(value: object) -> str | None:
    try:
        text = str(value)
        return text if type(text) is str else str.__str__(text)
    except Exception:
        return try_repr(value)


# How a type that is not handled inline is turned into data; decided once per type.
_KIND_REPR = 0  # repr() of the object, scrubbed
_KIND_DEFAULT_REPR = 1  # object.__repr__: "<module.Type object at 0x...>", nothing to scrub
_KIND_TEXT = 2  # str subclass: its text
_KIND_INT = 3  # int subclass (not an Enum): its value
_KIND_FLOAT = 4  # float subclass (not an Enum): its value
_KIND_MAPPING = 5
_KIND_SEQUENCE = 6
_KIND_BINARY = 7
_KIND_REQUEST = 8  # request data in an object (see `request_locals`): its privacy-safe view
_KIND_CACHE_SIZE = 1024


def _kind_of(value_type: type) -> int:
    if issubclass(value_type, enum.Enum):
        return _KIND_REPR  # `Color.RED` says more than its value
    if getattr(value_type, "__errlink_repr_only__", False):
        return _KIND_REPR  # errlink's own holders of unscrubbed data, met in frame locals
    if issubclass(value_type, str):
        return _KIND_TEXT
    if issubclass(value_type, int):
        return _KIND_INT
    if issubclass(value_type, float):
        return _KIND_FLOAT
    if issubclass(value_type, bytes | bytearray | memoryview):
        return _KIND_BINARY
    if is_request_object_type(value_type):
        return _KIND_REQUEST
    if issubclass(value_type, Mapping):
        return _KIND_MAPPING
    if issubclass(value_type, SEQUENCE_TYPES):
        return _KIND_SEQUENCE
    if value_type.__repr__ is object.__repr__:
        return _KIND_DEFAULT_REPR
    return _KIND_REPR


class Serializer:
    """Bounded, never-raising conversion of Python values to JSON-able data.

    One instance serves many threads: it holds configuration and caches only; the state of one
    call travels in a ``walk`` list: ``[nodes_left, scan_budget, id(ancestor)...]``. The
    ancestors are the containers being walked, for cycle detection; they can never be mistaken
    for the small budget number because they are memory addresses.
    """

    __slots__ = (
        "_clean",
        "_clean_keys",
        "_cyclic",
        "_ellipsis",
        "_fast_key_len",
        "_fast_len",
        "_filtered",
        "_is_sensitive",
        "_keep",
        "_kinds",
        "_reprs",
        "_request_locals",
        "_scrub_spans",
        "_scrub_text_spans",
        "_sensitive_pair",
        "_slow_reprs",
        "max_breadth",
        "max_depth",
        "max_nodes",
        "max_value_length",
        "scrubber",
    )

    def __init__(
        self,
        *,
        max_value_length: int = 1024,
        max_depth: int = 5,
        max_breadth: int = 50,
        max_nodes: int = 2000,
        scrubber: Scrubber | None = None,
        slow_reprs: SlowReprs | None = None,
    ) -> None:
        for name, limit in (
            ("max_value_length", max_value_length),
            ("max_depth", max_depth),
            ("max_breadth", max_breadth),
            ("max_nodes", max_nodes),
        ):
            if type(limit) is not int or limit < 1:
                raise ValueError(f"{name} must be a positive integer, not {limit!r}")
        self.max_value_length = max_value_length
        self.max_depth = max_depth
        self.max_breadth = max_breadth
        self.max_nodes = max_nodes
        self.scrubber = scrubber
        self._reprs = BoundedRepr(max_value_length, max_breadth, scrubber, slow_reprs)
        self._slow_reprs = self._reprs.slow_reprs
        self._keep = self._reprs.keep
        self._ellipsis = self._reprs.ellipsis
        # Even the markers respect the limit (only ever matters for tiny limits).
        self._cyclic = self._cut(_CYCLIC)
        self._filtered = self._cut(FILTERED)
        self._is_sensitive: Callable[[str], bool] | None = None
        self._scrub_spans: _SpanScrub | None = None
        self._scrub_text_spans: _SpanScrub | None = None
        self._sensitive_pair: Callable[[object], bool] | None = None
        self._request_locals: RequestLocals | None = None
        if scrubber is not None:
            self._request_locals = RequestLocals(scrubber)
            self._is_sensitive = self._request_locals.sensitive_key
            self._scrub_spans = scrubber.value_rules.scrub
            self._scrub_text_spans = scrubber.text_rules.scrub
            self._sensitive_pair = scrubber.sensitive_pair_name
        # ASCII strings up to this length are copied as they are (shorter than anything a text
        # rule changes, when scrubbing), and so are those known to hold nothing (`_clean`):
        # values as data values, keys as text.
        self._fast_len = max_value_length
        self._fast_key_len = max_value_length
        self._clean: set[str] | frozenset[str] = frozenset()
        self._clean_keys: set[str] | frozenset[str] = frozenset()
        if scrubber is not None:
            self._fast_len = min(max_value_length, scrubber.value_rules.shortest - 1)
            self._fast_key_len = min(max_value_length, scrubber.text_rules.shortest - 1)
            if max_value_length >= CLEAN_MAX_CHARS:  # what is known clean needs no cut either
                self._clean = scrubber.value_rules.clean
                self._clean_keys = scrubber.text_rules.clean
        self._kinds: dict[type, int] = {}

    # -- public ---------------------------------------------------------------------------------

    def normalize(self, value: object, meta: Meta | None = None) -> Any:
        """JSON-able copy of ``value`` within limits; never raises.

        If ``meta`` is given, what was cut or filtered is recorded in it (see the module doc).
        """
        try:
            return self._value(value, 1, [self.max_nodes - 1, ScanBudget()], meta)
        except Exception:
            return self._placeholder("unserializable", value)

    def normalize_mapping(
        self,
        mapping: Mapping[Any, object],
        meta: Meta | None = None,
        budget: ScanBudget | None = None,
    ) -> dict[str, Any]:
        """Like `normalize`, but always a dict (``{}`` when ``mapping`` is not a mapping).

        ``budget``: for scanning text for card numbers, when several calls are to share one."""
        result: Any = None
        try:
            walk: list[Any] = [self.max_nodes - 1, ScanBudget() if budget is None else budget]
            if type(mapping) is dict:
                result = self._mapping(mapping, len(mapping), 1, walk, meta)
            else:
                result = self._value(mapping, 1, walk, meta)
        except Exception:
            pass
        if type(result) is dict:
            return result
        if meta is not None and mapping is not None:
            errors = _annotations(meta).setdefault("err", [])
            errors.append(["invalid_data", {"reason": "expected a mapping"}])
        return {}

    def mapping_normalizer(self) -> Callable[[Mapping[Any, object], Meta], dict[str, Any]]:
        """`normalize_mapping` for a group of mappings that share one card-scan budget (the
        frames of one stack trace); a frame's raw request body is scrubbed as one."""
        budget = ScanBudget()
        views = self._request_locals
        if views is None:
            return partial(self.normalize_mapping, budget=budget)

        def normalize_locals(f_locals: Mapping[Any, object], meta: Meta) -> dict[str, Any]:
            return self.normalize_mapping(views.frame_view(f_locals), meta, budget)

        return normalize_locals

    def safe_repr(self, value: object) -> str:
        """repr() bounded to ``max_value_length``; never raises, never builds the repr of a
        whole builtin container or string. Scrubbed as text, not as a data value."""
        try:
            return self._text(self._bounded_repr(value), None, scrub=self._scrub_text_spans)
        except Exception:
            return self._placeholder("unrepresentable", value)

    def safe_str(self, value: object) -> str:
        """str() bounded to ``max_value_length``, falling back to repr, then to a placeholder.
        Scrubbed as text (a tag, a message), not as a data value."""
        as_text = self._scrub_text_spans
        try:
            if isinstance(value, str):
                head = str.__getitem__(value, slice(0, self._window()))
                return self._text(head, None, len(value), scrub=as_text)
            if isinstance(value, bytes | bytearray | dict | list | tuple | set | frozenset | deque):
                return self._text(self._bounded_repr(value), None, scrub=as_text)
            text = self._slow_reprs.guarded(_str_else_repr, value)
            if text is None:
                return self._placeholder("unprintable", value)
            return self._text(text, None, scrub=as_text)
        except Exception:
            return self._placeholder("unprintable", value)

    # -- values ---------------------------------------------------------------------------------

    def _value(self, value: Any, depth: int, walk: list[Any], where: _Where) -> Any:
        value_type = type(value)
        if value_type is str:
            if (len(value) <= self._fast_len and value.isascii()) or value in self._clean:
                return value
            return self._text(value, where, -1, walk[1])
        if value_type is int:
            if -0x8000000000000000 <= value <= 0xFFFFFFFFFFFFFFFF:
                return value
            return self._big_int(value, where, walk[1])
        if value is None or value_type is bool or (value_type is float and value - value == 0.0):
            return value
        if value_type is dict:
            return self._mapping(value, len(value), depth, walk, where)
        if value_type is list or value_type is tuple:
            return self._sequence(value, len(value), depth, walk, where)
        return self._other(value, value_type, depth, walk, where)

    def _other(
        self, value: Any, value_type: type, depth: int, walk: list[Any], where: _Where
    ) -> Any:
        """Everything `_value` does not handle inline."""
        try:
            if value_type is float:
                return self._cut(repr(value))  # nan, inf, -inf: JSON has no such numbers
            if value_type is set or value_type is frozenset or value_type is deque:
                return self._sequence(value, len(value), depth, walk, where)
            kinds = self._kinds
            kind = kinds.get(value_type)
            if kind is None:
                if len(kinds) >= _KIND_CACHE_SIZE:
                    kinds.clear()  # classes created at run time must not grow this forever
                kind = kinds[value_type] = _kind_of(value_type)
            if kind == _KIND_REQUEST:
                views = self._request_locals
                view = try_repr(value) if views is None else views.object_view(value)
                return self._value(view, depth, walk, where)
            if kind == _KIND_DEFAULT_REPR:
                default_repr = object.__repr__(value)
                if len(default_repr) <= self.max_value_length and default_repr.isascii():
                    return default_repr
                return self._text(default_repr, where, -1, walk[1])
            if kind == _KIND_REPR:
                if value_type in SLOW_TYPES:
                    if where is not None:
                        _add_remarks(where, [list(_LIMIT_REMARK)])
                    return self._reprs.slow_placeholder(value)
                start = perf_counter()
                text = try_repr(value)
                elapsed = perf_counter() - start
                if elapsed > SLOW_SECONDS:
                    self._slow_reprs.was_slow(value_type, elapsed)
                elif SUSPECTS:
                    SUSPECTS.pop(value_type, None)
                if text is None:
                    return self._placeholder("unrepresentable", value)
                return self._text(text, where, -1, walk[1])
            if kind == _KIND_MAPPING:
                return self._mapping(value, len(value), depth, walk, where)
            if kind == _KIND_SEQUENCE:
                return self._sequence(value, len(value), depth, walk, where)
            if kind == _KIND_TEXT:
                head = str.__getitem__(value, slice(0, self._window()))
                return self._text(head, where, str.__len__(value), walk[1])
            if kind == _KIND_INT:
                return self._value(int.__int__(value), depth, walk, where)
            if kind == _KIND_FLOAT:
                return self._value(float.__float__(value), depth, walk, where)
            return self._binary(value, where, walk[1])
        except Exception:
            return self._placeholder("unrepresentable", value)

    def _mapping(
        self, mapping: Mapping[Any, Any], length: int, depth: int, walk: list[Any], where: _Where
    ) -> dict[str, Any] | str:
        if depth > self.max_depth:
            return self._too_deep(mapping, where)
        mapping_id = id(mapping)
        if mapping_id in walk:
            return self._cyclic
        views = self._request_locals
        # `REQUEST_MARKERS` spelled out: four lookups cost half of one set operation.
        if views is not None and (
            "asgi" in mapping
            or "REQUEST_METHOD" in mapping
            or "requestContext" in mapping
            or "httpMethod" in mapping
        ):
            mapping = views.mapping_view(mapping)
            length = len(mapping)
        take = length
        if take > self.max_breadth:
            take = self.max_breadth
        if take > walk[0]:
            take = walk[0]
        walk[0] -= take
        result: dict[str, Any] = {}
        fast_len = self._fast_len
        fast_key_len = self._fast_key_len
        clean = self._clean
        clean_keys = self._clean_keys
        is_sensitive = self._is_sensitive
        child_depth = depth + 1
        walk.append(mapping_id)
        try:
            items = mapping.items() if take >= length else islice(mapping.items(), take)
            for key, item in items:
                if type(key) is not str or (
                    (len(key) > fast_key_len or not key.isascii()) and key not in clean_keys
                ):
                    key = self._key(key)
                if is_sensitive is not None and is_sensitive(key):
                    result[key] = self._filtered
                    if where is not None:
                        _add_remarks((where, key), [list(_FILTERED_REMARK)])
                    continue
                item_type = type(item)
                if item_type is str:
                    if (len(item) <= fast_len and item.isascii()) or item in clean:
                        result[key] = item
                    else:
                        result[key] = self._text(
                            item, None if where is None else (where, key), -1, walk[1]
                        )
                elif (
                    (item_type is int and -0x8000000000000000 <= item <= 0xFFFFFFFFFFFFFFFF)
                    or item is None
                    or item_type is bool
                    or (item_type is float and item - item == 0.0)  # finite
                ):
                    result[key] = item
                elif item_type is dict:
                    result[key] = self._mapping(
                        item, len(item), child_depth, walk, None if where is None else (where, key)
                    )
                elif item_type is list or item_type is tuple:
                    result[key] = self._sequence(
                        item, len(item), child_depth, walk, None if where is None else (where, key)
                    )
                else:
                    result[key] = self._value(
                        item, child_depth, walk, None if where is None else (where, key)
                    )
        except Exception:
            pass  # e.g. mutated by another thread mid-walk: keep what was read
        finally:
            walk.pop()
        if length > take and where is not None:
            _annotations(where)["len"] = length
        return result

    def _sequence(
        self, sequence: Any, length: int, depth: int, walk: list[Any], where: _Where
    ) -> list[Any] | str:
        if depth > self.max_depth:
            return self._too_deep(sequence, where)
        sequence_id = id(sequence)
        if sequence_id in walk:
            return self._cyclic
        if length == 2 and self._sensitive_pair is not None:
            pair = self._filtered_pair(sequence, depth, walk, where)
            if pair is not None:
                return pair
        take = length
        if take > self.max_breadth:
            take = self.max_breadth
        if take > walk[0]:
            take = walk[0]
        walk[0] -= take
        result: list[Any] = []
        append = result.append
        fast_len = self._fast_len
        clean = self._clean
        child_depth = depth + 1
        walk.append(sequence_id)
        try:
            sequence_type = type(sequence)
            if take >= length:
                items = sequence
            elif sequence_type is list or sequence_type is tuple:
                items = sequence[:take]
            else:
                items = islice(sequence, take)
            for item in items:
                item_type = type(item)
                if (
                    (item_type is int and -0x8000000000000000 <= item <= 0xFFFFFFFFFFFFFFFF)
                    or (
                        item_type is str
                        and ((len(item) <= fast_len and item.isascii()) or item in clean)
                    )
                    or item is None
                    or item_type is bool
                    or (item_type is float and item - item == 0.0)  # finite
                ):
                    append(item)
                else:
                    position = None if where is None else (where, str(len(result)))
                    append(self._value(item, child_depth, walk, position))
        except Exception:
            pass  # e.g. a deque mutated by another thread mid-walk: keep what was read
        finally:
            walk.pop()
        if length > take and where is not None:
            _annotations(where)["len"] = length
        return result

    def _filtered_pair(
        self, pair: Any, depth: int, walk: list[Any], where: _Where
    ) -> list[Any] | None:
        """``[name, "[Filtered]"]`` for a ``(name, value)`` pair whose name is sensitive (a
        header list's entry); None for anything else."""
        pair_type = type(pair)
        if pair_type is not tuple and pair_type is not list:
            return None
        name = pair[0]
        name_type = type(name)
        if (name_type is not str and name_type is not bytes) or len(name) > MAX_PAIR_NAME:
            return None
        assert self._sensitive_pair is not None
        if not self._sensitive_pair(name):
            return None
        if where is not None:
            _add_remarks((where, "1"), [list(_FILTERED_REMARK)])
        return [self._value(name, depth + 1, walk, None), self._filtered]

    def _key(self, key: object) -> str:
        if key is None:
            return self._cut("None")
        if isinstance(key, str):
            head = str.__getitem__(key, slice(0, self._window()))
            return self._text(head, None, str.__len__(key), scrub=self._scrub_text_spans)
        return self.safe_str(key)

    # -- text -----------------------------------------------------------------------------------

    def _window(self) -> int:
        """How much of a long text is looked at before cutting it."""
        return self._keep + _CARD_MARGIN

    def _text(
        self,
        text: str,
        where: _Where,
        total: int = -1,
        budget: ScanBudget | None = None,
        scrub: _SpanScrub | None = None,
    ) -> str:
        """``text`` cut to ``max_value_length``, made UTF-8 safe and scrubbed: as a data value,
        or by ``scrub`` (the text rules, for text the serializer makes: keys, str()).

        ``total`` is the length of the original value when ``text`` is already a slice of it.
        Work is proportional to ``max_value_length``, never to the length of the original.
        """
        if total < 0:
            total = len(text)
        limit = self.max_value_length
        cut = total > limit
        if cut:
            text = text[: self._window()]
        if not text.isascii():
            text = without_surrogates(text)
        if scrub is None:
            scrub = self._scrub_spans
        spans: list[Span] = []
        if scrub is not None:
            text, spans = scrub(text, budget, ())
            if cut and text == FILTERED and spans == [(0, len(FILTERED))] and limit >= len(text):
                cut = False  # filtered whole (it names a secret): nothing left to cut
                if where is not None:
                    _annotations(where)["len"] = total
        if not cut:
            if spans and where is not None:
                _add_remarks(where, [["!config", "s", start, end] for start, end in spans])
            return text
        head = text[: self._keep]
        kept = len(head)
        spans = [(start, min(end, kept)) for start, end in spans if start < kept]
        if scrub is not None:
            head, spans = _scrub_end(head, spans, budget, scrub)
        result = head + self._ellipsis
        if where is not None:
            remarks = [["!config", "s", start, end] for start, end in spans]
            remarks.append(["!limit", "s", len(head), len(result)])
            _add_remarks(where, remarks)
            _annotations(where)["len"] = total
        return result

    def _binary(self, value: Any, where: _Where, budget: ScanBudget | None) -> str:
        if type(value) is memoryview or isinstance(value, memoryview):
            view = value.cast("B") if value.ndim != 1 or value.format != "B" else value
            total = view.nbytes
            head = view[: self.max_value_length].tobytes()
        else:
            total = len(value)
            head = value[: self.max_value_length]
        return self._text(head.decode("utf-8", "replace"), where, total, budget)

    def _big_int(self, value: int, where: _Where, budget: ScanBudget | None) -> str:
        bits = value.bit_length()
        if bits > MAX_INT_TEXT_BITS:
            return self._cut(f"<int of {bits} bits>")
        return self._text(str(value), where, -1, budget)

    # -- reprs ----------------------------------------------------------------------------------

    def _too_deep(self, container: Any, where: _Where) -> str:
        if where is not None:
            _add_remarks(where, [list(_LIMIT_REMARK)])
        try:
            views = self._request_locals
            if (
                views is not None
                and isinstance(container, Mapping)
                and not container.keys().isdisjoint(REQUEST_MARKERS)
                and views.mapping_view(container) is not container
            ):
                return self._cut("<request data>")  # a repr would not open its parts to scrub
            return self._text(self._bounded_repr(container), None)
        except Exception:
            return self._placeholder("unrepresentable", container)

    def _bounded_repr(self, value: object) -> str:
        return self._reprs.bounded(value)

    def _placeholder(self, what: str, value: object) -> str:
        return self._reprs.placeholder(what, value)

    def _cut(self, text: str) -> str:
        return self._reprs.cut(text)
