"""`errlink.init()` leaves the application's logging alone (issue 19, item 1).

Each scenario runs as a script twice, without and with errlink, and the output must be the same;
the collector must still receive what the application's logging configuration lets through.
"""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import textwrap
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests._support import free_port

TIMEOUT = 30.0

BASIC_CONFIG = textwrap.dedent(
    """
    import logging, sys

    with_errlink, order, dsn = sys.argv[1] == "errlink", sys.argv[2], sys.argv[3]

    def configure():
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s:%(name)s:%(message)s")

    if order == "before":
        configure()
    if with_errlink:
        import errlink
        errlink.init(dsn)
    if order == "after":
        configure()
    logging.getLogger("lib").info("library chatter")
    logging.getLogger("app").warning("disk almost full")
    logging.getLogger("app").error("payment failed")
    if with_errlink:
        assert errlink.flush(10)
    """
)

DICT_CONFIG = textwrap.dedent(
    """
    import logging, logging.config, sys

    with_errlink, dsn = sys.argv[1] == "errlink", sys.argv[3]
    legacy = logging.getLogger("legacy")  # exists before dictConfig, which disables it
    if with_errlink:
        import errlink
        errlink.init(dsn)
    logging.config.dictConfig({
        "version": 1,
        "disable_existing_loggers": True,
        "formatters": {"plain": {"format": "%(levelname)s %(name)s %(message)s"}},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
        "root": {"handlers": ["console"], "level": "INFO"},
    })
    legacy.error("from a disabled logger")
    shop = logging.getLogger("shop")
    shop.debug("below the root level")
    shop.info("cart loaded")
    shop.error("checkout failed")
    if with_errlink:
        assert errlink.flush(10)
    """
)


def _run(script: str, with_errlink: bool, order: str, dsn: str) -> str:
    mode = "errlink" if with_errlink else "plain"
    proc = subprocess.run(
        [sys.executable, "-c", script, mode, order, dsn],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stderr


def _crumbs(event: dict[str, Any]) -> list[tuple[str, str]]:
    return [(c["level"], c["message"]) for c in event.get("breadcrumbs", {}).get("values", [])]


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        # No configuration: Python's last-resort handler prints warnings and errors.
        ("none", "disk almost full\npayment failed\n"),
        ("before", "WARNING:app:disk almost full\nERROR:app:payment failed\n"),
        ("after", "WARNING:app:disk almost full\nERROR:app:payment failed\n"),
    ],
)
def test_basic_config_before_or_after_init_behaves_as_without_errlink(
    collector_thread: Any, order: str, expected: str
) -> None:
    assert _run(BASIC_CONFIG, False, order, collector_thread.dsn) == expected
    assert _run(BASIC_CONFIG, True, order, collector_thread.dsn) == expected
    [event] = collector_thread.wait_for_events(1, timeout=5)
    assert event["logentry"]["formatted"] == "payment failed"
    # The INFO record never got past the root logger's WARNING level: no breadcrumb either.
    assert _crumbs(event) == [("warning", "disk almost full")]


def test_dict_config_with_disable_existing_loggers_still_works(collector_thread: Any) -> None:
    expected = "INFO shop cart loaded\nERROR shop checkout failed\n"
    assert _run(DICT_CONFIG, False, "-", collector_thread.dsn) == expected
    assert _run(DICT_CONFIG, True, "-", collector_thread.dsn) == expected
    [event] = collector_thread.wait_for_events(1, timeout=5)
    assert (event["logger"], event["logentry"]["formatted"]) == ("shop", "checkout failed")
    assert _crumbs(event) == [("info", "cart loaded")]


FLASK_APP = textwrap.dedent(
    """
    import os
    from flask import Flask

    app = Flask(__name__)

    @app.route("/ok")
    def ok():
        return "ok"

    @app.route("/fail")
    def fail():
        raise RuntimeError("request failed")

    if os.environ.get("ERRLINK_TEST_DSN"):
        from errlink.integrations.flask import Errlink

        Errlink(app, dsn=os.environ["ERRLINK_TEST_DSN"])
    """
)
_VARYING = [
    (re.compile(r"\x1b\[[0-9;]*m"), ""),  # werkzeug colours some lines
    (re.compile(r"\[\d{2}/\w{3}/\d{4} \d{2}:\d{2}:\d{2}\]"), "[TIME]"),  # access log
    (re.compile(r"\[\d{4}-\d{2}-\d{2} [\d:,]+\]"), "[TIME]"),  # Flask's default handler
    (re.compile(r"127\.0\.0\.1:\d+"), "127.0.0.1:PORT"),
]


class _Output:
    """The lines a process writes, read by a thread so the test can wait for one."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._new: queue.Queue[str | None] = queue.Queue()
        assert proc.stdout is not None
        stream = proc.stdout
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            self._new.put(line)
        self._new.put(None)

    def wait_for(self, text: str) -> None:
        while not any(text in line for line in self.lines):
            try:
                line = self._new.get(timeout=TIMEOUT)
            except queue.Empty:
                raise AssertionError(f"no {text!r} in:\n{''.join(self.lines)}") from None
            if line is None:
                raise AssertionError(f"the process ended without {text!r}:\n{''.join(self.lines)}")
            self.lines.append(line)

    def rest(self) -> str:
        while (line := self._new.get(timeout=TIMEOUT)) is not None:
            self.lines.append(line)
        text = "".join(self.lines)
        for pattern, replacement in _VARYING:
            text = pattern.sub(replacement, text)
        return text


def _flask_run_output(app_dir: Path, dsn: str | None) -> str:
    """`flask run` serving one good and one failing request: everything it printed."""
    port = free_port()
    path = [str(app_dir), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    env.pop("ERRLINK_TEST_DSN", None)
    if dsn is not None:
        env["ERRLINK_TEST_DSN"] = dsn
    command = [sys.executable, "-m", "flask", "--app", "shop_app", "run", "--port", str(port)]
    command += ["--host", "127.0.0.1"]
    with subprocess.Popen(
        command,
        cwd=app_dir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as proc:
        output = _Output(proc)
        try:
            output.wait_for("Running on http://127.0.0.1")
            base = f"http://127.0.0.1:{port}"
            with urllib.request.urlopen(f"{base}/ok", timeout=TIMEOUT) as response:
                assert response.status == 200
            with pytest.raises(urllib.error.HTTPError) as failed:
                urllib.request.urlopen(f"{base}/fail", timeout=TIMEOUT)
            assert failed.value.code == 500
            failed.value.close()
            output.wait_for("GET /fail HTTP/1.1")
        finally:
            proc.send_signal(2)  # SIGINT: werkzeug's server stops quietly
            proc.wait(TIMEOUT)
        return output.rest()


def test_flask_run_output_is_unchanged_by_the_extension(
    collector_thread: Any, tmp_path: Path
) -> None:
    (tmp_path / "shop_app.py").write_text(FLASK_APP)
    without = _flask_run_output(tmp_path, None)
    with_errlink = _flask_run_output(tmp_path, collector_thread.dsn)
    assert with_errlink == without
    for expected in (
        "Running on http://127.0.0.1:PORT",
        '"GET /ok HTTP/1.1" 200',
        "ERROR in app: Exception on /fail [GET]",
        "RuntimeError: request failed",
        '"GET /fail HTTP/1.1" 500',
    ):
        assert expected in with_errlink
    [event] = collector_thread.wait_for_events(1, timeout=5)
    assert event["exception"]["values"][-1]["value"] == "request failed"
