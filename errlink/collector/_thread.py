"""`CollectorThread`: a Collector on its own event loop in a daemon thread, for sync code."""

from __future__ import annotations

import asyncio
import collections
import os
import threading
import time
from types import TracebackType
from typing import Any

from ._collector import _POLL_INTERVAL_SECONDS, Collector, _shortfall
from ._faults import FaultInjector, FaultKnobs
from ._queries import StoredGroup

_START_TIMEOUT_SECONDS = 30.0
_STOP_TIMEOUT_SECONDS = 30.0


class CollectorThread(FaultKnobs):
    """Runs a `Collector` in the background; takes the same keyword options.

    Reads (`events()` and friends) go straight to the database from the calling thread.
    """

    def __init__(self, **options: Any) -> None:
        self.collector = Collector(**options)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested: asyncio.Event | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("this CollectorThread was already started")
        self._thread = threading.Thread(target=self._run, name="errlink-collector", daemon=True)
        self._thread.start()
        if not self._ready.wait(_START_TIMEOUT_SECONDS):
            raise RuntimeError("the collector thread did not start in time")
        if self._startup_error is not None:
            self._thread.join()
            raise self._startup_error

    def stop(self) -> None:
        """Stop the server and join the thread. Idempotent."""
        thread, loop, stop_requested = self._thread, self._loop, self._stop_requested
        if thread is None or not thread.is_alive() or loop is None or stop_requested is None:
            return
        try:
            loop.call_soon_threadsafe(stop_requested.set)
        except RuntimeError:  # the loop already finished
            pass
        thread.join(_STOP_TIMEOUT_SECONDS)
        if thread.is_alive():
            raise RuntimeError("the collector thread did not stop in time")

    def __enter__(self) -> CollectorThread:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_requested = asyncio.Event()
        try:
            await self.collector.start()
        except BaseException as exc:
            self._startup_error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            await self._stop_requested.wait()
        finally:
            await self.collector.stop()

    # -- the Collector's accessors, usable from any thread ---------------------------------

    @property
    def dsn(self) -> str:
        return self.collector.dsn

    @property
    def public_key(self) -> str:
        return self.collector.public_key

    @property
    def url(self) -> str:
        return self.collector.url

    @property
    def events_url(self) -> str:
        return self.collector.events_url

    @property
    def ui_url(self) -> str:
        return self.collector.ui_url

    @property
    def port(self) -> int:
        return self.collector.port

    @property
    def db_path(self) -> os.PathLike[str] | None:
        return self.collector.db_path

    @property
    def request_statuses(self) -> collections.Counter[int]:
        """Statuses answered so far (a snapshot copy, safe to read from this thread)."""
        # dict() copies in one C-level step under the GIL, so a concurrent update on the
        # collector's loop cannot break the iteration.
        return collections.Counter(dict(self.collector.request_statuses))

    def events(self) -> list[dict[str, Any]]:
        return self.collector.events()

    def event_count(self) -> int:
        return self.collector.event_count()

    def wait_for_events(self, n: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Block until at least `n` events are stored and return all of them (or TimeoutError)."""
        deadline = time.monotonic() + timeout
        while self.collector.event_count() < n:
            if time.monotonic() >= deadline:
                raise TimeoutError(_shortfall(n, self.collector.event_count(), timeout))
            time.sleep(_POLL_INTERVAL_SECONDS)
        return self.collector.events()

    def client_reports(self) -> list[dict[str, Any]]:
        return self.collector.client_reports()

    def discarded_totals(self) -> dict[tuple[str, str], int]:
        return self.collector.discarded_totals()

    def groups(self) -> list[StoredGroup]:
        return self.collector.groups()

    # -- fault knobs: settings are swapped as one reference, so any thread may change them --

    def _fault_injector(self) -> FaultInjector:
        return self.collector._fault_injector()
