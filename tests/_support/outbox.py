"""Outbox stores and records for the outbox's tests."""

from __future__ import annotations

from pathlib import Path

from errlink._outbox.records import SpillRecord
from errlink._outbox.store import OutboxStore

TARGET = "t1"


def record(n: int, size: int = 20, category: str = "error") -> SpillRecord:
    payload = (f'{{"n":{n},"pad":"' + "x" * size + '"}').encode()
    return SpillRecord(f"{n:032x}", "event", category, payload)


def opened(path: Path, **kwargs: object) -> OutboxStore:
    """An open store on `path` for target `TARGET` (options may be overridden)."""
    options: dict[str, object] = {"target": TARGET, "max_bytes": 10_000_000, "max_age": 3600.0}
    options.update(kwargs)
    store = OutboxStore(path, **options)  # type: ignore[arg-type]
    store.open()
    return store
