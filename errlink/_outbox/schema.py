"""The outbox file's tables: rows, and running totals kept by triggers."""

from __future__ import annotations

import sqlite3

SCHEMA_VERSION = 1
APPLICATION_ID = 0x45524C4B  # "ERLK" in the database header: this file is an errlink outbox
OUR_TABLES = {"outbox", "outbox_totals"}

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
    lease_until REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS outbox_by_target ON outbox (target, id);
CREATE INDEX IF NOT EXISTS outbox_by_lease ON outbox (lease_until);
CREATE TABLE IF NOT EXISTS outbox_totals (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    bytes INTEGER NOT NULL,
    rows INTEGER NOT NULL
);
INSERT OR IGNORE INTO outbox_totals (id, bytes, rows) VALUES (0, 0, 0);
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
