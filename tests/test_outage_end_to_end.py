"""An outage seen from the outside: the collector stops, the app keeps capturing, it comes back."""

from __future__ import annotations

from pathlib import Path

from errlink import AsyncClient
from errlink.collector import Collector


async def test_outage_then_recovery_accounts_for_every_event(tmp_path: Path) -> None:
    first = Collector(db_path=tmp_path / "a.db")
    await first.start()
    port, dsn = first.port, first.dsn
    client = AsyncClient(dsn, queue_size=20, http_timeout=1.0)
    await client.capture_message("before the outage")
    assert await client.flush(10)
    await first.stop()

    # Capturing never awaits the network: all 300 calls return while nothing can be sent.
    ids = [await client.capture_message(f"during the outage {n}") for n in range(300)]
    during = client.stats
    assert during.pending <= 20  # memory bounded by queue_size, whatever the server does
    assert during.dropped["queue_overflow"] >= 280
    assert sum(event_id is not None for event_id in ids) == 300 - during.dropped["queue_overflow"]

    second = Collector(port=port, db_path=tmp_path / "b.db", public_key=first.public_key)
    await second.start()
    try:
        assert await client.flush(60)
        await client.capture_message("after the outage")
        assert await client.flush(10)
        stats = client.stats
        assert stats.captured == 302
        assert stats.pending == 0
        assert stats.captured == stats.sent + sum(stats.dropped.values())
        messages = [e["logentry"]["formatted"] for e in second.events()]
        assert "after the outage" in messages
        # The server was told about every event the client could not deliver, by reason.
        reported = {reason: n for (reason, _category), n in second.discarded_totals().items()}
        assert reported == stats.dropped
        assert len(first.events()) + len(second.events()) == stats.sent
    finally:
        await client.aclose(5)
        await second.stop()
