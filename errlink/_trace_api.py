"""Trace propagation by hand: continue a caller's trace, and headers to pass one on.

The integrations do both for the frameworks and HTTP clients they hook; these are for
everything else (a message queue, a custom RPC)::

    with errlink.continue_trace(message.headers):
        handle(message)                      # its events carry the sender's trace_id

    publish(body, headers=errlink.trace_headers())
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from ._capture.binding import current_client
from ._capture.scope import current_scope, new_scope
from ._capture.trace import (
    PropagationContext,
    continue_from,
    dynamic_sampling_context,
    format_baggage,
)
from ._capture.trace import resolve as resolve_trace


def current_trace() -> PropagationContext:
    """The propagation context events captured here would carry."""
    return resolve_trace(current_scope().trace)


@contextmanager
def continue_trace(headers: Mapping[str, Any] | None) -> Iterator[PropagationContext]:
    """A new scope continuing the trace that `headers` carry (``sentry-trace`` and
    ``baggage``, else W3C ``traceparent``; names in any case); a new trace when they carry
    none or a malformed one. Never raises on bad headers."""
    found = _lower_case(headers)
    context = continue_from(
        found.get("sentry-trace"), found.get("baggage"), found.get("traceparent")
    )
    with new_scope() as scope:
        scope.trace = context
        yield context


def trace_headers() -> dict[str, str]:
    """``sentry-trace``, ``baggage`` and ``traceparent`` for a request made here."""
    context = current_trace()
    core = current_client()
    options = core.options if core is not None else None
    dsc = dynamic_sampling_context(
        context,
        options.dsn.public_key if options is not None and options.dsn is not None else None,
        options.release if options is not None else None,
        options.environment if options is not None else None,
    )
    headers = {"sentry-trace": context.sentry_trace(), "traceparent": context.traceparent()}
    baggage = format_baggage(dsc, context.third_party)
    if baggage:
        headers["baggage"] = baggage
    return headers


def _lower_case(headers: Mapping[str, Any] | None) -> dict[str, Any]:
    if not headers:
        return {}
    try:
        return {str(name).lower(): value for name, value in headers.items()}
    except Exception:
        return {}
