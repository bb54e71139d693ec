"""Item kinds: what an envelope can carry, and how the pipeline treats each.

A kind declares its envelope item type, the data category that rate limits and client reports
use for it, its size limit and its queue policy. The sender loop knows nothing about particular
kinds: adding one means declaring it here (or with `declare` elsewhere), nothing more.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .._wire.codec import dumps, loads
from .limits import fit_event

Encode = Callable[[Any, int], bytes]

KiB = 1024
MiB = 1024 * KiB


def encode_json(payload: Any, max_bytes: int) -> bytes:
    """JSON, whole; the pipeline drops a payload over `max_bytes`."""
    return payload if isinstance(payload, bytes) else dumps(payload)


def encode_event(event: dict[str, Any], max_bytes: int) -> bytes:
    """The event's JSON payload, trimmed to fit `max_bytes` (the one call site of the size cap)."""
    return fit_event(event, dumps, max_bytes)


@dataclass(frozen=True)
class ItemKind:
    """One kind of envelope item.

    `max_bytes`: the payload's limit; None means the client's `max_event_bytes`, and such a
    payload is trimmed to fit rather than dropped. `own_queue`: None shares the main queue
    (`queue_size`); a number gives the kind a bound of its own, so a flood of it cannot crowd
    out errors, nor errors it. `is_event`: carries an `event_id` that goes in the envelope
    header, and passes through `before_send`.
    """

    item_type: str
    category: str
    max_bytes: int | None = None
    own_queue: int | None = None
    is_event: bool = False
    encode: Encode = encode_json
    content_type: str = "application/json"
    # A container of several records (logs): its item header says how many (`item_count`).
    counts_items: bool = False

    def limit(self, max_event_bytes: int) -> int:
        return max_event_bytes if self.max_bytes is None else self.max_bytes

    @property
    def trims_to_fit(self) -> bool:
        return self.max_bytes is None


_KINDS: dict[str, ItemKind] = {}


def declare(kind: ItemKind) -> ItemKind:
    """Make `kind` known (idempotent for an identical declaration)."""
    known = _KINDS.get(kind.item_type)
    if known is not None and known != kind:
        raise ValueError(f"item type {kind.item_type!r} is already declared differently")
    _KINDS[kind.item_type] = kind
    return kind


def kind_of(item_type: str) -> ItemKind:
    """The declared kind of `item_type`; an undeclared type is its own category."""
    kind = _KINDS.get(item_type)
    return kind if kind is not None else ItemKind(item_type, item_type)


def encode_deferred(payload: Any, max_bytes: int) -> bytes:
    """A payload that builds itself on the sender (`encode_payload`), off the caller's path;
    else JSON."""
    encode = getattr(payload, "encode_payload", None)
    return encode(max_bytes) if encode is not None else encode_json(payload, max_bytes)


def item_headers(kind: ItemKind, payload: bytes, count: int | None = None) -> dict[str, Any]:
    """The item header fields besides `type` and `length`: `content_type`, and for a container
    `item_count` (`count`, or read from the payload when it is not known)."""
    headers: dict[str, Any] = {"content_type": kind.content_type}
    if kind.counts_items:
        if count is None:
            try:
                count = len(loads(payload)["items"])
            except Exception:
                count = 0
        headers["item_count"] = count
    return headers


EVENT = declare(ItemKind("event", "error", is_event=True, encode=encode_event))
TRANSACTION = declare(ItemKind("transaction", "transaction", is_event=True, encode=encode_event))
ATTACHMENT = declare(ItemKind("attachment", "attachment", max_bytes=20 * MiB))
SESSION = declare(ItemKind("session", "session", max_bytes=100 * KiB, own_queue=100))
SESSIONS = declare(ItemKind("sessions", "session", max_bytes=100 * KiB, own_queue=100))
CHECK_IN = declare(ItemKind("check_in", "monitor", max_bytes=100 * KiB, own_queue=100))
FEEDBACK = declare(ItemKind("feedback", "feedback", max_bytes=1 * MiB))
USER_REPORT = declare(ItemKind("user_report", "user_report_v2", max_bytes=1 * MiB))
# Each queued item is one batch of up to 100 records (`_capture/log_batch.py`).
LOG = declare(
    ItemKind(
        "log",
        "log_item",
        max_bytes=1 * MiB,
        own_queue=100,
        encode=encode_deferred,
        content_type="application/vnd.sentry.items.log+json",
        counts_items=True,
    )
)
# Never queued: a client report rides along with whatever envelope goes out next.
CLIENT_REPORT = declare(ItemKind("client_report", "internal", max_bytes=64 * KiB))


def event_kind(event: dict[str, Any]) -> ItemKind:
    return TRANSACTION if event.get("type") == "transaction" else EVENT
