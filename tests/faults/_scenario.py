"""What every fault scenario measures and checks, whatever the fault.

A scenario runs a sync `Client` (the way most applications use errlink) against a collector
behind the fault proxy. It captures a healthy warm-up batch, then a batch during the fault,
timing every capture and watching how many events the client holds in memory. The checks:

- captures stay fast: the median capture during the fault is within a small factor of the
  median capture while healthy, both measured in this run (no wall-clock limits);
- memory stays bounded: the client never holds more than `queue_size` events;
- the books balance on the real counters:
  captured + adopted == sent + in_outbox + pending + dropped (by reason), and they agree with
  what the collector stored and what the outbox file holds.
"""

from __future__ import annotations

import sqlite3
import statistics
import time
from collections import Counter
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from errlink import StatsSnapshot
from errlink.collector import CollectorThread
from errlink.sync import Client
from tests._support import wait_until
from tests.faults._proxy import FORWARD, Policy, ProxyThread, always

# A capture that waited on the network would cost milliseconds to seconds, thousands of times
# a normal capture; this factor only absorbs the noise of a shared machine.
SLOWDOWN_TOLERATED = 10.0
QUEUE_SIZE = 50


@dataclass
class Captures:
    ids: list[str | None] = field(default_factory=list)
    """Event ids; None where capture returned None (dropped at once: queue_overflow)."""
    seconds: list[float] = field(default_factory=list)
    most_held: int = 0

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def capture(client: Client, count: int, label: str, spacing: float = 0.003) -> Captures:
    result = Captures()
    for n in range(count):
        start = time.perf_counter()
        event_id = client.capture_message(f"{label} {n}")
        result.seconds.append(time.perf_counter() - start)
        result.ids.append(event_id)
        result.most_held = max(result.most_held, client.stats.pending)
        time.sleep(spacing)
    return result


def books_balance(stats: StatsSnapshot) -> bool:
    return stats.captured + stats.adopted == (
        stats.sent + stats.in_outbox + stats.pending + stats.dropped_total
    )


def outbox_rows(path: Path) -> list[str]:
    if not path.exists():
        return []
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db, db:
        return [row[0] for row in db.execute("SELECT event_id FROM outbox ORDER BY id")]


class Scenario:
    """One client, one collector, one proxy; `fault()` then `recover()` and check."""

    def __init__(
        self,
        collector: CollectorThread,
        proxy: ProxyThread,
        tmp_path: Path,
        *,
        outbox: bool = True,
        http_timeout: float = 0.3,
    ) -> None:
        self.collector = collector
        self.proxy = proxy
        self.outbox_path = tmp_path / "outbox.sqlite3"
        options: dict[str, Any] = {"queue_size": QUEUE_SIZE, "http_timeout": http_timeout}
        if outbox:
            options.update(outbox=self.outbox_path, outbox_drain_rate=1000.0)
        self.client = Client(proxy.dsn(), **options)
        self.healthy = capture(self.client, 30, "healthy")
        assert self.client.flush(10)
        self.captured_ids = list(self.healthy.ids)

    @property
    def queued_ids(self) -> set[str]:
        """Ids of the events capture accepted (not dropped at once for a full queue)."""
        return {event_id for event_id in self.captured_ids if event_id is not None}

    def assert_only_overflow_lost(self, stats: StatsSnapshot) -> None:
        """With the outbox, the one loss allowed: capture outrunning the disk at a full queue.

        A busy machine can stall the outbox writer long enough for a small queue to fill; those
        events are refused at capture (capture returned None) and counted as queue_overflow.
        """
        refused = len(self.captured_ids) - len(self.queued_ids)
        assert stats.dropped == ({"queue_overflow": refused} if refused else {})

    def assert_every_queued_event_delivered_once(self) -> None:
        delivered = Counter(event["event_id"] for event in self.collector.events())
        assert set(delivered) == self.queued_ids
        assert max(delivered.values()) == 1

    def fault(self, policy: Policy, count: int = 80) -> Captures:
        self.proxy.set_policy(policy)
        during = capture(self.client, count, "during the fault")
        self.captured_ids += during.ids
        assert during.median <= SLOWDOWN_TOLERATED * self.healthy.median, (
            during.median,
            self.healthy.median,
        )
        assert max(self.healthy.most_held, during.most_held) <= QUEUE_SIZE
        return during

    def settle(self, timeout: float = 30.0) -> StatsSnapshot:
        """Wait until nothing is held in memory (sent, dropped or spilled), then check."""
        assert self.client.flush(timeout)
        stats = self.client.stats
        assert stats.pending == 0
        self.check_books(stats)
        return stats

    def recover(self, timeout: float = 60.0) -> StatsSnapshot:
        """Let requests through again; wait until the outbox is empty and check delivery."""
        self.proxy.set_policy(always(FORWARD))
        wait_until(lambda: self.client.stats.in_outbox == 0, timeout)
        assert self.client.flush(timeout)  # also sends the client report of any drops
        stats = self.client.stats
        self.check_books(stats)
        delivered = Counter(event["event_id"] for event in self.collector.events())
        assert max(delivered.values()) == 1  # nothing twice
        assert len(delivered) == stats.sent
        reported = {
            reason: quantity
            for (reason, _category), quantity in self.collector.discarded_totals().items()
        }
        assert reported == stats.dropped
        return stats

    def check_books(self, stats: StatsSnapshot) -> None:
        assert books_balance(stats), stats
        assert stats.captured == len(self.captured_ids)
        assert len(outbox_rows(self.outbox_path)) == stats.in_outbox

    def close(self) -> None:
        self.client.close(5)
