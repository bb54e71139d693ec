"""`Collector`: the ingestion server on the caller's event loop, with test-friendly accessors."""

from __future__ import annotations

import asyncio
import collections
import math
import os
import re
import secrets
import shutil
import tempfile
import time
import weakref
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

from ._access import AccessPolicy
from ._api import API_PREFIX
from ._app import build_app
from ._connections import CappedTCPSite, HeadDeadline, descriptor_bound
from ._faults import FaultInjector, FaultKnobs, Faults
from ._queries import StoredGroup
from ._refusals import RefusalLog
from ._retention import checked_max_events
from ._state import (
    DEFAULT_BODY_TIMEOUT_SECONDS,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_DECOMPRESSED_BYTES,
    DEFAULT_MAX_ENVELOPE_ITEMS,
    CollectorState,
    IngestSettings,
)
from ._store import EventStore

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PROJECT_ID = "1"
DEFAULT_MAX_CONNECTIONS = 256
# A connection must send a whole request head within this long of opening or of its last
# answer; an idle keep-alive connection is closed after it too.
DEFAULT_IDLE_TIMEOUT_SECONDS = 15.0
# How long stop() lets requests in flight finish.
_SHUTDOWN_GRACE_SECONDS = 5.0
_POLL_INTERVAL_SECONDS = 0.01
_PUBLIC_KEY_PATTERN = re.compile(r"[A-Za-z0-9._~-]+")


class Collector(FaultKnobs):
    """A Sentry-compatible ingestion endpoint storing into SQLite, with a web UI at `url`.

    With `db_path=None` the database is a private temporary file, removed once the collector
    is garbage collected (reads keep working after `stop()`).

    `public_key=None` (the default) makes a random key, part of `dsn`. Requests are served
    only for a `Host` naming the bound address or one of `allowed_hosts` ("*": any), and
    ingestion sent by a browser page only from `allowed_origins` ("*": any); see
    docs/security.md. `max_connections`, `idle_timeout`, `body_timeout` and
    `max_envelope_items` bound what one client can hold or send.

    `max_events` keeps only the newest events (None keeps all); groups keep their counts.

    Fault knobs, for watching a client retry and back off: `fail_rate` (0.0-1.0) of ingestion
    requests are answered `fail_status` (429 and 503 with `Retry-After: retry_after`), after
    every ingestion request is delayed by `delay_ms`. `fault_seed` makes the draws repeatable.
    They can be changed at any time, from any thread: assign `fail_rate`, `fail_status`,
    `delay_ms` or `retry_after`, or call `set_faults(...)` / `clear_faults()`.
    """

    def __init__(
        self,
        *,
        host: str = DEFAULT_HOST,
        port: int = 0,
        db_path: str | os.PathLike[str] | None = None,
        public_key: str | None = None,
        project_id: str = DEFAULT_PROJECT_ID,
        allowed_hosts: Iterable[str] = (),
        allowed_origins: Iterable[str] = (),
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES,
        max_envelope_items: int = DEFAULT_MAX_ENVELOPE_ITEMS,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT_SECONDS,
        body_timeout: float = DEFAULT_BODY_TIMEOUT_SECONDS,
        max_events: int | None = None,
        fail_rate: float = 0.0,
        fail_status: int = 500,
        delay_ms: float = 0.0,
        retry_after: float = 1.0,
        fault_seed: int | None = None,
    ) -> None:
        if public_key is None:
            public_key = secrets.token_hex(16)
        _validate(port, public_key, project_id)
        _validate_limits(
            max_body_bytes=max_body_bytes,
            max_decompressed_bytes=max_decompressed_bytes,
            max_envelope_items=max_envelope_items,
            max_connections=max_connections,
        )
        _validate_timeouts(idle_timeout=idle_timeout, body_timeout=body_timeout)
        self._allowed_hosts = _names("allowed_hosts", allowed_hosts)
        self._allowed_origins = _names("allowed_origins", allowed_origins)
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self._faults = FaultInjector(
            Faults(
                fail_rate=fail_rate,
                fail_status=fail_status,
                delay_ms=delay_ms,
                retry_after=retry_after,
            ),
            seed=fault_seed,
        )
        self._max_events = checked_max_events(max_events)
        self.host = host
        self.port = port  # the real port once started
        self.db_path = Path(db_path) if db_path is not None else None
        self.settings = IngestSettings(
            public_key=public_key,
            project_id=str(project_id),
            max_body_bytes=max_body_bytes,
            max_decompressed_bytes=max_decompressed_bytes,
            max_envelope_items=max_envelope_items,
            body_timeout=body_timeout,
        )
        self.refusals = RefusalLog()
        self.request_statuses: collections.Counter[int] = collections.Counter()
        self.ignored_items: collections.Counter[str] = collections.Counter()
        self._store: EventStore | None = None
        self._runner: web.AppRunner | None = None
        self._stopped = False

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        if self._store is not None:
            raise RuntimeError("this Collector was already started")
        private_directory = None
        if self.db_path is None:
            private_directory = tempfile.mkdtemp(prefix="errlink-collector-")
            self.db_path = Path(private_directory) / "events.db"
        store = EventStore(self.db_path, max_events=self._max_events)
        if private_directory is not None:
            # Tied to the store, which the running app also holds: the file outlives stop()
            # for reads, and goes away with the last user.
            weakref.finalize(store, shutil.rmtree, private_directory, ignore_errors=True)
        await asyncio.to_thread(store.open)
        self._store = store
        head_deadline = HeadDeadline(self.idle_timeout, self.refusals)
        state = CollectorState(
            self.settings,
            store,
            self.request_statuses,
            self.ignored_items,
            self._faults,
            AccessPolicy.for_address(self.host, self._allowed_hosts, self._allowed_origins),
            self.refusals,
            head_deadline,
        )
        runner = web.AppRunner(
            build_app(state),
            access_log=None,
            # Bodies are inflated by the handlers, under a size limit; aiohttp's would not be.
            auto_decompress=False,
            shutdown_timeout=_SHUTDOWN_GRACE_SECONDS,
            keepalive_timeout=self.idle_timeout,
        )
        await runner.setup()
        try:
            await CappedTCPSite(
                runner,
                self.host,
                self.port,
                max_connections=descriptor_bound(self.max_connections),
                head_deadline=head_deadline,
                refusals=self.refusals,
            ).start()
        except BaseException:
            await runner.cleanup()
            await asyncio.to_thread(store.close)
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        """Stop serving, let requests in flight finish, close the database. Idempotent."""
        if self._stopped or self._store is None:
            return
        self._stopped = True
        if self._runner is not None:
            await self._runner.cleanup()
        await asyncio.to_thread(self._store.close)

    async def __aenter__(self) -> Collector:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- addresses -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The server's base URL, e.g. `http://127.0.0.1:8000`."""
        self._require_started()
        return f"http://{_url_host(self.host)}:{self.port}"

    @property
    def dsn(self) -> str:
        """The DSN clients should use: `http://<public_key>@<host>:<port>/<project_id>`."""
        self._require_started()
        key, project = self.settings.public_key, self.settings.project_id
        return f"http://{key}@{_url_host(self.host)}:{self.port}/{project}"

    @property
    def public_key(self) -> str:
        """The key clients must present (random unless given); part of `dsn`."""
        return self.settings.public_key

    @property
    def events_url(self) -> str:
        return f"{self.url}{API_PREFIX}/events/"

    @property
    def max_events(self) -> int | None:
        return self._max_events

    @property
    def ui_url(self) -> str:
        """The web UI: the list of issues (groups of events)."""
        return f"{self.url}/"

    def _fault_injector(self) -> FaultInjector:
        return self._faults

    # -- what was received (blocking reads; cheap enough to call from the loop in tests) --

    def events(self) -> list[dict[str, Any]]:
        """Payloads of all stored events, oldest first; includes all that were answered 200."""
        return self._started_store().event_payloads()

    def event_count(self) -> int:
        return self._started_store().count_events()

    async def wait_for_events(self, n: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Wait until at least `n` events are stored and return all of them.

        Raises TimeoutError (with what did arrive) when they do not arrive in time.
        """
        store = self._started_store()
        deadline = time.monotonic() + timeout
        while store.count_events() < n:
            if time.monotonic() >= deadline:
                raise TimeoutError(_shortfall(n, store.count_events(), timeout))
            await asyncio.sleep(_POLL_INTERVAL_SECONDS)
        return store.event_payloads()

    def client_reports(self) -> list[dict[str, Any]]:
        """Payloads of all stored client reports, oldest first."""
        return self._started_store().client_reports()

    def discarded_totals(self) -> dict[tuple[str, str], int]:
        """Drops reported by clients: (reason, category) -> summed quantity."""
        return self._started_store().discarded_totals()

    def groups(self) -> list[StoredGroup]:
        """Every group (issue) of stored events, oldest first: title, count, level, ..."""
        return self._started_store().all_groups()

    # -- internals -------------------------------------------------------------------------

    def _started_store(self) -> EventStore:
        if self._store is None:
            raise RuntimeError("the Collector has not been started")
        return self._store

    def _require_started(self) -> None:
        if self._runner is None:
            raise RuntimeError("the Collector has not been started")


def _validate(port: int, public_key: str, project_id: str) -> None:
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"port must be between 0 and 65535, got {port!r}")
    if not isinstance(public_key, str) or not _PUBLIC_KEY_PATTERN.fullmatch(public_key):
        raise ValueError(
            f"public key must be letters, digits or '.', '_', '~', '-', got {public_key!r}"
        )
    project = str(project_id)
    if not (project.isdigit() or project.isidentifier()):
        raise ValueError(f"project id must be digits or an identifier, got {project_id!r}")


def _validate_limits(**limits: int) -> None:
    for name, value in limits.items():
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _validate_timeouts(**timeouts: float) -> None:
    for name, value in timeouts.items():
        valid = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not valid or not 0 < value < math.inf:
            raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")


def _names(option: str, names: Iterable[str]) -> tuple[str, ...]:
    if isinstance(names, str):
        raise TypeError(f"{option} must be a list of strings, not one string: {names!r}")
    checked = tuple(names)
    for name in checked:
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"{option} must hold non-empty strings, got {name!r}")
    return checked


def _url_host(host: str) -> str:
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    if ":" in host and not host.startswith("["):
        return f"[{host}]"
    return host


def _shortfall(expected: int, arrived: int, timeout: float) -> str:
    return f"expected at least {expected} events, {arrived} arrived within {timeout}s"
