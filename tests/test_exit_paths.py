"""Exit paths that skip atexit: os._exit, multiprocessing children, SIGTERM.

Each case is a real child process that captures, then ends that way. The server is a collector
behind a fault proxy, both shared by the module. With an outbox the proxy holds every request
unanswered while the child runs (so what the child captured is still queued or in flight when
it ends), then this process drains the same outbox and the event must arrive exactly once.
Without an outbox the child's own log and counters say what was lost.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from errlink import AsyncClient
from errlink._mistakes import ConfigurationWarning
from errlink.collector import CollectorThread
from errlink.sync import Client, _exit_paths
from tests._support import wait_until
from tests.faults._proxy import FORWARD, HANG, ProxyThread, always

REPO = Path(__file__).resolve().parent.parent
CHILD_TIMEOUT = 30


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorThread]:
    path = tmp_path_factory.mktemp("exit-paths") / "collector.db"
    with CollectorThread(db_path=path, public_key="errlink") as started:
        yield started


@pytest.fixture(scope="module")
def proxy(collector: CollectorThread) -> Iterator[ProxyThread]:
    with ProxyThread(collector.url) as started:
        yield started


@pytest.fixture
def hanging(proxy: ProxyThread) -> Iterator[ProxyThread]:
    """The proxy reads every request and never answers, until the test drains."""
    proxy.set_policy(always(HANG))
    yield proxy
    proxy.set_policy(always(FORWARD))


def unique(label: str) -> str:
    return f"{label} {uuid.uuid4().hex}"


def arrived(collector: CollectorThread, message: str) -> int:
    return sum(
        1
        for event in collector.events()
        if (event.get("logentry") or {}).get("formatted") == message
    )


def run_child(
    tmp_path: Path, source: str, *args: str, expect: int | None = 0
) -> subprocess.CompletedProcess[str]:
    script = tmp_path / f"child_{uuid.uuid4().hex[:8]}.py"
    script.write_text(textwrap.dedent(source))
    done = subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
        cwd=REPO,
    )
    if expect is not None:
        assert done.returncode == expect, done.stderr
    return done


def start_child(tmp_path: Path, source: str, *args: str) -> subprocess.Popen[str]:
    """A child that prints "ready" once it captured; the caller ends it."""
    script = tmp_path / f"child_{uuid.uuid4().hex[:8]}.py"
    script.write_text(textwrap.dedent(source))
    child = subprocess.Popen(
        [sys.executable, str(script), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    assert line.strip() == "ready", line + (child.stderr.read() if child.stderr else "")
    return child


def terminate(child: subprocess.Popen[str]) -> tuple[int, str, str]:
    child.send_signal(signal.SIGTERM)
    out, err = child.communicate(timeout=CHILD_TIMEOUT)
    return child.returncode, out, err


def drain(proxy: ProxyThread, collector: CollectorThread, outbox: Path, *messages: str) -> None:
    """A later process's client on the same outbox delivers what the child left there."""
    proxy.set_policy(always(FORWARD))
    with Client(proxy.dsn(), outbox=outbox, outbox_drain_rate=1000.0) as client:
        wait_until(
            lambda: all(arrived(collector, message) for message in messages),
            timeout=15,
            message=f"{messages} delivered from the outbox",
        )
        assert client.flush(5)
    for message in messages:
        assert arrived(collector, message) == 1, message


def stored_rows(outbox: Path) -> int:
    db = sqlite3.connect(outbox)
    try:
        return int(db.execute("SELECT count(*) FROM outbox").fetchone()[0])
    finally:
        db.close()


# -- with the outbox: the event reaches the server ---------------------------------------------

OS_EXIT_AFTER_CAPTURE = """
    import os, sys
    from errlink.sync import Client
    dsn, outbox, first, second = sys.argv[1:5]
    client = Client(dsn, outbox=outbox, max_in_flight=1)
    client.capture_message(first)   # sent, but never answered: in flight at exit
    client.capture_message(second)  # behind it in the queue
    os._exit(0)
"""


def test_os_exit_right_after_capture_leaves_the_events_in_the_outbox(
    hanging: ProxyThread, collector: CollectorThread, tmp_path: Path
) -> None:
    outbox = tmp_path / "outbox.sqlite3"
    first, second = unique("in flight at os._exit"), unique("queued at os._exit")
    run_child(tmp_path, OS_EXIT_AFTER_CAPTURE, hanging.dsn(), str(outbox), first, second)
    assert stored_rows(outbox) == 2
    drain(hanging, collector, outbox, first, second)


FORK_CHILD = """
    import multiprocessing, sys
    import errlink

    def work(message):
        errlink.capture_message(message)  # through the client inherited from the parent

    if __name__ == "__main__":
        dsn, outbox, message, method = sys.argv[1:5]
        errlink.init(dsn, outbox=outbox, shutdown_timeout=1.0)
        child = multiprocessing.get_context(method).Process(target=work, args=(message,))
        child.start()
        child.join()
        print(child.exitcode)
"""

SPAWN_CHILD = """
    import multiprocessing, sys
    import errlink

    def work(dsn, outbox, message):
        errlink.init(dsn, outbox=outbox, shutdown_timeout=1.0)
        errlink.capture_message(message)

    if __name__ == "__main__":
        dsn, outbox, message = sys.argv[1:4]
        child = multiprocessing.get_context("spawn").Process(
            target=work, args=(dsn, outbox, message)
        )
        child.start()
        child.join()
        print(child.exitcode)
"""


def test_a_forked_multiprocessing_child_leaves_its_event_in_the_outbox(
    hanging: ProxyThread, collector: CollectorThread, tmp_path: Path
) -> None:
    # popen_fork ends the child with os._exit, after multiprocessing's own finalizers.
    outbox = tmp_path / "outbox.sqlite3"
    message = unique("forked child")
    done = run_child(tmp_path, FORK_CHILD, hanging.dsn(), str(outbox), message, "fork")
    assert done.stdout.split() == ["0"]
    drain(hanging, collector, outbox, message)


def test_a_spawned_multiprocessing_child_leaves_its_event_in_the_outbox(
    hanging: ProxyThread, collector: CollectorThread, tmp_path: Path
) -> None:
    # A spawned child ends through sys.exit: atexit runs, and close spills what is left.
    outbox = tmp_path / "outbox.sqlite3"
    message = unique("spawned child")
    done = run_child(tmp_path, SPAWN_CHILD, hanging.dsn(), str(outbox), message)
    assert done.stdout.split() == ["0"]
    drain(hanging, collector, outbox, message)


SIGTERM_CHILD = """
    import os, signal, sqlite3, sys, time
    from errlink.sync import Client
    dsn, outbox, message, previous = sys.argv[1:5]

    def previous_handler(signum, frame):
        db = sqlite3.connect(outbox)
        rows = db.execute("SELECT count(*) FROM outbox").fetchone()[0]
        print("previous handler ran; rows in the outbox:", rows, flush=True)
        if previous == "then os._exit":
            os._exit(7)
        sys.exit(7)  # a graceful shutdown: atexit and close run

    if previous != "default":
        signal.signal(signal.SIGTERM, previous_handler)
    client = Client(dsn, outbox=outbox or None, handle_sigterm=True, shutdown_timeout=1.0)
    client.capture_message(message)
    print("ready", flush=True)
    while True:
        time.sleep(1)
"""


def test_sigterm_with_handle_sigterm_leaves_the_event_in_the_outbox_and_dies_of_it(
    hanging: ProxyThread, collector: CollectorThread, tmp_path: Path
) -> None:
    outbox = tmp_path / "outbox.sqlite3"
    message = unique("sigterm")
    child = start_child(tmp_path, SIGTERM_CHILD, hanging.dsn(), str(outbox), message, "default")
    status, _out, err = terminate(child)
    assert status == -signal.SIGTERM, err  # still killed by SIGTERM, as without errlink
    drain(hanging, collector, outbox, message)


@pytest.mark.parametrize("previous", ["then os._exit", "then sys.exit"])
def test_sigterm_spills_then_chains_to_the_previous_handler(
    hanging: ProxyThread, collector: CollectorThread, tmp_path: Path, previous: str
) -> None:
    outbox = tmp_path / "outbox.sqlite3"
    message = unique(f"sigterm chained, {previous}")
    child = start_child(tmp_path, SIGTERM_CHILD, hanging.dsn(), str(outbox), message, previous)
    status, out, err = terminate(child)
    assert status == 7, err
    # Written before the previous handler ran; neither its os._exit nor the close at exit
    # wrote a second copy (the request was still in flight, unanswered, all along).
    assert "previous handler ran; rows in the outbox: 1" in out
    assert stored_rows(outbox) == 1
    drain(hanging, collector, outbox, message)


LOOP_BLOCKED = """
    import os, sys, time
    from errlink.sync import Client
    from errlink.sync._bridge import loop_thread
    dsn, outbox, message = sys.argv[1:4]
    client = Client(dsn, outbox=outbox)
    loop_thread().call_soon(lambda: time.sleep(5))  # a loop that does not answer
    client.capture_message(message)
    os._exit(0)
"""


def test_os_exit_writes_the_queue_itself_when_the_loop_does_not_answer(
    hanging: ProxyThread, collector: CollectorThread, tmp_path: Path
) -> None:
    outbox = tmp_path / "outbox.sqlite3"
    message = unique("loop blocked")
    run_child(tmp_path, LOOP_BLOCKED, hanging.dsn(), str(outbox), message)
    drain(hanging, collector, outbox, message)


# -- without the outbox: delivered if the server answers in time, else counted -----------------

NO_OUTBOX_OS_EXIT = """
    import json, logging, os, sys
    from errlink.sync import Client
    dsn, message = sys.argv[1:3]
    logging.basicConfig(level=logging.WARNING, format="%(name)s %(levelname)s %(message)s")
    real_exit = os._exit

    def report_then_exit(status):  # runs after errlink's own exit path
        print(json.dumps({"dropped": client.stats.dropped, "pending": client.stats.pending}))
        sys.stdout.flush()
        real_exit(status)

    os._exit = report_then_exit
    client = Client(dsn)
    client.capture_message(message)
    os._exit(0)
"""


def test_os_exit_without_outbox_flushes_what_was_queued(
    proxy: ProxyThread, collector: CollectorThread, tmp_path: Path
) -> None:
    message = unique("flushed at os._exit")
    done = run_child(tmp_path, NO_OUTBOX_OS_EXIT, proxy.dsn(), message)
    assert json.loads(done.stdout) == {"dropped": {}, "pending": 0}
    assert arrived(collector, message) == 1  # the child delivered it before ending
    assert "undelivered" not in done.stderr


def test_os_exit_without_outbox_counts_and_logs_what_is_lost(
    hanging: ProxyThread, tmp_path: Path
) -> None:
    done = run_child(tmp_path, NO_OUTBOX_OS_EXIT, hanging.dsn(), unique("lost at os._exit"))
    assert json.loads(done.stdout) == {"dropped": {"network_error": 1}, "pending": 0}
    lines = [line for line in done.stderr.splitlines() if "undelivered" in line]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("errlink WARNING ")
    assert "through os._exit() with 1 event(s) undelivered" in lines[0]
    assert "outbox=PATH" in lines[0]


NO_OUTBOX_SIGTERM = """
    import logging, sys, time
    from errlink.sync import Client
    dsn, message = sys.argv[1:3]
    logging.basicConfig(level=logging.WARNING, format="%(name)s %(levelname)s %(message)s")
    client = Client(dsn, handle_sigterm=True, shutdown_timeout=0.5)
    client.capture_message(message)
    print("ready", flush=True)
    while True:
        time.sleep(1)
"""


def test_sigterm_without_outbox_logs_what_is_lost_and_dies_of_it(
    hanging: ProxyThread, tmp_path: Path
) -> None:
    child = start_child(tmp_path, NO_OUTBOX_SIGTERM, hanging.dsn(), unique("lost at SIGTERM"))
    status, _out, err = terminate(child)
    assert status == -signal.SIGTERM
    lines = [line for line in err.splitlines() if "undelivered" in line]
    assert len(lines) == 1, err
    assert "through SIGTERM with 1 event(s) undelivered after waiting 0.5 s" in lines[0]


# -- what is installed, and when ----------------------------------------------------------------

INSTALLS = """
    import os, signal, sys
    from errlink.sync import Client
    from errlink.sync import _exit_paths
    dsn = sys.argv[1]
    original_exit = os._exit
    def mine(signum, frame):
        pass
    signal.signal(signal.SIGTERM, mine)
    plain = Client(dsn)
    print(os._exit is _exit_paths._exit, signal.getsignal(signal.SIGTERM) is mine)
    handling = Client(dsn, handle_sigterm=True)
    print(signal.getsignal(signal.SIGTERM) is _exit_paths._on_sigterm)
    handling.close()
    print(signal.getsignal(signal.SIGTERM) is mine, os._exit is _exit_paths._exit)
    plain.close()
    print(os._exit is original_exit)
"""


def test_os_exit_is_wrapped_while_a_client_is_open_and_sigterm_only_when_asked(
    proxy: ProxyThread, tmp_path: Path
) -> None:
    done = run_child(tmp_path, INSTALLS, proxy.dsn())
    assert done.stdout.split("\n")[:4] == ["True True", "True", "True True", "True"]


def test_handle_sigterm_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match="'handle_sigterm' must be True or False"):
        Client(None, handle_sigterm="yes")  # type: ignore[arg-type]


def test_handle_sigterm_off_the_main_thread_warns(proxy: ProxyThread) -> None:
    caught: list[Any] = []

    def create() -> None:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            Client(proxy.dsn(), handle_sigterm=True).close()
        caught.extend(seen)

    thread = threading.Thread(target=create)
    thread.start()
    thread.join(10)
    assert [w.category for w in caught] == [ConfigurationWarning]
    assert "main thread" in str(caught[0].message)
    assert signal.getsignal(signal.SIGTERM) is not _exit_paths._on_sigterm


async def test_handle_sigterm_on_an_async_client_warns_that_it_does_nothing() -> None:
    with pytest.warns(ConfigurationWarning, match="no effect on an AsyncClient"):
        client = AsyncClient(None, handle_sigterm=True)
    await client.aclose()
    assert signal.getsignal(signal.SIGTERM) is not _exit_paths._on_sigterm
