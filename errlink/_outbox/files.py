"""Files and directories that only their owner can read."""

from __future__ import annotations

import os
from pathlib import Path


def create_private_file(path: Path) -> None:
    """Create the database file readable by its owner only; SQLite's -wal/-shm files follow."""
    make_private_dirs(path.parent)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)


def make_private_dirs(directory: Path) -> None:
    """Create `directory` and every missing parent 0700 (`mkdir(parents=True)` would make the
    parents with the process's umask: 0777 under umask 0)."""
    missing: list[Path] = []
    while not directory.exists():
        missing.append(directory)
        if directory.parent == directory:
            break
        directory = directory.parent
    for each in reversed(missing):
        _make_private_dir(each)


def _make_private_dir(directory: Path) -> None:
    try:
        directory.mkdir(mode=0o700)
    except FileExistsError:  # another process made it meanwhile
        pass
