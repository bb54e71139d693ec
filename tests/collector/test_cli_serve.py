"""`errlink serve` as a user runs it: a real process, real HTTP, real signals."""

from __future__ import annotations

import json
import signal
import socket
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from errlink._cli.main import main
from errlink._wire.dsn import Dsn
from tests._support.collector import CollectorProcess


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[CollectorProcess]:
    """`python -m errlink serve --port 0` in a subprocess, as a user starts it (not quiet, the
    default retention, run from an unrelated directory); `.dsn` is the DSN it printed."""
    with CollectorProcess(
        db=tmp_path / "e.db", quiet=False, max_events=None, capture_stderr=True, cwd=tmp_path
    ) as process:
        yield process


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_serve_prints_dsn_accepts_events_and_stops_on_signal(
    serve: CollectorProcess, stop_signal: signal.Signals
) -> None:
    parsed = Dsn.parse(serve.dsn)
    assert (parsed.host, parsed.project_id) == ("127.0.0.1", "1")
    assert len(parsed.public_key) == 32  # a random key, unless --key gives one
    assert parsed.port not in (None, 0)

    event = {"event_id": uuid.uuid4().hex, "message": "hello from a test", "level": "info"}
    request = urllib.request.Request(
        parsed.store_url,
        json.dumps(event).encode(),
        {"X-Sentry-Auth": parsed.auth_header(), "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.load(response) == {"id": event["event_id"]}
    assert serve.events_url == f"http://{parsed.netloc}/api/0/events/"
    assert serve.events() == [event]

    stdout, stderr = serve.stop(stop_signal, timeout=15)
    assert serve.returncode == 0, stderr
    assert "stopping" in stdout
    assert event["event_id"] in stderr  # each stored event is logged


def test_no_arguments_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "serve" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["serve", "--port", "99999"], "port must be between 0 and 65535"),
        (["serve", "--port", "http"], "not a port number"),
        (["serve", "--nope"], "unrecognized arguments"),
        (["serve", "--key", "a@b", "--port", "0"], "public key must be"),
        (["serve", "--project", "a/b", "--port", "0"], "argument --project: a project id is a"),
        (["serve", "--project", "abc"], "argument --project: a project id is a number, not 'abc'"),
        (["frobnicate"], "invalid choice"),
        (["serve", "--fail-rate", "1.5"], "must be between 0 and 1"),
        (["serve", "--fail-rate", "lots"], "not a number"),
        (["serve", "--status", "200"], "must be an error status"),
        (["serve", "--delay", "-5"], "must be 0 or more"),
        (["serve", "--max-events", "-1"], "must be 0 or more"),
    ],
)
def test_bad_options_exit_2_with_a_clear_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status: int | str | None
    try:
        status = main(argv)
    except SystemExit as exit_:  # argparse's own errors
        status = exit_.code
    assert status == 2
    assert message in capsys.readouterr().err


def test_an_unknown_option_shows_the_usage_of_serve_not_of_errlink(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--bogus"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: errlink serve [-h] [--host HOST] [--port PORT]")
    assert err.endswith("errlink serve: error: unrecognized arguments: --bogus\n")


def test_a_port_in_use_is_one_line_suggesting_port_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        status = main(["serve", "--port", str(port), "--db", str(tmp_path / "e.db")])
    assert status == 1
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1
    assert captured.err.startswith(f"errlink serve: error: cannot listen on 127.0.0.1:{port}: ")
    assert "--port 0 picks any free port" in captured.err
    assert "Traceback" not in captured.err


def test_unusable_database_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not sqlite at all" * 100)
    assert main(["serve", "--port", "0", "--db", str(garbage)]) == 1
    assert "not a database" in capsys.readouterr().err


def test_serve_takes_a_fixed_key_and_allowed_host_names(tmp_path: Path) -> None:
    with CollectorProcess(
        "--key", "my-fixed-key", "--allowed-host", "devbox.lan", capture_stderr=True
    ) as process:
        parsed = Dsn.parse(process.dsn)
        assert parsed.public_key == "my-fixed-key"
        statuses = []
        for host in ("devbox.lan", "evil.example", "evil.example"):
            request = urllib.request.Request(process.events_url, headers={"Host": host})
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    statuses.append(response.status)
            except urllib.error.HTTPError as exc:
                statuses.append(exc.code)
        assert statuses == [200, 421, 421]
        _, stderr = process.stop()
    # Logged once, even with -q, and names what to do about it.
    assert stderr.count("'evil.example'") == 1
    assert "--allowed-host" in stderr
