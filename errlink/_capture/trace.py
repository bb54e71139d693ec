"""Trace context that links errors across services: ids, incoming headers, outgoing headers.

errlink records no spans. Each scope has a *propagation context*: the trace it belongs to
(`trace_id`), its own `span_id`, and, when the trace came from upstream, the caller's span id
(`parent_span_id`) and sampling decision. Events carry it as ``contexts.trace``; envelopes carry
the trace's *dynamic sampling context* (DSC) as their ``trace`` header; outgoing requests to the
hosts the user names carry ``sentry-trace``, ``baggage`` and W3C ``traceparent``.

Per request an integration installs an `IncomingTrace`: it holds the request's headers and is
resolved only when something needs the ids (an event, an outgoing request), so a request that
neither fails nor calls out pays one small object. Header parsing never raises: anything
malformed starts a new trace, and baggage over the W3C limits is ignored.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Callable, Mapping
from typing import Any, Protocol
from urllib.parse import quote, unquote

BAGGAGE_MAX_BYTES = 8192
BAGGAGE_MAX_MEMBERS = 180
SENTRY_PREFIX = "sentry-"

_SENTRY_TRACE = re.compile(r"[ \t]*([0-9a-f]{32})-([0-9a-f]{16})(?:-([01]))?[ \t]*\Z")
_TRACEPARENT = re.compile(
    r"[ \t]*([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:-.*)?[ \t]*\Z"
)
_INVALID_TRACE_ID = "0" * 32
_INVALID_SPAN_ID = "0" * 16
_random = random.Random()


def new_trace_id() -> str:
    return "%032x" % _random.getrandbits(128)  # noqa: UP031  (the fastest spelling)


def new_span_id() -> str:
    return "%016x" % _random.getrandbits(64)  # noqa: UP031


class PropagationContext:
    """One scope's place in a trace. Immutable once made.

    `baggage`: the incoming ``baggage`` header's members, kept to pass on: `dsc` is the
    ``sentry-`` ones (frozen by the head of the trace, so a downstream service must not change
    them), `third_party` the text of the others.
    """

    __slots__ = ("dsc", "parent_sampled", "parent_span_id", "span_id", "third_party", "trace_id")

    def __init__(
        self,
        trace_id: str | None = None,
        span_id: str | None = None,
        parent_span_id: str | None = None,
        parent_sampled: bool | None = None,
        dsc: Mapping[str, str] | None = None,
        third_party: str = "",
    ) -> None:
        self.trace_id = trace_id or new_trace_id()
        self.span_id = span_id or new_span_id()
        self.parent_span_id = parent_span_id
        self.parent_sampled = parent_sampled
        self.dsc = dsc
        self.third_party = third_party

    def trace_context(self) -> dict[str, Any]:
        """The event's ``contexts.trace``."""
        context: dict[str, Any] = {"trace_id": self.trace_id, "span_id": self.span_id}
        if self.parent_span_id:
            context["parent_span_id"] = self.parent_span_id
        return context

    def sentry_trace(self) -> str:
        sampled = self.parent_sampled
        suffix = "" if sampled is None else ("-1" if sampled else "-0")
        return f"{self.trace_id}-{self.span_id}{suffix}"

    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{'01' if self.parent_sampled else '00'}"

    def __repr__(self) -> str:
        return f"PropagationContext(trace_id={self.trace_id!r}, span_id={self.span_id!r})"


def continue_from(
    sentry_trace: str | None, baggage: str | None, traceparent: str | None
) -> PropagationContext:
    """The context continuing the caller's trace; a new trace when the headers say nothing
    usable. ``sentry-trace`` wins over ``traceparent``. Never raises."""
    try:
        return _continue(sentry_trace, baggage, traceparent)
    except Exception:  # a header of an unexpected type: the request still gets a trace
        return PropagationContext()


def _continue(
    sentry_trace: str | None, baggage: str | None, traceparent: str | None
) -> PropagationContext:
    trace_id = parent_span_id = None
    sampled: bool | None = None
    if sentry_trace:
        match = _SENTRY_TRACE.match(_text(sentry_trace))
        if match is not None:
            trace_id, parent_span_id, flag = match.groups()
            sampled = None if flag is None else flag == "1"
    if trace_id is None and traceparent:
        match = _TRACEPARENT.match(_text(traceparent))
        if match is not None and match.group(1) != "ff":
            trace_id, parent_span_id = match.group(2), match.group(3)
            sampled = bool(int(match.group(4), 16) & 1)
    if trace_id is None or trace_id == _INVALID_TRACE_ID or parent_span_id == _INVALID_SPAN_ID:
        return PropagationContext()
    dsc, third_party = parse_baggage(baggage)
    if dsc is not None and dsc.get("trace_id") != trace_id:
        dsc = None  # baggage from another trace says nothing about this one
    return PropagationContext(trace_id, None, parent_span_id, sampled, dsc, third_party)


def _text(header: str | bytes) -> str:
    return header.decode("latin-1") if isinstance(header, bytes) else header


def parse_baggage(header: str | bytes | None) -> tuple[dict[str, str] | None, str]:
    """The ``sentry-`` members (without the prefix; None if there are none) and the text of the
    others. Baggage over the W3C limits, or not text, is ignored whole."""
    if not header or not isinstance(header, str | bytes):
        return None, ""
    text = _text(header)
    if len(text) > BAGGAGE_MAX_BYTES:
        return None, ""
    members = text.split(",")
    if len(members) > BAGGAGE_MAX_MEMBERS:
        return None, ""
    dsc: dict[str, str] = {}
    others: list[str] = []
    for member in members:
        member = member.strip()
        if not member:
            continue
        key, sep, rest = member.partition("=")
        key = key.strip()
        if not sep or not key:
            continue
        if key.startswith(SENTRY_PREFIX):
            value = rest.split(";", 1)[0].strip()
            dsc[unquote(key[len(SENTRY_PREFIX) :])] = unquote(value)
        else:
            others.append(member)
    return dsc or None, ",".join(others)


def format_baggage(dsc: Mapping[str, str], third_party: str = "") -> str:
    """A ``baggage`` header: the DSC as ``sentry-`` members, then the others passed through."""
    members = [
        f"{SENTRY_PREFIX}{quote(key, safe='')}={quote(str(value), safe='')}"
        for key, value in dsc.items()
        if value is not None and value != ""
    ]
    if third_party:
        members.append(third_party)
    text = ",".join(members)
    return text if len(text) <= BAGGAGE_MAX_BYTES else ",".join(members[:-1] if third_party else [])


class IncomingTrace:
    """A request's trace, read from its headers when first needed.

    `header` looks a header up by its lower-case name (None when absent).
    """

    __slots__ = ("_context", "_header")

    def __init__(self, header: Callable[[str], Any]) -> None:
        self._header = header
        self._context: PropagationContext | None = None

    def resolve(self) -> PropagationContext:
        context = self._context
        if context is None:
            try:
                header = self._header
                context = continue_from(
                    header("sentry-trace"), header("baggage"), header("traceparent")
                )
            except Exception:
                context = PropagationContext()
            self._context = context
        return context


def incoming_from_mapping(headers: Mapping[str, Any]) -> IncomingTrace:
    """An `IncomingTrace` reading a case-insensitive headers mapping (or a WSGI-style one whose
    lookups the caller adapted)."""
    return IncomingTrace(headers.get)


class ResolvesTrace(Protocol):
    """What a scope's `trace` may hold besides a context: anything that resolves to one when
    first needed (an `IncomingTrace`, or a request's own scope that reads its headers)."""

    def resolve(self) -> PropagationContext: ...


TraceSource = PropagationContext | IncomingTrace | ResolvesTrace


def resolve(source: TraceSource | None) -> PropagationContext:
    """The context a scope's `trace` slot stands for: None means the process's own trace."""
    if source is None:
        return process_trace()
    if type(source) is PropagationContext:
        return source
    return source.resolve()  # type: ignore[union-attr]


_process_trace: PropagationContext | None = None


def process_trace() -> PropagationContext:
    """The trace of everything outside a request, task or `new_scope(new_trace=True)`."""
    global _process_trace
    context = _process_trace
    if context is None:
        context = _process_trace = PropagationContext()
    return context


def _forget_process_trace() -> None:
    global _process_trace
    _process_trace = None
    _random.seed()


if hasattr(os, "register_at_fork"):
    # A forked child is another process: its own trace, and ids not repeating its parent's.
    os.register_at_fork(after_in_child=_forget_process_trace)


def dynamic_sampling_context(
    context: PropagationContext,
    public_key: str | None,
    release: str | None,
    environment: str | None,
) -> dict[str, str]:
    """The envelope's ``trace`` header: the head's frozen DSC when the trace came with one,
    else this service's own, as the head of the trace."""
    if context.dsc is not None:
        return dict(context.dsc)
    dsc = {"trace_id": context.trace_id}
    if public_key:
        dsc["public_key"] = public_key
    if release:
        dsc["release"] = release
    if environment:
        dsc["environment"] = environment
    return dsc
