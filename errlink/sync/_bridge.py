"""The process-wide loop thread that hosts the async pipeline for synchronous callers.

One daemon thread per process, started lazily, named ``errlink-loop``. Sync threads never touch
asyncio objects directly: they hand work over with `call_soon_threadsafe` or
`run_coroutine_threadsafe`. We run our own daemon thread rather than anyio's blocking portal
because the portal's worker thread is non-daemon and is joined by `threading` *before* `atexit`
handlers run, so a client the user never closed would hang interpreter exit; here the atexit
flush decides how long exit may wait. After `os.fork()` the child has no loop thread: the
module forgets the parent's one and starts its own on first use.
"""

from __future__ import annotations

import asyncio
import concurrent.futures

# The loop's default executor (name resolution, big bodies) needs this module, and importing
# it registers a threading atexit hook, which fails once the interpreter has begun shutting
# down: a short script may end while the loop thread is still importing the send path.
import concurrent.futures.thread
import os
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")
THREAD_NAME = "errlink-loop"


class LoopThread:
    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)
        self.thread.start()
        self._ready.wait()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        try:
            self.loop.run_forever()
        finally:
            try:
                self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            finally:
                self.loop.close()

    @property
    def alive(self) -> bool:
        return self.thread.is_alive() and not self.loop.is_closed()

    def in_loop_thread(self) -> bool:
        return threading.get_ident() == self.thread.ident

    def call_soon(self, callback: Callable[[], Any]) -> None:
        self.loop.call_soon_threadsafe(callback)

    def run(self, make_coro: Callable[[], Awaitable[T]], timeout: float | None) -> T:
        """Run a coroutine on the loop and wait for it from this (non-loop) thread."""
        if self.in_loop_thread():
            raise RuntimeError(
                "errlink: a blocking call (flush/close) was made from errlink's own loop thread; "
                "it would wait on itself"
            )

        async def runner() -> T:
            return await make_coro()

        future = asyncio.run_coroutine_threadsafe(runner(), self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise

    def stop(self, timeout: float = 1.0) -> None:
        if self.loop.is_closed():
            return
        try:
            self.loop.call_soon_threadsafe(self.loop.stop)
        except RuntimeError:  # already closed
            return
        if not self.in_loop_thread():
            self.thread.join(timeout)


_lock = threading.Lock()
_current: LoopThread | None = None


def loop_thread() -> LoopThread:
    """The process's loop thread, started on first use (and anew in a forked child)."""
    global _current
    current = _current
    if current is not None and current.pid == os.getpid() and current.alive:
        return current
    with _lock:
        current = _current
        if current is None or current.pid != os.getpid() or not current.alive:
            current = _current = LoopThread()
        return current


def running_loop_thread() -> LoopThread | None:
    current = _current
    if current is not None and current.pid == os.getpid() and current.alive:
        return current
    return None


def stop_loop_thread(timeout: float = 1.0) -> None:
    global _current
    with _lock:
        current, _current = _current, None
    if current is not None and current.pid == os.getpid():
        current.stop(timeout)


def _forget_after_fork() -> None:
    global _current, _lock
    # The parent's loop thread does not exist here, and the lock may have been held by a
    # thread that did not survive the fork.
    _current = None
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)
