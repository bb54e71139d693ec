"""Real PostgreSQL and Redis servers for the database tests, from Debian's packages.

Each server runs in a temporary directory on a free 127.0.0.1 port and stops when its context
ends. PostgreSQL refuses to run as root: as root, its files belong to the ``postgres`` user
(which Debian's package creates) and its programs run as that user. Readiness is a positive
signal (``pg_isready`` says the server accepts connections; Redis answers ``PING``).

A missing server binary skips the test with the reason, unless ``ERRLINK_REQUIRE_SERVICES=1``
(set by ``.ci/run``): then it is a failure.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

_STARTUP_LIMIT = 60.0  # seconds a server may take to come up before the test errors
_INSTALL_HINT = "install Debian's postgresql and redis-server (.ci/run does)"


@dataclass(frozen=True)
class Postgres:
    host: str
    port: int
    user: str
    database: str

    @property
    def dsn(self) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.database}"


@dataclass(frozen=True)
class Redis:
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"


def unavailable(reason: str) -> None:
    """Skip (or, with ERRLINK_REQUIRE_SERVICES=1, fail) the test needing a missing server."""
    message = f"{reason}; {_INSTALL_HINT}"
    if os.environ.get("ERRLINK_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{message} (ERRLINK_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _postgres_bin() -> Path | None:
    """The directory of the newest PostgreSQL server programs (Debian keeps them off PATH)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/postgres"),
        key=lambda path: (
            int(Path(path).parent.parent.name) if Path(path).parent.parent.name.isdigit() else 0
        ),
    )
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("postgres")
    return Path(on_path).parent if on_path else None


@contextlib.contextmanager
def postgres_server() -> Iterator[Postgres]:
    bin_dir = _postgres_bin()
    if bin_dir is None or not (bin_dir / "initdb").exists():
        unavailable("PostgreSQL's server programs (initdb, postgres) not found")
        raise AssertionError("unreachable")
    run_as: dict[str, Any] = {}
    if os.geteuid() == 0:
        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            unavailable("PostgreSQL refuses to run as root and there is no 'postgres' user")
            raise AssertionError("unreachable") from None
        run_as = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
    # Not pytest's tmp_path: its parents are private to root, out of the postgres user's reach.
    home = Path(tempfile.mkdtemp(prefix="errlink-postgres-"))
    if run_as:
        os.chown(home, run_as["user"], run_as["group"])
    data, log = home / "data", home / "server.log"
    user, port = "errlink", free_port()
    server: subprocess.Popen[bytes] | None = None
    try:
        subprocess.run(
            [bin_dir / "initdb", "-D", data, "-U", user, "--auth=trust", "-E", "UTF8", "--no-sync"],
            check=True,
            capture_output=True,
            **run_as,
        )
        with open(log, "wb") as output:
            server = subprocess.Popen(
                [
                    bin_dir / "postgres",
                    *("-D", data, "-p", str(port), "-k", home),
                    *("-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"),
                    *("-c", "synchronous_commit=off", "-c", "full_page_writes=off"),
                ],
                stdout=output,
                stderr=subprocess.STDOUT,
                **run_as,
            )
        _wait_until(
            lambda: (
                subprocess.run(
                    [bin_dir / "pg_isready", "-q", "-h", "127.0.0.1", "-p", str(port), "-U", user],
                    check=False,
                ).returncode
                == 0
            ),
            server,
            log,
            "PostgreSQL",
        )
        yield Postgres("127.0.0.1", port, user, "postgres")
    finally:
        if server is not None:
            _stop(server, signal.SIGINT)  # PostgreSQL's "fast" shutdown
        shutil.rmtree(home, ignore_errors=True)


@contextlib.contextmanager
def redis_server() -> Iterator[Redis]:
    binary = shutil.which("redis-server")
    if binary is None:
        unavailable("redis-server not found")
        raise AssertionError("unreachable")
    home = Path(tempfile.mkdtemp(prefix="errlink-redis-"))
    log = home / "server.log"
    port = free_port()
    server: subprocess.Popen[bytes] | None = None
    try:
        with open(log, "wb") as output:
            server = subprocess.Popen(
                [
                    binary,
                    *("--port", str(port), "--bind", "127.0.0.1", "--dir", str(home)),
                    *("--save", "", "--appendonly", "no"),
                ],
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        _wait_until(lambda: _redis_pong(port), server, log, "Redis")
        yield Redis("127.0.0.1", port)
    finally:
        if server is not None:
            _stop(server, signal.SIGTERM)
        shutil.rmtree(home, ignore_errors=True)


def _redis_pong(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _wait_until(ready: Any, server: subprocess.Popen[bytes], log: Path, name: str) -> None:
    """Poll `ready()` until it is true; an exited server or one never ready is an error."""
    deadline = time.monotonic() + _STARTUP_LIMIT
    pause = 0.01
    while not ready():
        if server.poll() is not None or time.monotonic() > deadline:
            output = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{name} did not start (exit status {server.poll()}):\n{output}")
        time.sleep(pause)  # between probes of a server still starting
        pause = min(pause * 2, 0.2)


def _stop(server: subprocess.Popen[bytes], how: signal.Signals) -> None:
    if server.poll() is None:
        server.send_signal(how)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
