"""The acceptance scenario: the server is down for 30 s while the application keeps capturing.

With the outbox on, every event captured during the outage reaches the collector once the
server is back: 100 %, each exactly once, as the collector's own count shows.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from errlink.collector import CollectorThread
from tests.faults._proxy import ProxyThread
from tests.faults._scenario import QUEUE_SIZE, Scenario, capture

OUTAGE_SECONDS = 30.0


@pytest.fixture
def proxy_thread(collector_thread: CollectorThread) -> Iterator[ProxyThread]:
    with ProxyThread(collector_thread.url) as started:
        yield started


@pytest.mark.slow
def test_server_down_30_s_then_back_delivers_every_event(
    collector_thread: CollectorThread, proxy_thread: ProxyThread, tmp_path: Path
) -> None:
    scenario = Scenario(collector_thread, proxy_thread, tmp_path, http_timeout=1.0)
    try:
        proxy_thread.go_down()
        outage_ends = time.monotonic() + OUTAGE_SECONDS
        batches = []
        while time.monotonic() < outage_ends:
            batches.append(capture(scenario.client, 20, "during the outage", spacing=0.04))
        captured = [event_id for batch in batches for event_id in batch.ids]
        scenario.captured_ids += captured
        assert None not in captured  # nothing dropped at the door
        assert max(batch.most_held for batch in batches) <= QUEUE_SIZE
        during = scenario.settle()
        assert during.in_outbox == len(captured)  # all of it waited on disk
        assert during.dropped == {}

        proxy_thread.come_back()
        final = scenario.recover()
        assert final.dropped == {}
        assert final.sent == len(scenario.captured_ids)
        delivered = Counter(event["event_id"] for event in collector_thread.events())
        assert collector_thread.event_count() == len(scenario.captured_ids)  # 100 %
        assert set(delivered) == set(scenario.captured_ids)
        assert max(delivered.values()) == 1
    finally:
        scenario.close()
