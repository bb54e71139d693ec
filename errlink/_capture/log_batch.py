"""A client's buffer of structured log records, handed to the pipeline in batches.

Records gather in an open batch under a lock (O(1) per record). The batch goes to the pipeline
as one `log` item when it holds `BATCH_RECORDS`, when its first record is `FLUSH_SECONDS` old
(one timer thread for the whole process, `_Flusher`), and at every `flush()`/`close()` (a
pipeline flush hook). The pipeline holds at most `LOG.own_queue` batches of its own, apart from
the queue events use, so logs never crowd out errors; a batch refused there is counted in client
reports as `queue_overflow` under `log_item`, one per record.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from typing import Any, Protocol

from .._delivery.kinds import LOG
from .._delivery.pipeline import Pipeline
from .._delivery.stats import Stats
from .._log import INTERNAL, logger
from .log_records import Entry, LogBatch, RecordBuilder

BATCH_RECORDS = 100
FLUSH_SECONDS = 5.0
# The queue's byte bound counts a batch as this much per record (a record is at most 10 kB).
_SIZE_PER_RECORD = 512


class LogOwner(Protocol):
    """What a buffer needs of its client's core."""

    pipeline: Pipeline | None
    stats: Stats

    def ensure_started(self) -> None: ...


class LogBuffer:
    def __init__(self, owner: LogOwner, builder: RecordBuilder) -> None:
        self.builder = builder
        self._owner = owner
        self._lock = threading.Lock()
        self._open: list[Entry | dict[str, Any]] = []
        self._hooked: Pipeline | None = None
        _buffers.add(self)
        self._hook_pipeline()

    def add(self, entry: Entry | dict[str, Any]) -> None:
        """Buffer one record (any thread; never blocks on I/O)."""
        with self._lock:
            batch = self._open
            batch.append(entry)
            count = len(batch)
            if count >= BATCH_RECORDS:
                self._open = []
        if count >= BATCH_RECORDS:
            self._submit(batch)
        elif count == 1:
            _flusher.schedule(self)
            self._hook_pipeline()

    def flush(self) -> None:
        """Hand the open batch to the pipeline now."""
        with self._lock:
            batch, self._open = self._open, []
        if batch:
            self._submit(batch)

    def _submit(self, batch: list[Entry | dict[str, Any]]) -> None:
        owner = self._owner
        pipeline = owner.pipeline
        if pipeline is None:
            return
        if pipeline.loop is None:
            owner.ensure_started()
        count = len(batch)
        pipeline.submit_item(
            LOG, LogBatch(self.builder, batch), count * _SIZE_PER_RECORD, quantity=count
        )

    def _hook_pipeline(self) -> None:
        """flush() and close() hand over the open batch (again after a fork's new pipeline)."""
        pipeline = self._owner.pipeline
        if pipeline is not None and pipeline is not self._hooked:
            self._hooked = pipeline
            pipeline.add_flush_hook(self.flush)
            self._owner.ensure_started()

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self._open = []


class _Flusher:
    """One daemon thread that hands over batches whose first record is `FLUSH_SECONDS` old."""

    def __init__(self) -> None:
        self._condition = threading.Condition(threading.Lock())
        self._due: dict[LogBuffer, float] = {}
        self._thread: threading.Thread | None = None

    def schedule(self, buffer: LogBuffer) -> None:
        with self._condition:
            if buffer in self._due:
                return
            self._due[buffer] = time.monotonic() + FLUSH_SECONDS
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="errlink-log-flusher", daemon=True
                )
                self._thread.start()
            else:
                self._condition.notify()

    def _run(self) -> None:
        while True:
            with self._condition:
                ready = self._wait_for_due()
            for buffer in ready:
                _flush_quietly(buffer)

    def _wait_for_due(self) -> list[LogBuffer]:
        """(Holding the condition.) The buffers due now, once there are any."""
        due = self._due
        while True:
            now = time.monotonic()
            ready = [buffer for buffer, at in due.items() if at <= now]
            if ready:
                for buffer in ready:
                    del due[buffer]
                return ready
            self._condition.wait(min(due.values()) - now if due else None)


def _flush_quietly(buffer: LogBuffer) -> None:
    try:
        buffer.flush()
    except Exception:
        logger.warning("errlink: could not hand over logs", exc_info=True, extra=INTERNAL)


_flusher = _Flusher()
_buffers: weakref.WeakSet[LogBuffer] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    # The parent's records are its own to send; a lock held by one of its threads stays held.
    global _flusher
    _flusher = _Flusher()
    for buffer in list(_buffers):
        buffer._after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
