"""Keeping at most `max_events` stored events by deleting the oldest ones.

Groups keep their counts, first and last seen, and their latest event: that one is never
pruned, so a group always has an event to show (a database with more groups than
`max_events` therefore keeps one event per group). Only the writer thread uses a `Retention`.
"""

from __future__ import annotations

import logging
import sqlite3

logger = logging.getLogger("errlink.collector")

# Deleting in slices keeps each transaction, and the writer's pause, short.
_DELETE_SLICE = 5000


def checked_max_events(max_events: int | None) -> int | None:
    if max_events is not None and (
        not isinstance(max_events, int) or isinstance(max_events, bool) or max_events < 1
    ):
        raise ValueError(f"max_events must be a positive integer or None, got {max_events!r}")
    return max_events


class Retention:
    def __init__(self, max_events: int | None) -> None:
        self.max_events = checked_max_events(max_events)
        self._stored = 0

    def start(self, db: sqlite3.Connection) -> None:
        if self.max_events is not None:
            self._stored = int(db.execute("SELECT count(*) FROM events").fetchone()[0])

    def added(self, count: int) -> None:
        self._stored += count

    def prune(self, db: sqlite3.Connection) -> int:
        """Delete the oldest prunable events beyond the limit; returns how many went."""
        if self.max_events is None or self._stored <= self.max_events:
            return 0
        deleted = 0
        while self._stored > self.max_events:
            excess = min(self._stored - self.max_events, _DELETE_SLICE)
            db.execute("BEGIN IMMEDIATE")
            try:
                gone = [
                    row[0]
                    for row in db.execute(
                        "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE id NOT IN "
                        "(SELECT latest_event_id FROM groups WHERE latest_event_id IS NOT NULL) "
                        "ORDER BY id LIMIT ?) RETURNING event_id",
                        (excess,),
                    )
                ]
                # An event's attachments go with it (its feedback stays: it is listed alone).
                db.executemany(
                    "DELETE FROM attachments WHERE event_id = ?", [(event_id,) for event_id in gone]
                )
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            self._stored -= len(gone)
            deleted += len(gone)
            if len(gone) < excess:  # only groups' latest events are left
                break
        if deleted:
            logger.debug(
                "retention: pruned %d events beyond max_events=%d", deleted, self.max_events
            )
        return deleted
