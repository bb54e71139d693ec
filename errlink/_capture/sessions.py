"""Release health: sessions, counted per request (aggregated) or one per process.

Request mode: a web integration's request scope is a session. Capturing an exception inside it
marks the scope (`mark_error`: errored when handled, crashed when not); when the request ends
(`end_request`) its outcome bumps one counter of the current minute's bucket. No object is made
per request: the outcome is an int slot of the request's scope and the bucket is a list of four
counters made once a minute. Finished buckets leave as one ``sessions`` item per flush.

Application mode: `errlink.init()` starts one session for the process (`ProcessSession`); errors
captured outside any request count against it, an unhandled one makes it crashed, and it ends
at exit (exited), or abnormal when the process is killed by SIGTERM (see `errlink.sync`).

The tracker never sends anything itself: the pipeline calls `SessionTracker.flush_items` every
`FLUSH_INTERVAL` seconds, on `flush()` and on close, and the items go through the pipeline like
any other (their own queue, data category ``session`` for rate limits and client reports).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

from .._delivery.kinds import SESSION, SESSIONS, ItemKind
from .._options import Options
from .._wire.ids import new_uuid_text
from .scope import Scope

EXITED, ERRORED, CRASHED, ABNORMAL = 0, 1, 2, 3
OUTCOMES = ("exited", "errored", "crashed", "abnormal")
FLUSH_INTERVAL = 60.0

Submit = Callable[[ItemKind, dict[str, Any]], bool]


def iso_utc(epoch: float) -> str:
    moment = datetime.fromtimestamp(epoch, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _request_root(scope: Scope) -> Scope:
    root = scope.session_root
    return scope if root is None else root


def mark_error(scope: Scope, handled: bool) -> bool:
    """Mark the request `scope` belongs to; False when it belongs to none."""
    root = _request_root(scope)
    outcome = root.outcome
    if outcome < 0:
        return False
    if not handled:
        root.outcome = CRASHED
    elif outcome == EXITED:
        root.outcome = ERRORED
    return True


class RequestSessions:
    """Counters of request outcomes per wall-clock minute (one client: one release/env)."""

    __slots__ = ("_bucket_end", "_bucket_start", "_counts", "_finished", "_lock", "_on_first")

    def __init__(self, on_first: Callable[[], None]) -> None:
        self._lock = threading.Lock()
        self._counts = [0, 0, 0, 0]
        self._bucket_start = 0.0
        self._bucket_end = 0.0  # the first record opens a bucket
        self._finished: list[tuple[float, list[int]]] = []
        self._on_first = on_first

    def record(self, outcome: int) -> None:
        now = time.time()
        lock = self._lock
        # acquire/release rather than `with`: this runs once per request, and the context
        # manager protocol costs more than the rest of the bump.
        lock.acquire()
        try:
            if now < self._bucket_end:
                self._counts[outcome] += 1
                return
            self._roll(now)
            self._counts[outcome] += 1
        finally:
            lock.release()
        self._on_first()  # once a minute: make sure the pipeline runs to send this

    def _roll(self, now: float) -> None:
        if any(self._counts):
            self._finished.append((self._bucket_start, self._counts))
            self._counts = [0, 0, 0, 0]
        self._bucket_start = now - now % 60.0
        self._bucket_end = self._bucket_start + 60.0

    def take(self) -> list[dict[str, Any]]:
        """The buckets counted so far as ``aggregates`` entries; the counters start again."""
        with self._lock:
            buckets = self._finished
            self._finished = []
            if any(self._counts):
                buckets.append((self._bucket_start, self._counts))
                self._counts = [0, 0, 0, 0]
        out = []
        for started, counts in buckets:
            entry: dict[str, Any] = {"started": iso_utc(started)}
            entry.update((name, n) for name, n in zip(OUTCOMES, counts, strict=True) if n)
            out.append(entry)
        return out


class ProcessSession:
    """One session for the whole process (application mode)."""

    def __init__(self, did: str | None) -> None:
        self.sid = new_uuid_text()
        self.did = did
        self.started = time.time()
        self._started_clock = time.monotonic()
        self.status = "ok"
        self.errors = 0
        self.seq = 0
        self.sent = False  # the init update went out
        self.dirty = True
        self.ended = False
        self._lock = threading.Lock()

    def error(self, handled: bool, did: str | None) -> None:
        with self._lock:
            if self.ended:
                return
            self.errors += 1
            if did is not None:
                self.did = did
            if not handled and self.status == "ok":
                self.status = "crashed"
            self.dirty = True

    def end(self, status: str) -> None:
        with self._lock:
            if self.ended:
                return
            self.ended = True
            if self.status == "ok":
                self.status = status
            self.dirty = True

    def update(self, attrs: Mapping[str, str]) -> dict[str, Any] | None:
        """The update to send now, or None when nothing changed since the last one."""
        with self._lock:
            if not self.dirty:
                return None
            self.dirty = False
            now = time.time()
            payload: dict[str, Any] = {
                "sid": self.sid,
                "init": not self.sent,
                "started": iso_utc(self.started),
                "timestamp": iso_utc(now),
                "seq": self.seq,
                "duration": round(time.monotonic() - self._started_clock, 3),
                "status": self.status,
                "errors": self.errors,
                "attrs": dict(attrs),
            }
            if self.did is not None:
                payload["did"] = self.did
            self.sent = True
            self.seq += 1
            return payload


class SessionTracker:
    """A client's sessions: request aggregates, and the process session when `init` made one."""

    def __init__(self, options: Options, submit: Submit, start: Callable[[], None]) -> None:
        self._submit = submit
        self._send_pii = options.send_default_pii
        self.attrs: dict[str, str] = {"release": options.release or ""}
        self.attrs["environment"] = options.environment or "production"
        self.requests = RequestSessions(start)
        self.process: ProcessSession | None = None
        self._start = start
        self._served = False
        # Counts one request's outcome: straight to the counters once the first one is in.
        self.request_ended: Callable[[int], None] = self._first_request_ended

    # -- capture side (any thread) -------------------------------------------------------------

    def error(self, scope: Scope, handled: bool) -> None:
        if mark_error(scope, handled):
            return
        process = self.process
        if process is not None:
            process.error(handled, self._did(scope))

    def _first_request_ended(self, outcome: int) -> None:
        # A process that serves requests is counted by its requests, not as one session.
        if not self._served:
            self._served = True
            self.request_ended = self.requests.record
            process, self.process = self.process, None
            if process is not None and process.sent:
                process.end("exited")
                self._send_process(process)
        self.requests.record(outcome)

    def start_process(self, scope: Scope) -> None:
        """Application mode: one session from now until `end_process`."""
        if self.process is None and not self._served:
            self.process = ProcessSession(self._did(scope))
            self._start()

    def end_process(self, status: str) -> None:
        process = self.process
        if process is not None:
            process.end(status)

    def _did(self, scope: Scope) -> str | None:
        if not self._send_pii or not scope.user:
            return None
        try:
            user_id = scope.user.get("id")
        except Exception:
            return None
        return None if user_id is None else str(user_id)

    # -- the pipeline's loop -------------------------------------------------------------------

    def flush_items(self) -> None:
        """Hand what is due to the pipeline: the minute aggregates and the process update."""
        aggregates = self.requests.take()
        if aggregates:
            self._submit(SESSIONS, {"attrs": dict(self.attrs), "aggregates": aggregates})
        process = self.process
        if process is not None:
            self._send_process(process)

    def _send_process(self, process: ProcessSession) -> None:
        update = process.update(self.attrs)
        if update is not None:
            self._submit(SESSION, update)


def end_request(tracker: SessionTracker | None, scope: Scope, *, abandoned: bool = False) -> None:
    """Count the request whose scope `scope` is (or descends from) as one session, once.

    `abandoned`: the request was cancelled before it finished (abnormal unless marked)."""
    root = scope.session_root or scope
    outcome = root.outcome
    if outcome < 0 or tracker is None:
        return
    root.outcome = -1
    if abandoned and outcome == EXITED:
        outcome = ABNORMAL
    tracker.request_ended(outcome)
