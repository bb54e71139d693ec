"""Exit paths that skip `atexit`: `os._exit` and SIGTERM, for the sync clients.

`os._exit` ends the process at once: multiprocessing's fork and forkserver children end that
way, as do RQ's work horses and many forked servers. While an enabled sync client is open,
errlink replaces `os._exit` with a wrapper that first flushes what is queued and, with an
outbox, writes what is left to it (for a later process to deliver), all within
`min(shutdown_timeout, 1 s)`; then it calls the function it replaced. Without an outbox, what
is left is counted as dropped ("network_error") and reported in one warning through errlink's
logger. Code that took a reference to `os._exit` before the client was created is not seen.

SIGTERM without a Python handler kills the process without `atexit`. With
``handle_sigterm=True`` a client installs a handler (from the main thread only) that does the
same within `shutdown_timeout`, then hands over: to the previous Python handler; or, when the
previous handling was the default, it restores the default and raises SIGTERM again, so the
process still dies of it; a SIGTERM that was ignored stays ignored. Only when the process then
ends (the default) is what is left counted as lost, and the process session (release health)
ends "abnormal" (at `os._exit`: "exited" for status 0, else "abnormal").

The work runs in a helper thread that the exiting thread waits for, for a bounded time: the
exiting thread may be interrupted (a signal handler) while holding one of errlink's locks, and
must never wait on it forever. Nothing here raises into the application.
"""

from __future__ import annotations

import concurrent.futures
import os
import signal
import threading
import time
import weakref
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Any, NoReturn, Protocol, TypeVar

from .._log import INTERNAL, logger
from .._mistakes import warn
from ._bridge import LoopThread, running_loop_thread

if TYPE_CHECKING:
    from .._capture.core import ClientCore
    from .._options import Options


class Client(Protocol):
    """What this module needs of a sync client (`sync._client.Client`, which imports this
    module: named here by its shape, so the two do not import each other)."""

    @property
    def closed(self) -> bool: ...

    @property
    def options(self) -> Options: ...

    @property
    def core(self) -> ClientCore: ...


# The most an os._exit waits for errlink, whatever shutdown_timeout says.
OS_EXIT_MAX_WAIT = 1.0
# With an outbox, this share of the wait (at most this many seconds) is kept for writing.
SPILL_RESERVE = 0.5
# How long the loop thread has to show it is alive before the exiting thread writes itself.
LOOP_ANSWER_WAIT = 0.2
# Beyond its budget, the time the exiting thread still gives the helper thread.
HELPER_GRACE = 0.25

T = TypeVar("T")
SignalHandler = Callable[[int, FrameType | None], Any] | int | None

_clients: weakref.WeakSet[Client] = weakref.WeakSet()
_sigterm_clients: weakref.WeakSet[Client] = weakref.WeakSet()
_lock = threading.Lock()
_original_exit: Callable[[int], NoReturn] | None = None
_previous_sigterm: SignalHandler = None
_exit_at_import = os._exit
_in_progress = False  # one exit path at a time; another one meanwhile goes straight through


@dataclass
class _Tally:
    saved: int = 0  # written to the outbox by this exit path
    lost: int = 0  # still undelivered, not written
    outbox: bool = False  # a client had an outbox to write to
    unknown: bool = False  # a client's state could not be read in time


# -- registration (Client.__init__ / close) ---------------------------------------------------


def watch(client: Client) -> None:
    """Cover `client` at `os._exit` (and at SIGTERM with ``handle_sigterm=True``)."""
    global _original_exit
    with _lock:
        _clients.add(client)
        if _original_exit is None:
            _original_exit = os._exit
            os._exit = _exit
    if client.options.handle_sigterm:
        _sigterm_clients.add(client)
        _install_sigterm_handler()


def unwatch(client: Client) -> None:
    """`client` closed: undo what `watch` installed once no client needs it."""
    global _original_exit
    with _lock:
        _clients.discard(client)
        _sigterm_clients.discard(client)
        if not _clients and _original_exit is not None and os._exit is _exit:
            os._exit = _original_exit  # type: ignore[assignment]
            _original_exit = None
    if not _sigterm_clients:
        _uninstall_sigterm_handler()


# -- os._exit -----------------------------------------------------------------------------------


def _exit(status: int) -> NoReturn:
    try:
        budget = min(OS_EXIT_MAX_WAIT, _shutdown_timeout())
        _before_exit("os._exit()", budget, final=True, status=status)
    except BaseException:  # the process must end whatever happened here
        pass
    (_original_exit or _exit_at_import)(status)


# -- SIGTERM --------------------------------------------------------------------------------


def _install_sigterm_handler() -> None:
    global _previous_sigterm
    if threading.current_thread() is not threading.main_thread():
        warn(
            "errlink: handle_sigterm=True has no effect: the client was created outside the "
            "main thread, and only the main thread may install a signal handler"
        )
        return
    try:
        current = signal.getsignal(signal.SIGTERM)
        if current is _on_sigterm:
            return
        if current is None:
            warn(
                "errlink: handle_sigterm=True left SIGTERM alone: its handler was not installed "
                "from Python, so errlink could not pass the signal on to it"
            )
            return
        _previous_sigterm = current
        signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError):  # pragma: no cover - no signals here (embedded interpreter)
        pass


def _uninstall_sigterm_handler() -> None:
    if threading.current_thread() is not threading.main_thread():
        return  # the handler stays, and passes the signal on with no client to save
    try:
        if signal.getsignal(signal.SIGTERM) is _on_sigterm:
            previous = _previous_sigterm
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
    except (ValueError, OSError):  # pragma: no cover
        pass


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    previous = _previous_sigterm
    dies = previous in (signal.SIG_DFL, None)
    try:
        if _sigterm_clients:  # else the handler outlived its clients (closed off the main thread)
            budget = _shutdown_timeout(_sigterm_clients)
            _before_exit("SIGTERM", budget, final=dies, status=None)
    except BaseException:
        pass
    if callable(previous):
        previous(signum, frame)
    elif dies:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)


# -- the work ---------------------------------------------------------------------------------


def _shutdown_timeout(clients: weakref.WeakSet[Client] | None = None) -> float:
    chosen = list(_clients if clients is None else clients)
    return max((c.options.shutdown_timeout for c in chosen), default=0.0)


def _before_exit(path: str, budget: float, *, final: bool, status: int | None) -> None:
    """Flush, then save to the outbox (or count) what each client still holds, in `budget`
    seconds (plus a short grace); one log line about what was left."""
    global _in_progress
    if _in_progress:
        return  # e.g. a hook calling os._exit while this one saves
    clients = [c for c in list(_clients) if not c.closed and _holds_anything(c, final)]
    if not clients:
        return
    _in_progress = True
    try:
        tally = _Tally()
        deadline = time.monotonic() + budget

        def work() -> None:
            if final:
                _end_sessions(clients, status)
            _save_all(clients, deadline, final, tally)

        finished = _run_in_helper(work, budget)
        _report(path, budget, tally, finished, final)
    finally:
        _in_progress = False


def _holds_anything(client: Client, final: bool) -> bool:
    pipeline = client.core.pipeline
    if pipeline is None:
        return False
    # A session ended just now is handed over by the flush.
    return pipeline.holding or (final and client.core.sessions is not None)


def _end_sessions(clients: list[Client], status: int | None) -> None:
    ending = "exited" if status == 0 else "abnormal"
    for client in clients:
        sessions = client.core.sessions
        if sessions is not None:
            try:
                sessions.end_process(ending)
            except Exception:
                pass


def _run_in_helper(work: Callable[[], None], budget: float) -> bool:
    """Run `work` in a helper thread, waiting at most `budget` plus a grace; True if it ended."""
    helper = threading.Thread(target=work, name="errlink-exit", daemon=True)
    try:
        helper.start()
    except RuntimeError:  # no new threads (interpreter shutdown): this thread does it
        work()
        return True
    helper.join(budget + HELPER_GRACE)
    return not helper.is_alive()


def _save_all(clients: list[Client], deadline: float, final: bool, tally: _Tally) -> None:
    try:
        for client in clients:
            _save(client, deadline, final, tally)
    except Exception:
        tally.unknown = True


def _save(client: Client, deadline: float, final: bool, tally: _Tally) -> None:
    pipeline = client.core.pipeline
    if pipeline is None:
        return
    saver = pipeline.exit_saver
    tally.outbox = tally.outbox or saver.has_outbox
    thread = running_loop_thread()
    # The answer comes after any pipeline start still queued on the loop: ask first.
    if (
        thread is not None
        and _loop_answers(thread, min(LOOP_ANSWER_WAIT, _left(deadline) / 4))
        and pipeline.loop is thread.loop
    ):
        spills = saver.can_spill
        reserve = min(SPILL_RESERVE, _left(deadline) / 2) if spills else 0.0
        flush_for = _left(deadline) - reserve
        _run_on(thread, lambda: pipeline.flush(flush_for), flush_for)
        if spills and pipeline.holding:
            spill_for = _left(deadline)
            tally.saved += _run_on(thread, lambda: saver.spill_held(spill_for), spill_for) or 0
    elif saver.has_outbox:
        tally.saved += saver.spill_directly(deadline)
    left = saver.unsaved(lock_timeout=_left(deadline))
    if left is None:
        tally.unknown = True
        return
    if final and left:
        saver.count_lost(left)
    tally.lost += len(left)


def _left(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())


def _loop_answers(thread: LoopThread, wait: float) -> bool:
    answered = threading.Event()
    try:
        thread.call_soon(answered.set)
    except RuntimeError:  # the loop is closed
        return False
    return answered.wait(wait)


def _run_on(
    thread: LoopThread, make_coro: Callable[[], Coroutine[Any, Any, T]], timeout: float
) -> T | None:
    if timeout <= 0:
        return None
    try:
        return thread.run(make_coro, timeout)
    except (concurrent.futures.TimeoutError, RuntimeError):
        return None


def _report(path: str, budget: float, tally: _Tally, finished: bool, final: bool) -> None:
    try:
        if final and tally.lost:
            logger.warning(
                "errlink: the process is ending through %s with %d event(s) undelivered after "
                "waiting %.1f s; they are lost (%s)",
                path,
                tally.lost,
                budget,
                "not written to the outbox in time"
                if tally.outbox
                else "an outbox keeps them for the next process: outbox=PATH",
                extra=INTERNAL,
            )
        elif not finished or tally.unknown:
            logger.warning(
                "errlink: %s: could not save what was queued within %.1f s",
                path,
                budget,
                extra=INTERNAL,
            )
        elif tally.saved:
            logger.debug(
                "errlink: %s: %d event(s) written to the outbox for the next process",
                path,
                tally.saved,
                extra=INTERNAL,
            )
    except Exception:
        pass


def _after_fork_in_child() -> None:
    global _lock, _in_progress
    _lock = threading.Lock()  # a thread that did not survive the fork may have held it
    _in_progress = False


os.register_at_fork(after_in_child=_after_fork_in_child)
