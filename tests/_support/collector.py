"""`errlink serve` in a subprocess, for tests and benchmarks.

A collector in its own process does not share the measured (or tested) process's CPU time or
GIL. It listens on a free port (`--port 0`; the DSN it prints is read back) and stops with
SIGTERM when the `with` block ends.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_SECONDS = 30.0
_BANNER_END = "Press Ctrl-C to stop."


class CollectorProcess:
    """`python -m errlink serve --port 0 [args]`, started by `start()` or `with`.

    By default it is quiet (`-q`) and keeps every event (`--max-events 0`); pass `quiet=False`
    to have it log each stored event on stderr, `max_events=None` for the collector's default.
    `db` defaults to a private temporary directory. `capture_stderr=True` pipes stderr so
    `stop()` returns it. After `start()`: `.dsn`, `.events_url`, `.stats_url`, `.banner` (every
    line printed up to "Press Ctrl-C to stop.") and `.proc`.
    """

    def __init__(
        self,
        *args: str,
        db: Path | None = None,
        quiet: bool = True,
        max_events: int | None = 0,
        capture_stderr: bool = False,
        cwd: Path | None = None,
        startup_timeout: float = STARTUP_TIMEOUT_SECONDS,
    ) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if db is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="errlink-collector-")
            db = Path(self._tmp.name) / "collector.db"
        self.db = db
        self.command = [sys.executable, "-m", "errlink", "serve", "--port", "0", "--db", str(db)]
        if quiet:
            self.command.append("-q")
        if max_events is not None:
            self.command += ["--max-events", str(max_events)]
        self.command += args
        self.capture_stderr = capture_stderr
        self.cwd = cwd
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen[str] | None = None
        self.banner = ""
        self.dsn = ""
        self.events_url = ""
        self.stats_url = ""

    def start(self) -> CollectorProcess:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
        }
        self.proc = subprocess.Popen(
            self.command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE if self.capture_stderr else None,
            text=True,
            env=env,
            cwd=self.cwd,
        )
        # A hung start must fail its caller, not hang the whole run.
        watchdog = threading.Timer(self.startup_timeout, self.proc.kill)
        watchdog.start()
        try:
            self.banner = self._read_banner()
        except BaseException:
            self.close()
            raise
        finally:
            watchdog.cancel()
        return self

    def _read_banner(self) -> str:
        assert self.proc is not None
        assert self.proc.stdout is not None
        lines = []
        # Up to the banner's last line: whatever the collector prints later (on stopping) is
        # still unread when `stop()` collects the rest of its output.
        for line in self.proc.stdout:
            lines.append(line)
            if line.startswith(_BANNER_END):
                break
        banner = "".join(lines)
        dsn = re.search(r"DSN:\s+(\S+)", banner)
        events = re.search(r"events:\s+(\S+)", banner)
        if not (dsn and events and banner.rstrip().endswith(_BANNER_END)):
            raise AssertionError(f"errlink serve did not start; stdout: {banner!r}")
        self.dsn = dsn.group(1)
        self.events_url = events.group(1)
        self.stats_url = self.events_url.replace("/events/", "/stats/")
        return banner

    def stats(self) -> dict[str, Any]:
        return self._get_json(self.stats_url)

    def events(self) -> list[dict[str, Any]]:
        """The stored events' payloads, as the collector's events API lists them."""
        return [event["payload"] for event in self._get_json(self.events_url)["events"]]

    @staticmethod
    def _get_json(url: str) -> dict[str, Any]:
        with urllib.request.urlopen(url, timeout=30) as response:
            data: dict[str, Any] = json.load(response)
            return data

    def stop(
        self, stop_signal: signal.Signals = signal.SIGTERM, timeout: float = 30.0
    ) -> tuple[str, str]:
        """Send `stop_signal`, wait for the exit; the rest of stdout (and stderr, if piped)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(stop_signal)
        try:
            stdout, stderr = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            raise
        return stdout or "", stderr or ""

    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.returncode

    def close(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.communicate()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> CollectorProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self.proc is not None and self.proc.returncode is None:
                self.stop()
        finally:
            self.close()
