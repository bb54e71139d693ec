"""Fixtures shared by the whole suite.

`collector` and `collector_thread` are real errlink collectors listening on 127.0.0.1 (a free
port) with a private SQLite file in `tmp_path`. Point a client at their `.dsn`, then check what
arrived with `.events()` / `.wait_for_events(n)`, `.client_reports()`, `.discarded_totals()`
and `.request_statuses`. Every event a collector answered 200 is already in `.events()`.
`collector_process` is `errlink serve` in a subprocess (`.dsn`, `.stats()`), for tests where an
in-process server would compete with the client for the GIL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from errlink.collector import Collector, CollectorThread
from tests._support.collector import CollectorProcess


@pytest.fixture
async def collector(tmp_path: Path) -> AsyncIterator[Collector]:
    """A started `Collector` on the test's event loop, for async tests."""
    # An explicit key: the fault proxy (`tests/faults/_proxy.py`) hands out DSNs with it.
    async with Collector(db_path=tmp_path / "collector.db", public_key="errlink") as started:
        yield started


@pytest.fixture
def collector_thread(tmp_path: Path) -> Iterator[CollectorThread]:
    """A started `CollectorThread` (its own loop in a daemon thread), for sync tests."""
    with CollectorThread(db_path=tmp_path / "collector-thread.db", public_key="errlink") as started:
        yield started


@pytest.fixture
def collector_process() -> Iterator[CollectorProcess]:
    """`errlink serve` in a subprocess, for tests where the server must not share our GIL."""
    with CollectorProcess() as started:
        yield started
