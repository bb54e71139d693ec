"""The send path is imported on the loop thread after `init()` returns; a fork waits for it.

`init()` would otherwise import the transport, sender, retry and outbox modules on the
caller's thread, which is start-up time a CLI or a Lambda cold start pays before its own work.
The loop thread imports them instead, while the application goes on. A process forked while
that import is half done would inherit modules it can never finish (their import locks belong
to a thread the child does not have), so `os.fork()` first waits for it, at most `FORK_WAIT`
seconds.

A module imported by the warm-up may register fork hooks while a fork waits here: CPython
then calls its `after_in_parent`/`after_in_child` hooks for that fork but not its `before`
hook (the list of those was taken already). Such hooks must cope (`_outbox/writer.py` does);
modules whose hooks cannot (`concurrent.futures.thread`) are imported by `_bridge.py` at once.
"""

from __future__ import annotations

import os
import threading

FORK_WAIT = 5.0

_idle = threading.Condition()
_pending = 0
forks_held = 0  # forks that had to wait for a warm-up: the fork test reads it


def begin() -> None:
    """A warm-up is scheduled (call it on the caller's thread, before scheduling)."""
    global _pending
    with _idle:
        _pending += 1


def end() -> None:
    global _pending
    with _idle:
        _pending -= 1
        _idle.notify_all()


def wait(timeout: float | None = None) -> bool:
    """Block until no warm-up is under way; False if `timeout` seconds passed first."""
    with _idle:
        return _idle.wait_for(lambda: _pending == 0, timeout)


def _before_fork() -> None:
    global forks_held
    if _pending:
        forks_held += 1
        wait(FORK_WAIT)


def _after_fork_in_child() -> None:
    global _idle, _pending
    # The child has no loop thread, so no warm-up runs here.
    _idle = threading.Condition()
    _pending = 0


os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)
