"""Turning received payloads into rows: validation plus the fields the store indexes."""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import dataclass, field
from typing import Any

from ._attachments import AttachmentRecord
from ._errors import Rejected
from ._feedback import FeedbackRecord
from ._grouping import GroupKey, group_key, is_synthetic_message
from ._logs import LogRecord
from ._monitors import CheckInRecord
from ._release_health import AggregateRecord, SessionUpdateRecord
from ._trace_queries import trace_id_of

# Indexed text columns are cut to this many characters; the payload keeps the full text.
_INDEXED_TEXT_MAX = 1000
# Quantities beyond this are certainly bogus and would overflow SQLite's 64-bit integers.
_QUANTITY_MAX = 2**53


@dataclass(frozen=True)
class EventRecord:
    event_id: str  # 32 lowercase hex characters
    project_id: str
    level: str
    environment: str | None
    release: str | None
    exception_type: str | None
    exception_value: str | None
    message: str | None
    payload_json: str
    group: GroupKey
    trace_id: str | None  # contexts.trace.trace_id when valid


@dataclass(frozen=True)
class Discard:
    reason: str
    category: str
    quantity: int


@dataclass(frozen=True)
class ClientReportRecord:
    project_id: str
    discards: tuple[Discard, ...]
    payload_json: str


@dataclass
class WriteBatch:
    """What one request stores, committed atomically."""

    events: list[EventRecord] = field(default_factory=list)
    client_reports: list[ClientReportRecord] = field(default_factory=list)
    attachments: list[AttachmentRecord] = field(default_factory=list)
    feedback: list[FeedbackRecord] = field(default_factory=list)
    session_updates: list[SessionUpdateRecord] = field(default_factory=list)
    session_aggregates: list[AggregateRecord] = field(default_factory=list)
    check_ins: list[CheckInRecord] = field(default_factory=list)
    logs: list[LogRecord] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(
            self.events
            or self.client_reports
            or self.attachments
            or self.feedback
            or self.session_updates
            or self.session_aggregates
            or self.check_ins
            or self.logs
        )


def normalize_event_id(value: object, where: str) -> str:
    """The event id as 32 lowercase hex characters; 400 when it is not a UUID."""
    if isinstance(value, str):
        try:
            return uuid.UUID(value).hex
        except ValueError:
            pass
    raise Rejected(400, f"{where} event_id {value!r:.60} is not a valid UUID")


def event_record(
    payload: object, *, project_id: str, fallback_event_id: str | None, where: str
) -> EventRecord:
    """Validate an event payload. A missing event_id is filled in, as Sentry does."""
    if not isinstance(payload, dict):
        raise Rejected(400, f"{where} is not a JSON object")
    if payload.get("event_id") is None:
        payload["event_id"] = fallback_event_id or uuid.uuid4().hex
    event_id = normalize_event_id(payload["event_id"], where)
    # First: it replaces NaN and Infinity in the payload, which the fields below are read from.
    payload_json = _to_json(payload, where)
    # A message sent with its stack (a synthetic exception) is a message, in every title.
    exception_type, exception_value = (
        (None, None) if is_synthetic_message(payload) else _main_exception(payload.get("exception"))
    )
    return EventRecord(
        event_id=event_id,
        project_id=project_id,
        level=_indexed(payload.get("level")) or "error",
        environment=_indexed(payload.get("environment")),
        release=_indexed(payload.get("release")),
        exception_type=_indexed(exception_type),
        exception_value=_indexed(exception_value),
        message=_indexed(_message(payload)),
        payload_json=payload_json,
        group=group_key(payload),
        trace_id=trace_id_of(payload),
    )


def client_report_record(payload: object, *, project_id: str, where: str) -> ClientReportRecord:
    if not isinstance(payload, dict):
        raise Rejected(400, f"{where} is not a JSON object")
    entries = payload.get("discarded_events", [])
    if not isinstance(entries, list):
        raise Rejected(400, f"{where} discarded_events is not a list")
    discards = tuple(
        _discard(entry, f"{where} discarded_events[{i}]") for i, entry in enumerate(entries)
    )
    return ClientReportRecord(project_id, discards, _to_json(payload, where))


def _discard(entry: object, where: str) -> Discard:
    if not isinstance(entry, dict):
        raise Rejected(400, f"{where} is not a JSON object")
    reason, category, quantity = entry.get("reason"), entry.get("category"), entry.get("quantity")
    if not isinstance(reason, str) or not isinstance(category, str):
        raise Rejected(400, f"{where} needs string 'reason' and 'category'")
    if (
        not isinstance(quantity, int)
        or isinstance(quantity, bool)
        or not 0 <= quantity <= _QUANTITY_MAX
    ):
        raise Rejected(400, f"{where} 'quantity' must be a non-negative integer")
    return Discard(_safe_text(reason), _safe_text(category), quantity)


def _main_exception(exception: object) -> tuple[object, object]:
    # The chain is listed oldest first: the last value is the one that was finally raised.
    values = exception.get("values") if isinstance(exception, dict) else exception
    if isinstance(values, list) and values and isinstance(values[-1], dict):
        return values[-1].get("type"), values[-1].get("value")
    return None, None


def _message(payload: dict[str, Any]) -> object:
    for key in ("message", "logentry"):
        value = payload.get(key)
        if isinstance(value, dict):
            value = value.get("formatted") or value.get("message")
        if isinstance(value, str) and value:
            return value
    return None


def _indexed(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    return _safe_text(value[:_INDEXED_TEXT_MAX])


def _safe_text(text: str) -> str:
    # JSON may carry lone surrogates ("\ud800"); SQLite only takes valid UTF-8.
    return text.encode("utf-8", "replace").decode("utf-8")


def _to_json(payload: dict[str, Any], where: str) -> str:
    """The payload as strict JSON; NaN and Infinity (which Python's parser accepts) become the
    strings "NaN", "Infinity" and "-Infinity", in `payload` too."""
    try:
        return _strict_json(payload)
    except ValueError:
        pass
    except RecursionError:
        raise Rejected(400, f"{where} cannot be stored as JSON") from None
    _replace_non_finite(payload)
    try:
        return _strict_json(payload)
    except (ValueError, RecursionError):
        raise Rejected(400, f"{where} cannot be stored as JSON") from None


def _strict_json(payload: dict[str, Any]) -> str:
    # ASCII output keeps lone surrogates storable as escapes.
    return json.dumps(payload, ensure_ascii=True, separators=(",", ":"), allow_nan=False)


def _replace_non_finite(payload: dict[str, Any]) -> None:
    # Iterative: a payload may be nested as deeply as the JSON parser allows.
    pending: list[dict[Any, Any] | list[Any]] = [payload]
    while pending:
        node = pending.pop()
        keys = list(node) if isinstance(node, dict) else range(len(node))
        for key in keys:
            value = node[key]
            if isinstance(value, float) and not math.isfinite(value):
                node[key] = "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
            elif isinstance(value, (dict, list)):
                pending.append(value)
