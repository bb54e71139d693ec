"""Guarding the event database file: one collector per file, intact, and still the file opened.

SQLite keeps writing to a file that was deleted under it (into an inode nobody can reach any
more), so the store compares the path's device and inode with those it opened, once per write
and per read. A damaged file is found by `PRAGMA quick_check` when the store opens (it reads
every page once: about a quarter of a second for 400 MB once cached) and whenever SQLite reports
damage. A lock file next to the database (`<db>.lock`, holding the owner's process id) refuses
a second collector on the same file, whose retention and group counts would disagree with the
first one's.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path

# SQLite's result codes for a damaged file and for a file that is not a database.
_SQLITE_CORRUPT = 11
_SQLITE_NOTADB = 26
# How many problems quick_check lists at most (it stops looking after these).
_PROBLEMS_SHOWN = 3


class StoreError(RuntimeError):
    """The database cannot be opened or used."""


@dataclass(frozen=True)
class FileIdentity:
    device: int
    inode: int

    @classmethod
    def of(cls, path: Path) -> FileIdentity:
        status = os.stat(path)
        return cls(status.st_dev, status.st_ino)


def change_of(path: Path, opened: FileIdentity) -> str | None:
    """How the file at `path` differs from the one opened ("deleted", "replaced"), or None."""
    try:
        now = FileIdentity.of(path)
    except FileNotFoundError:
        return "deleted"
    except OSError as exc:
        return f"unreachable ({exc.strerror or exc})"
    return None if now == opened else "replaced by another file"


def vanished_message(path: Path, change: str) -> str:
    return (
        f"the event database {path} was {change} while the collector was running: nothing "
        "can be stored any more, so ingestion is answered 503 (clients keep their events and "
        "retry); restart the collector to begin a new database"
    )


def damaged_message(path: Path, detail: str, *, running: bool) -> str:
    advice = (
        "move it away (or delete it) and start the collector again, which begins a new "
        "database; `sqlite3 <file> .recover` may save some of its events"
    )
    if running:
        return (
            f"the event database {path} is damaged ({detail}): ingestion is answered 503 "
            f"(clients keep their events and retry); stop the collector, {advice}"
        )
    return f"the event database {path} is damaged ({detail}): {advice}"


def is_damage(exc: sqlite3.Error) -> bool:
    """Whether SQLite reported a damaged file (or one that is not a database at all)."""
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
    if code is not None:
        return code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB)
    # Before 3.11: sqlite3 raises the base DatabaseError for exactly these codes (and rare others
    # that quick_check then clears).
    return type(exc) is sqlite3.DatabaseError


def damage(db: sqlite3.Connection) -> str | None:
    """What `PRAGMA quick_check` finds wrong with the file, or None when it is intact."""
    try:
        rows = db.execute(f"PRAGMA quick_check({_PROBLEMS_SHOWN})").fetchall()
    except sqlite3.DatabaseError as exc:
        if not is_damage(exc):
            raise
        return str(exc)
    problems = [
        line.strip()
        for row in rows
        for line in str(row[0]).splitlines()
        if line.strip() and not line.startswith("***")  # "*** in database main ***"
    ]
    return None if problems == ["ok"] else "; ".join(problems) or "damaged"


class WriterLock:
    """An exclusive lock on `<db>.lock`, held while a store writes to the database."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self.path = db_path.with_name(db_path.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise StoreError naming the collector that holds it."""
        if sys.platform == "win32":  # no lock file; SQLite's busy timeout serialises writers
            return
        import fcntl

        # The holder removes the file when it lets go: retry on a file that was removed between
        # opening and locking it, so two collectors never hold locks on different files.
        for _ in range(10):
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError as exc:
                raise StoreError(
                    f"cannot create the lock file {self.path}: {exc.strerror or exc}"
                ) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                holder = _holder(fd)
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise StoreError(self._taken_message(holder)) from None
                return  # the file system cannot lock files: go on without
            if _still_named(fd, self.path):
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                self._fd = fd
                return
            os.close(fd)
        raise StoreError(f"cannot take the lock file {self.path}: it keeps being replaced")

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.unlink(self.path)  # while still holding the lock (see acquire)
        except OSError:
            pass
        os.close(fd)

    def _taken_message(self, holder: str | None) -> str:
        who = "another errlink collector" + (f" (process {holder})" if holder else "")
        return (
            f"{who} is already using the event database {self.db_path}: stop it, or give "
            "this one another file (errlink serve --db, Collector(db_path=...))"
        )


def _holder(fd: int) -> str | None:
    try:
        text = os.read(fd, 32).decode("ascii", "replace").strip()
    except OSError:
        return None
    return text if text.isdigit() else None


def _still_named(fd: int, path: Path) -> bool:
    try:
        opened, named = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (opened.st_dev, opened.st_ino) == (named.st_dev, named.st_ino)
