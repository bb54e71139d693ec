"""What goes into the outbox and what comes out of it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


class OutboxUnavailable(Exception):
    """The outbox file cannot be used (not a database, another format version, no permission)."""


@dataclass(frozen=True)
class SpillRecord:
    """An event on its way to disk: its encoded JSON payload and what the drain needs to send it.

    `extras`: the rest of its envelope, in envelope format (a header line with the envelope
    headers besides the usual ones, then any further items), or None.
    """

    event_id: str
    item_type: str
    category: str
    payload: bytes
    extras: bytes | None = None


@dataclass(frozen=True)
class StoredEvent:
    """A claimed row, ready to send. `own` is True when this store's process wrote it."""

    row_id: int
    event_id: str
    item_type: str
    category: str
    payload: bytes
    own: bool
    extras: bytes | None = None


@dataclass(frozen=True)
class Removal:
    """Rows deleted without being delivered (expired, evicted, unreadable), by reason."""

    reason: str
    category: str
    own: bool
    quantity: int


@dataclass(frozen=True)
class Claim:
    events: list[StoredEvent]
    removals: list[Removal]
    leased_elsewhere: int
    """Rows of this target leased by another live claimer (worth looking at again later)."""


def outbox_target(dsn: object | None, transport: object | None) -> str:
    """Which server a client's rows are for: rows are only ever drained to the same one.

    A short hash of the envelope URL and public key (or of the custom transport's class), so
    clients with different DSNs can share one file without sending each other's events.
    """
    if transport is not None:
        text = f"transport:{type(transport).__module__}.{type(transport).__qualname__}"
    else:
        text = f"{getattr(dsn, 'envelope_url', '')} {getattr(dsn, 'public_key', '')}"
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]
