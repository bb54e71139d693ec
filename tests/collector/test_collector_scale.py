"""With 100,000 stored events the UI's queries stay indexed: their plans use indexes, and the
work SQLite does for a page (counted in virtual-machine steps, not seconds) does not grow with
the number of events. Timings are in benchmarks/bench_collector.py, not here."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from errlink.collector._queries import (
    GroupCursor,
    GroupFilter,
    environments,
    event_by_row,
    event_neighbours,
    find_event,
    get_group,
    group_environments,
    group_events,
    list_groups,
)
from errlink.collector._records import EventRecord, WriteBatch, event_record
from errlink.collector._store import EventStore

GROUPS = 200
ENVIRONMENTS = ("production", "staging", "development", None)
LEVELS = ("error", "warning", "info", "fatal")
SMALL, LARGE = 1_000, 100_000
PAGE = 51  # what the UI asks for: 50 rows and one to know there is more
# How often SQLite calls the step counter: every 100 virtual-machine instructions.
STEP_GRANULARITY = 100


def synthetic_event(n: int) -> EventRecord:
    # Half the events land in one hot group; the rest spread over all groups.
    group = 0 if n % 2 == 0 else n % GROUPS
    payload: dict[str, Any] = {
        "event_id": f"{n:032x}",
        "level": LEVELS[group % len(LEVELS)],
        "exception": {
            "values": [
                {
                    "type": f"Error{group}",
                    "value": f"item {n} failed",
                    "stacktrace": {
                        "frames": [
                            {"module": "app.jobs", "function": f"job_{group}",
                             "lineno": n % 300, "in_app": True},
                        ]
                    },
                }
            ]
        },
    }  # fmt: skip
    environment = ENVIRONMENTS[(n // GROUPS) % len(ENVIRONMENTS)]
    if environment is not None:
        payload["environment"] = environment
    return event_record(payload, project_id="1", fallback_event_id=None, where="event")


async def store_events(store: EventStore, start: int, stop: int) -> None:
    """Bulk inserts through the store's own write path, 2,000 events per transaction."""
    for first in range(start, stop, 2000):
        batch = WriteBatch(
            events=[synthetic_event(n) for n in range(first, min(first + 2000, stop))]
        )
        await store.write(batch)


def ui_queries(db: sqlite3.Connection) -> dict[str, Callable[[], object]]:
    """What the three pages run, against whatever the database holds now."""
    hot_group = db.execute("SELECT id FROM groups WHERE title LIKE 'Error0:%'").fetchone()[0]
    latest, middle = db.execute(
        "SELECT max(id), (min(id) + max(id)) / 2 FROM events WHERE group_id = ?", (hot_group,)
    ).fetchone()
    some_event = db.execute("SELECT event_id FROM events WHERE id = ?", (middle,)).fetchone()[0]
    first_page = list_groups(db, GroupFilter(), None, PAGE)
    cursor = GroupCursor(first_page[-1].last_seen, first_page[-1].id)
    return {
        "groups": lambda: list_groups(db, GroupFilter(), None, PAGE),
        "groups, page 2": lambda: list_groups(db, GroupFilter(), cursor, PAGE),
        "groups by environment": lambda: list_groups(db, GroupFilter("staging"), None, PAGE),
        "groups without environment": lambda: list_groups(db, GroupFilter(""), None, PAGE),
        "groups by level": lambda: list_groups(db, GroupFilter(level="fatal"), None, PAGE),
        "groups by environment and level": lambda: list_groups(
            db, GroupFilter("production", "warning"), None, PAGE
        ),
        "groups by text": lambda: list_groups(db, GroupFilter(text="Error1"), None, PAGE),
        "environment choices": lambda: environments(db),
        "group": lambda: get_group(db, hot_group),
        "group environments": lambda: group_environments(db, hot_group),
        "group events": lambda: group_events(db, hot_group, None, PAGE),
        "group events, deep page": lambda: group_events(db, hot_group, middle, PAGE),
        "event": lambda: find_event(db, some_event),
        "latest event": lambda: event_by_row(db, latest),
        "neighbours": lambda: event_neighbours(db, hot_group, middle),
    }


def steps_and_plans(path: Path) -> tuple[dict[str, int], dict[str, list[str]]]:
    steps: dict[str, int] = {}
    plans: dict[str, list[str]] = {}
    with sqlite3.connect(path) as db:
        for name, run in ui_queries(db).items():
            counter = [0]
            statements: list[str] = []

            def count(counter: list[int] = counter) -> int:
                counter[0] += 1
                return 0

            db.set_trace_callback(statements.append)
            db.set_progress_handler(count, STEP_GRANULARITY)
            run()
            db.set_progress_handler(None, 0)
            db.set_trace_callback(None)
            steps[name] = counter[0]
            plans[name] = [
                row[3]
                for sql in statements
                for row in db.execute("EXPLAIN QUERY PLAN " + sql).fetchall()
            ]
    return steps, plans


@pytest.mark.slow
async def test_ui_queries_use_indexes_and_do_not_grow_with_100k_events(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "big.db")
    await asyncio.to_thread(store.open)
    try:
        await store_events(store, 0, SMALL)
        small_steps, _ = await asyncio.to_thread(steps_and_plans, store.path)
        await store_events(store, SMALL, LARGE)
        large_steps, plans = await asyncio.to_thread(steps_and_plans, store.path)
    finally:
        await asyncio.to_thread(store.close)

    assert store.count_events() == LARGE
    assert sum(group.count for group in store.all_groups()) == LARGE
    for name, details in plans.items():
        for detail in details:
            # A bare "SCAN t" reads a whole table; "SCAN t USING INDEX" walks an index in
            # order and stops at the page's end; a temp B-tree would sort every match.
            assert "USING" in detail or not detail.startswith("SCAN"), (name, detail)
            assert "TEMP B-TREE" not in detail, (name, detail)
    for name, small in small_steps.items():
        # 100 times the events; a scan would do about 100 times the work.
        assert large_steps[name] <= 2 * small + 20, (name, small, large_steps[name])
