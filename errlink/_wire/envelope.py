"""The Sentry envelope format: encoding for the transport, parsing for the collector.

An envelope is a JSON header line, then for each item a JSON item-header line and the payload.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .codec import Encoder, dumps, loads

CONTENT_TYPE = "application/x-sentry-envelope"


class EnvelopeError(ValueError):
    """The bytes are not a well-formed envelope."""


@dataclass
class Item:
    """One envelope item: its headers (without `length`, added on encoding) and its payload."""

    type: str
    payload: bytes
    headers: dict[str, Any] = field(default_factory=dict)

    def json(self) -> Any:
        return loads(self.payload)


@dataclass
class Envelope:
    headers: dict[str, Any]
    items: list[Item] = field(default_factory=list)

    def add_json(self, item_type: str, payload: Any, *, encode: Encoder = dumps) -> Item:
        item = Item(item_type, encode(payload), {"content_type": "application/json"})
        self.items.append(item)
        return item

    def to_bytes(self, *, encode: Encoder = dumps) -> bytes:
        parts = [encode(self.headers), b"\n"]
        for item in self.items:
            item_headers = {"type": item.type, "length": len(item.payload), **item.headers}
            parts += [encode(item_headers), b"\n", item.payload, b"\n"]
        return b"".join(parts)


def parse_envelope(data: bytes) -> Envelope:
    """Parse envelope bytes strictly: any malformed part raises EnvelopeError with the reason."""
    header_line, pos = _read_line(data, 0)
    headers = _json_object(header_line, "envelope header")
    envelope = Envelope(headers)
    while pos < len(data):
        if data[pos : pos + 1] == b"\n":  # tolerate blank lines between items and at the end
            pos += 1
            continue
        item_line, pos = _read_line(data, pos)
        item_headers = _json_object(item_line, f"item {len(envelope.items)} header")
        item_type = item_headers.pop("type", None)
        if not isinstance(item_type, str) or not item_type:
            raise EnvelopeError(f"item {len(envelope.items)} header has no 'type'")
        length = item_headers.pop("length", None)
        if length is None:
            payload, pos = _read_line(data, pos)
        else:
            if not isinstance(length, int) or isinstance(length, bool) or length < 0:
                raise EnvelopeError(f"item {len(envelope.items)} has an invalid length {length!r}")
            end = pos + length
            if end > len(data):
                raise EnvelopeError(
                    f"item {len(envelope.items)} declares {length} bytes, "
                    f"only {len(data) - pos} remain"
                )
            payload = data[pos:end]
            pos = end
            if pos < len(data):
                if data[pos : pos + 1] != b"\n":
                    raise EnvelopeError(
                        f"item {len(envelope.items)} payload is longer than its length"
                    )
                pos += 1
        envelope.items.append(Item(item_type, payload, item_headers))
    return envelope


def _read_line(data: bytes, pos: int) -> tuple[bytes, int]:
    end = data.find(b"\n", pos)
    if end == -1:
        return data[pos:], len(data)
    return data[pos:end], end + 1


def _json_object(line: bytes, what: str) -> dict[str, Any]:
    try:
        value = loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        raise EnvelopeError(f"{what} is not valid JSON") from exc
    except RecursionError:
        raise EnvelopeError(f"{what} is JSON nested too deeply") from None
    if not isinstance(value, dict):
        raise EnvelopeError(f"{what} is not a JSON object")
    return value
