"""Counters of what happened to captured events, and the client reports built from the drops.

Every event a client captures ends up in exactly one of: sent, dropped (with a reason), or pending
(queued and not yet settled), so at any quiescent point::

    captured == sent + sum(dropped.values()) + pending

Drop reasons used by errlink: "queue_overflow", "ratelimit_backoff", "network_error", "send_error",
"sample_rate", "before_send", "event_processor", "internal_sdk_error".
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

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())


class Stats:
    """Thread-safe counters: captures come from many threads, settlement from the sender loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._captured = 0
        self._queued = 0
        self._sent = 0
        self._dropped_after_queueing = 0
        self._dropped: dict[tuple[str, str], int] = {}
        self._unreported: dict[tuple[str, str], int] = {}

    def record_captured(self) -> None:
        with self._lock:
            self._captured += 1

    def record_queued(self) -> None:
        with self._lock:
            self._queued += 1

    def record_sent(self, n: int = 1) -> None:
        with self._lock:
            self._sent += n

    def record_drop(
        self, reason: str, category: str = "error", quantity: int = 1, *, queued: bool = False
    ) -> None:
        """Count `quantity` dropped items; `queued=True` when they had been queued (not pending)."""
        if quantity <= 0:
            return
        key = (reason, category)
        with self._lock:
            self._dropped[key] = self._dropped.get(key, 0) + quantity
            self._unreported[key] = self._unreported.get(key, 0) + quantity
            if queued:
                self._dropped_after_queueing += quantity

    def snapshot(self) -> StatsSnapshot:
        with self._lock:
            by_category = dict(self._dropped)
            pending = self._queued - self._sent - self._dropped_after_queueing
            captured, queued, sent = self._captured, self._queued, self._sent
        by_reason: dict[str, int] = {}
        for (reason, _category), quantity in by_category.items():
            by_reason[reason] = by_reason.get(reason, 0) + quantity
        return StatsSnapshot(captured, queued, sent, pending, by_reason, by_category)

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
