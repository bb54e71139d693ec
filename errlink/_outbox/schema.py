"""The outbox file's tables: rows, running totals kept by triggers, and the outbox's clock.

Format 2 added `outbox.born` and `outbox_clock` (ages by a clock that survives wall-clock
steps); format 3 added `outbox.extras` (what an item's envelope carries besides its payload:
the ``trace`` header, attachments). Older files are migrated in place when opened (`store.py`).
"""

from __future__ import annotations

import sqlite3

SCHEMA_VERSION = 3
READABLE_VERSIONS = (0, 1, 2, 3)  # 0: a new, empty file; 1 and 2: migrated on open
APPLICATION_ID = 0x45524C4B  # "ERLK" in the database header: this file is an errlink outbox
OUR_TABLES = {"outbox", "outbox_totals", "outbox_clock"}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY,
    created REAL NOT NULL,
    target TEXT NOT NULL,
    origin INTEGER NOT NULL,
    item_type TEXT NOT NULL,
    category TEXT NOT NULL,
    event_id TEXT NOT NULL,
    size INTEGER NOT NULL,
    payload BLOB NOT NULL,
    lease_owner INTEGER,
    lease_pid INTEGER,
    lease_until REAL NOT NULL DEFAULT 0,
    born REAL,
    extras BLOB
);
CREATE INDEX IF NOT EXISTS outbox_by_target ON outbox (target, id);
CREATE INDEX IF NOT EXISTS outbox_by_born ON outbox (born);
CREATE INDEX IF NOT EXISTS outbox_by_lease ON outbox (lease_until);
CREATE TABLE IF NOT EXISTS outbox_totals (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    bytes INTEGER NOT NULL,
    rows INTEGER NOT NULL
);
INSERT OR IGNORE INTO outbox_totals (id, bytes, rows) VALUES (0, 0, 0);
-- elapsed: seconds of monotonic time seen by live processes since the file was made (rows are
-- `born` at a value of it); mono and boot: the monotonic reading it was last advanced at.
CREATE TABLE IF NOT EXISTS outbox_clock (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    elapsed REAL NOT NULL,
    mono REAL NOT NULL,
    boot TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS outbox_added AFTER INSERT ON outbox BEGIN
    UPDATE outbox_totals SET bytes = bytes + NEW.size, rows = rows + 1 WHERE id = 0;
END;
CREATE TRIGGER IF NOT EXISTS outbox_removed AFTER DELETE ON outbox BEGIN
    UPDATE outbox_totals SET bytes = bytes - OLD.size, rows = rows - 1 WHERE id = 0;
END;
"""


def _statements(script: str) -> list[str]:
    # Triggers hold ';' inside BEGIN ... END: split on the statement ends sqlite3 agrees with.
    statements, current = [], ""
    for line in script.strip().splitlines():
        current += line + "\n"
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    return statements


SCHEMA_STATEMENTS = _statements(_SCHEMA)
# Format 1 -> 2, run before SCHEMA_STATEMENTS when `outbox` lacks `born`. Rows already stored
# are then born "now": they age from the time this errlink first saw them.
MIGRATE_TO_2 = "ALTER TABLE outbox ADD COLUMN born REAL"
MIGRATED_ROWS_BORN = "UPDATE outbox SET born = ? WHERE born IS NULL"
# Format 2 -> 3: rows already stored have no extras.
MIGRATE_TO_3 = "ALTER TABLE outbox ADD COLUMN extras BLOB"
