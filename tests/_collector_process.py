"""`errlink serve` in its own process: a server that does not share the client's GIL."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any


class CollectorProcess:
    """Start with `with CollectorProcess(tmp_path) as server:`; `.dsn`, `.stats()`."""

    def __init__(self, directory: Path) -> None:
        self._db = directory / "collector-process.db"
        self._process: subprocess.Popen[str] | None = None
        self.dsn = ""
        self._stats_url = ""

    def __enter__(self) -> CollectorProcess:
        command = ["serve", "--port", "0", "-q", "--max-events", "0", "--db", str(self._db)]
        self._process = subprocess.Popen(
            [sys.executable, "-m", "errlink", *command], stdout=subprocess.PIPE, text=True
        )
        assert self._process.stdout is not None
        for line in self._process.stdout:
            if "DSN:" in line:
                self.dsn = line.split("DSN:", 1)[1].strip()
            if "events:" in line:
                events_url = line.split("events:", 1)[1].strip()
                self._stats_url = events_url.replace("/events/", "/stats/")
                break
        if not (self.dsn and self._stats_url):
            self.__exit__(None, None, None)
            raise RuntimeError("errlink serve did not print its DSN and API address")
        return self

    def stats(self) -> dict[str, Any]:
        """The server's own counts: events stored, drops clients reported, ..."""
        with urllib.request.urlopen(self._stats_url, timeout=30) as response:
            data: dict[str, Any] = json.load(response)
        return data

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(10)
            if self._process.stdout is not None:
                self._process.stdout.close()
