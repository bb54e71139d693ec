"""A loopback sink for benchmarks: errlink's collector in its own process, so it does not share
the measured process's CPU time or GIL."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any


class CollectorProcess:
    def __init__(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="errlink-bench-")
        self.proc: subprocess.Popen[str] | None = None
        self.dsn = ""
        self.events_url = ""

    def __enter__(self) -> CollectorProcess:
        db = Path(self._tmp.name) / "bench.db"
        # --max-events 0 keeps every event: the benchmarks count what was stored.
        command = ["serve", "--port", "0", "-q", "--max-events", "0", "--db", str(db)]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "errlink", *command],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if "DSN:" in line:
                self.dsn = line.split("DSN:", 1)[1].strip()
            if "events:" in line:
                self.events_url = line.split("events:", 1)[1].strip()
                break
        if not self.dsn:
            raise RuntimeError("the collector did not start")
        return self

    def stats(self) -> dict[str, Any]:
        url = self.events_url.replace("/events/", "/stats/")
        with urllib.request.urlopen(url, timeout=30) as response:
            data: dict[str, Any] = json.load(response)
            return data

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            if self.proc.stdout is not None:
                self.proc.stdout.close()
        self._tmp.cleanup()
