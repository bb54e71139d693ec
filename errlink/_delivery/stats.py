"""Counters of what happened to captured events, and the client reports built from the drops.

Every event a client captures ends up in exactly one of: sent, dropped (with a reason), pending
(queued and not yet settled) or in the disk outbox, so at any quiescent point::

    captured + adopted == sent + sum(dropped.values()) + pending + in_outbox

Structured logs travel in batches: a batch is one item in these books, while its drops are
counted in records under the `log_item` category, as client reports count them.

`adopted` counts outbox events written by another process (or an earlier run) that this client
delivered or dropped; it is 0 unless an outbox is shared or reused. An event this client spilled
and another process delivered stays in this client's `in_outbox`.

Drop reasons used by errlink: "queue_overflow", "ratelimit_backoff", "network_error", "send_error",
"sample_rate", "before_send", "event_processor", "internal_sdk_error", and for the outbox
"cache_overflow" (evicted to keep it under `outbox_max_mb`) and "network_error" (older than
`outbox_max_age`).

Two counters are about what went into events rather than what became of them: how many types
this client's captures found slow to repr (`slow_repr_types`) and how many values were sent as a
``<TypeName object>`` placeholder because their type is slow (`slow_repr_placeholders`). The
capture layer keeps them and adds them to the snapshot.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class StatsSnapshot:
    captured: int = 0
    queued: int = 0
    sent: int = 0
    pending: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    """Drops by reason."""
    dropped_by_category: dict[tuple[str, str], int] = field(default_factory=dict)
    """Drops by (reason, category)."""
    spilled: int = 0
    """Events this client wrote to the disk outbox."""
    in_outbox: int = 0
    """Events this client wrote to the outbox and has not delivered or dropped since."""
    drained: int = 0
    """Outbox events this client delivered (also counted in `sent`), whoever wrote them."""
    adopted: int = 0
    """Outbox events written by another process or an earlier run, delivered or dropped here."""
    discarded: dict[tuple[str, str], int] = field(default_factory=dict)
    """What travels with events and was dropped while they went on (an event's attachments,
    in bytes), by (reason, category); not part of `dropped`."""
    slow_repr_types: int = 0
    """Types whose repr() or str() took over a millisecond in this client's captures: from then
    on, for the life of the process, their values are sent as ``<TypeName object>``."""
    slow_repr_placeholders: int = 0
    """Values this client sent as ``<TypeName object>`` because their type is slow to repr."""

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())


class Stats:
    """Thread-safe counters: captures come from many threads, settlement from the sender loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._captured = 0
        self._queued = 0
        self._sent = 0  # live sends; outbox deliveries are counted below
        self._dropped_after_queueing = 0
        self._spilled = 0
        self._outbox_sent = {True: 0, False: 0}  # by own
        self._outbox_dropped = {True: 0, False: 0}
        self._dropped: dict[tuple[str, str], int] = {}
        self._unreported: dict[tuple[str, str], int] = {}
        self._discarded: dict[tuple[str, str], int] = {}

    def record_captured(self) -> None:
        with self._lock:
            self._captured += 1

    def record_queued(self) -> None:
        with self._lock:
            self._queued += 1

    def live_sent(self) -> int:
        """Events the pipeline delivered itself so far (lock-free read: only a progress check)."""
        return self._sent

    def record_sent(self, n: int = 1) -> None:
        with self._lock:
            self._sent += n

    def record_spilled(self, n: int = 1) -> None:
        """`n` queued events went to the disk outbox (they are no longer pending)."""
        with self._lock:
            self._spilled += n

    def record_outbox_sent(self, *, own: bool) -> None:
        with self._lock:
            self._outbox_sent[own] += 1

    def record_outbox_drop(
        self, reason: str, category: str = "error", quantity: int = 1, *, own: bool
    ) -> None:
        """Outbox rows deleted undelivered; `own` when this client wrote them."""
        if quantity <= 0:
            return
        self.record_drop(reason, category, quantity)
        with self._lock:
            self._outbox_dropped[own] += quantity

    def record_drop(
        self, reason: str, category: str = "error", quantity: int = 1, *, queued: bool = False
    ) -> None:
        """Count `quantity` dropped (items, or the records of one log item); `queued=True` when
        it was one queued item, no longer pending."""
        if quantity <= 0:
            return
        key = (reason, category)
        with self._lock:
            self._dropped[key] = self._dropped.get(key, 0) + quantity
            self._unreported[key] = self._unreported.get(key, 0) + quantity
            if queued:
                self._dropped_after_queueing += 1

    def record_discard(self, reason: str, category: str, quantity: int) -> None:
        """Count, for the client report only, a part of an event dropped while the event went
        on (an attachment: `quantity` in bytes)."""
        if quantity <= 0:
            return
        key = (reason, category)
        with self._lock:
            self._discarded[key] = self._discarded.get(key, 0) + quantity
            self._unreported[key] = self._unreported.get(key, 0) + quantity

    def snapshot(self) -> StatsSnapshot:
        with self._lock:
            discarded = dict(self._discarded)
            by_category = dict(self._dropped)
            pending = self._queued - self._sent - self._dropped_after_queueing - self._spilled
            captured, queued, spilled = self._captured, self._queued, self._spilled
            drained = self._outbox_sent[True] + self._outbox_sent[False]
            sent = self._sent + drained
            in_outbox = spilled - self._outbox_sent[True] - self._outbox_dropped[True]
            adopted = self._outbox_sent[False] + self._outbox_dropped[False]
        by_reason: dict[str, int] = {}
        for (reason, _category), quantity in by_category.items():
            by_reason[reason] = by_reason.get(reason, 0) + quantity
        return StatsSnapshot(
            captured,
            queued,
            sent,
            pending,
            by_reason,
            by_category,
            spilled=spilled,
            in_outbox=in_outbox,
            drained=drained,
            adopted=adopted,
            discarded=discarded,
        )

    def has_unreported_drops(self) -> bool:
        with self._lock:
            return bool(self._unreported)

    def take_client_report(self) -> dict[str, Any] | None:
        """The drops not reported yet, as a `client_report` payload (now counted as reported)."""
        with self._lock:
            if not self._unreported:
                return None
            unreported, self._unreported = self._unreported, {}
        return {
            "timestamp": time.time(),
            "discarded_events": [
                {"reason": reason, "category": category, "quantity": quantity}
                for (reason, category), quantity in unreported.items()
            ],
        }

    def restore_client_report(self, report: dict[str, Any]) -> None:
        """Put back a report taken with `take_client_report` that could not be delivered."""
        entries = report.get("discarded_events") or ()
        with self._lock:
            for entry in entries:
                key = (str(entry["reason"]), str(entry["category"]))
                self._unreported[key] = self._unreported.get(key, 0) + int(entry["quantity"])
