"""The outbox's own clock: time that live processes saw pass, immune to wall-clock steps.

It advances only by the monotonic time observed between operations on the file within one
boot, so a wall-clock step, or a producer whose clock is wrong, never ages a row, and no row is
ever older by this clock than the time it really spent in the outbox.
"""

from __future__ import annotations

import sqlite3
import time


def advance_clock(db: sqlite3.Connection, mono: float, boot_id: str) -> float:
    """Advance the outbox's clock by the monotonic time since it was last advanced (in
    this boot: `mono` is this process's monotonic reading) and return it; in a write
    transaction."""
    row = db.execute("SELECT elapsed, mono, boot FROM outbox_clock WHERE id = 0").fetchone()
    if row is None:
        db.execute(
            "INSERT INTO outbox_clock (id, elapsed, mono, boot) VALUES (0, 0, ?, ?)",
            (mono, boot_id),
        )
        return 0.0
    elapsed, last, boot = float(row[0]), float(row[1]), str(row[2])
    if boot == boot_id and mono > last:
        elapsed += mono - last
    # Otherwise the machine rebooted (or the reading is not comparable): the time between
    # is not counted, so no row ever looks older than it is.
    db.execute(
        "UPDATE outbox_clock SET elapsed = ?, mono = ?, boot = ? WHERE id = 0",
        (elapsed, mono, boot_id),
    )
    return elapsed


def current_boot_id() -> str:
    """What tells this boot from the next: monotonic readings of different boots differ."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as file:
            return file.read().strip()
    except OSError:
        # Elsewhere, the boot time to the minute: a wall-clock step makes it look like another
        # boot, which only leaves the time between two operations uncounted.
        return str(round((time.time() - time.monotonic()) / 60))
