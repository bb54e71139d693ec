"""Structured log records: from what the caller handed over to the wire's `log` item.

The caller keeps a cheap `Entry` (template, parameters, attributes, trace id, time); the record
is built from it on the sender, off the caller's path (`LogBatch.encode_payload`), or in the
caller when `before_send_log` is set, since that hook must see the record. Building applies the
same scrubbing as event data: the serializer filters values under sensitive names and card
numbers, bounds strings, and turns other objects into text. The body is formatted from the
scrubbed parameters, so a filtered parameter stays filtered in the body too.

On the wire a record is ``{timestamp, trace_id, level, severity_number, body, attributes}``, each
attribute ``{"value": ..., "type": "string" | "integer" | "double" | "boolean"}``.
"""

from __future__ import annotations

import math
import string
from collections.abc import Mapping
from typing import Any, NamedTuple

from .._log import INTERNAL, logger
from .._options import Options
from .._version import __version__
from .._wire.codec import dumps
from .scrub import Scrubber
from .serialize import Serializer

# (wire level, severity number), by level index; the number is OpenTelemetry's.
LEVELS: tuple[tuple[str, int], ...] = (
    ("trace", 1),
    ("debug", 5),
    ("info", 9),
    ("warn", 13),
    ("error", 17),
    ("fatal", 21),
)
TRACE, DEBUG, INFO, WARN, ERROR, FATAL = range(6)

PARAMETER = "sentry.message.parameter."
TEMPLATE = "sentry.message.template"
MAX_BODY_CHARS = 8192
# A record is trimmed to this many bytes of JSON, so a batch of 100 fits the item's 1 MiB.
MAX_RECORD_BYTES = 10_000
_TRIMMED_BODY_CHARS = 1024
_INT64 = (-(2**63), 2**63 - 1)
_formatter = string.Formatter()


class Entry(NamedTuple):
    """What the caller hands over: cheap to make, built into a record later."""

    timestamp: float
    level: int
    template: str | None
    body: str | None  # already formatted (a logging record); None: format the template
    args: tuple[Any, ...]
    params: Mapping[str, Any]
    attributes: Mapping[str, Any] | None
    trace_id: str


class _KeepMissing(dict[str, Any]):
    """A missing name stays as written in the template."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


class RecordBuilder:
    """Builds records for one client's options; shared by threads (it keeps no state)."""

    def __init__(self, options: Options, serializer: Serializer, scrubber: Scrubber) -> None:
        self._serializer = serializer
        self._scrubber = scrubber
        defaults: dict[str, Any] = {
            "sentry.sdk.name": "errlink",
            "sentry.sdk.version": __version__,
        }
        optional = {
            "sentry.release": options.release,
            "sentry.environment": options.environment,
            "server.address": options.server_name,
        }
        defaults.update((name, value) for name, value in optional.items() if value is not None)
        self._defaults = defaults

    def build(self, entry: Entry) -> dict[str, Any]:
        """The record as `before_send_log` sees it: plain attribute values, scrubbed."""
        normalize_mapping = self._serializer.normalize_mapping
        attributes: dict[str, Any] = {}
        if entry.attributes:
            attributes.update(normalize_mapping(dict(entry.attributes)))
        params = normalize_mapping(dict(entry.params)) if entry.params else {}
        args = self._serializer.normalize(list(entry.args)) if entry.args else []
        for index, value in enumerate(args):
            attributes[f"{PARAMETER}{index}"] = value
        for name, value in params.items():
            attributes[PARAMETER + name] = value
        template = entry.template
        if template is not None and (params or args):
            attributes[TEMPLATE] = self._text(template)
        body = entry.body
        if body is None:
            body = _format(template or "", args, params)
        for name, value in self._defaults.items():
            attributes.setdefault(name, value)
        level, severity = LEVELS[entry.level]
        return {
            "timestamp": entry.timestamp,
            "trace_id": entry.trace_id,
            "level": level,
            "severity_number": severity,
            "body": self._text(body),
            "attributes": attributes,
        }

    def snapshot(self, value: object) -> Any:
        """`value` as plain data (scrubbed, bounded), taken now."""
        return self._serializer.normalize(value)

    def plain_text(self, value: object) -> str:
        return self._serializer.safe_str(value)

    def _text(self, text: str) -> str:
        if len(text) > MAX_BODY_CHARS:
            text = text[:MAX_BODY_CHARS]
        return self._scrubber.scrub_message(text)  # as Relay scrubs a log's body: e-mails too

    def encode(self, entry: Entry | dict[str, Any]) -> bytes:
        """One record's JSON: an entry is built first; a dict is a record `before_send_log`
        returned. Never raises: a record that cannot be encoded becomes a placeholder."""
        try:
            record = to_wire(self.build(entry) if isinstance(entry, Entry) else entry)
            data = dumps(record)
            if len(data) > MAX_RECORD_BYTES:
                data = dumps(_trimmed(record))
            return data
        except Exception:
            logger.warning("errlink: could not encode a log record", exc_info=True, extra=INTERNAL)
            return dumps(_placeholder(entry))


class LogBatch:
    """Up to 100 entries or records, queued as one `log` item and encoded by the sender."""

    __slots__ = ("builder", "entries")

    def __init__(self, builder: RecordBuilder, entries: list[Entry | dict[str, Any]]) -> None:
        self.builder = builder
        self.entries = entries

    def encode_payload(self, max_bytes: int) -> bytes:
        encode = self.builder.encode
        return b'{"items":[' + b",".join([encode(entry) for entry in self.entries]) + b"]}"


def to_wire(record: Mapping[str, Any]) -> dict[str, Any]:
    """A record (as `build` makes it, perhaps changed by `before_send_log`) in wire form."""
    attributes = record.get("attributes")
    typed: dict[str, Any] = {}
    if isinstance(attributes, Mapping):
        for name, value in attributes.items():
            if value is not None:
                typed[str(name)] = typed_value(value)
    level = record.get("level")
    severity = record.get("severity_number")
    if level not in {name for name, _ in LEVELS}:
        level = "info"
    if type(severity) is not int:
        severity = dict(LEVELS)[str(level)]
    timestamp = record.get("timestamp")
    return {
        "timestamp": float(timestamp) if isinstance(timestamp, int | float) else 0.0,
        "trace_id": str(record.get("trace_id") or ""),
        "level": level,
        "severity_number": severity,
        "body": str(record.get("body", "")),
        "attributes": typed,
    }


def typed_value(value: object) -> dict[str, Any]:
    value_type = type(value)
    if value_type is str:
        return {"value": value, "type": "string"}
    if value_type is bool:
        return {"value": value, "type": "boolean"}
    if value_type is int and _INT64[0] <= value <= _INT64[1]:  # type: ignore[operator]
        return {"value": value, "type": "integer"}
    if value_type is float and math.isfinite(value):  # type: ignore[arg-type]
        return {"value": value, "type": "double"}
    if isinstance(value, dict | list):
        return {"value": dumps(value).decode("utf-8", "replace"), "type": "string"}
    return {"value": str(value), "type": "string"}


def _format(template: str, args: list[Any], params: dict[str, Any]) -> str:
    try:
        if args:
            return _formatter.vformat(template, args, _KeepMissing(params))
        if params:
            return template.format_map(_KeepMissing(params))
        return template
    except Exception:  # a malformed template, or a spec the value does not take
        return template


def _trimmed(record: dict[str, Any]) -> dict[str, Any]:
    """`record` cut to `MAX_RECORD_BYTES`: a shorter body, then the attributes that fit, errlink's
    and the protocol's (``sentry.*``, ``server.*``) first."""
    body = record["body"]
    trimmed = {**record, "body": body[:_TRIMMED_BODY_CHARS], "attributes": {}}
    room = MAX_RECORD_BYTES - len(dumps(trimmed)) - 64
    attributes = record["attributes"]
    first = [name for name in attributes if name.startswith(("sentry.", "server."))]
    chosen = set(first)
    kept: dict[str, Any] = {}
    for name in [*first, *(name for name in attributes if name not in chosen)]:
        size = len(dumps({name: attributes[name]}))
        if size <= room:
            kept[name] = attributes[name]
            room -= size
    kept["errlink.trimmed"] = {"value": True, "type": "boolean"}
    trimmed["attributes"] = kept
    return trimmed


def _placeholder(entry: Entry | dict[str, Any]) -> dict[str, Any]:
    if isinstance(entry, Entry):
        timestamp, trace_id, level = entry.timestamp, entry.trace_id, LEVELS[entry.level]
    else:
        timestamp, trace_id, level = 0.0, "", LEVELS[INFO]
    return {
        "timestamp": timestamp,
        "trace_id": trace_id,
        "level": level[0],
        "severity_number": level[1],
        "body": "<errlink could not encode this log record>",
        "attributes": {},
    }
