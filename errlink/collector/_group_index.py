"""Keeping the `groups` tables in step with the events the writer inserts.

Per transaction the updates are summed per group, so a burst of one error costs one group
update, not one per event. Only the writer thread uses a `GroupIndex`.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from ._grouping import GroupKey

# Known group ids, so a repeat error does not look its group up; bounded by clearing.
_KNOWN_IDS_MAX = 50_000
# Events without an environment are filed under this name in group_environments,
NO_ENVIRONMENT = ""
# and the UI and the API call them this.
NO_ENVIRONMENT_LABEL = "(none)"


@dataclass
class _GroupUpdate:
    count: int
    last_seen: float
    latest_event_id: int
    level: str
    title: str
    culprit: str | None


class GroupIndex:
    def __init__(self) -> None:
        self._known_ids: dict[tuple[str, str], int] = {}
        self._groups: dict[int, _GroupUpdate] = {}
        self._environments: dict[tuple[int, str], list[float]] = {}

    def group_id(
        self, db: sqlite3.Connection, project_id: str, key: GroupKey, level: str, seen_at: float
    ) -> int:
        """The id of the event's group, created (with a count of 0) when it is new."""
        known = self._known_ids.get((project_id, key.hash))
        if known is not None:
            return known
        row = db.execute(
            "SELECT id FROM groups WHERE project_id = ? AND hash = ?", (project_id, key.hash)
        ).fetchone()
        if row is not None:
            group_id = int(row[0])
        else:
            cursor = db.execute(
                "INSERT INTO groups (project_id, hash, title, culprit, level, count, first_seen, "
                "last_seen) VALUES (?, ?, ?, ?, ?, 0, ?, ?)",
                (project_id, key.hash, key.title, key.culprit, level, seen_at, seen_at),
            )
            assert cursor.lastrowid is not None
            group_id = cursor.lastrowid
        if len(self._known_ids) >= _KNOWN_IDS_MAX:
            self._known_ids.clear()
        self._known_ids[(project_id, key.hash)] = group_id
        return group_id

    def add_event(
        self,
        group_id: int,
        event_row_id: int,
        *,
        seen_at: float,
        level: str,
        environment: str | None,
        key: GroupKey,
    ) -> None:
        update = self._groups.get(group_id)
        if update is None:
            self._groups[group_id] = _GroupUpdate(
                1, seen_at, event_row_id, level, key.title, key.culprit
            )
        else:
            update.count += 1
            update.last_seen = max(update.last_seen, seen_at)
            update.latest_event_id = event_row_id
            update.level, update.title, update.culprit = level, key.title, key.culprit
        env_key = (group_id, environment or NO_ENVIRONMENT)
        env = self._environments.get(env_key)
        if env is None:
            self._environments[env_key] = [1, seen_at]
        else:
            env[0] += 1
            env[1] = max(env[1], seen_at)

    def flush(self, db: sqlite3.Connection) -> None:
        """Write the summed updates (inside the transaction that inserted the events)."""
        db.executemany(
            "UPDATE groups SET count = count + ?, last_seen = max(last_seen, ?), "
            "latest_event_id = ?, level = ?, title = ?, culprit = ? WHERE id = ?",
            [
                (u.count, u.last_seen, u.latest_event_id, u.level, u.title, u.culprit, group_id)
                for group_id, u in self._groups.items()
            ],
        )
        db.executemany(
            "INSERT INTO group_environments (group_id, environment, count, last_seen) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (group_id, environment) DO UPDATE SET "
            "count = count + excluded.count, last_seen = max(last_seen, excluded.last_seen)",
            [
                (group_id, environment, int(count), last_seen)
                for (group_id, environment), (count, last_seen) in self._environments.items()
            ],
        )
        self._groups.clear()
        self._environments.clear()

    def discard(self) -> None:
        """Forget everything after a rollback: ids of groups created in it are gone too."""
        self._known_ids.clear()
        self._groups.clear()
        self._environments.clear()
