"""Traces cross between errlink and sentry-sdk, the reference implementation, both ways.

A service instrumented with sentry-sdk runs in a subprocess (its SDK patches process-wide
things errlink's tests must not share) and reports to errlink's collector on 127.0.0.1, as the
errlink service does. Each side fails; both events must belong to one trace:

- a sentry-sdk caller (``urllib``, which sentry-sdk's stdlib integration instruments) calls an
  errlink Flask service: errlink continues sentry-sdk's trace, with the span id sentry-sdk sent
  as its parent;
- an errlink caller calls a sentry-sdk aiohttp.web service with `errlink.trace_headers()`:
  sentry-sdk continues errlink's trace, with errlink's span id as its parent.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _async_web_helpers import EVENT_TIMEOUT

import errlink
from errlink._capture.scope import isolated_scope
from errlink._capture.trace import parse_baggage
from tests._support import free_port
from tests.integrations._raw_http import serve_wsgi

pytest.importorskip("sentry_sdk")

REPO_ROOT = Path(__file__).resolve().parents[2]

SENTRY_CALLER = textwrap.dedent(
    """
    import sys, urllib.error, urllib.request
    import sentry_sdk

    dsn, url, mode = sys.argv[1:4]
    options = {"traces_sample_rate": 1.0} if mode == "tracing" else {}
    sentry_sdk.init(dsn=dsn, release="sentry-front@1", environment="interop", **options)

    def run():
        try:
            urllib.request.urlopen(url, timeout=30)
        except urllib.error.HTTPError as error:
            print("status", error.code, flush=True)
        try:
            raise ZeroDivisionError("sentry-sdk front failed")
        except ZeroDivisionError:
            sentry_sdk.capture_exception()

    if mode == "tracing":
        with sentry_sdk.start_transaction(name="front", op="task"):
            run()
    else:
        run()
    sentry_sdk.flush(30)
    """
)

SENTRY_SERVICE = textwrap.dedent(
    """
    import sys
    import sentry_sdk
    from aiohttp import web

    dsn, port = sys.argv[1], int(sys.argv[2])
    sentry_sdk.init(dsn=dsn, release="sentry-back@1", environment="interop")

    async def fail(request):
        raise RuntimeError("sentry-sdk back failed")

    app = web.Application()
    app.router.add_get("/fail", fail)
    web.run_app(
        app, host="127.0.0.1", port=port, print=lambda *_: print("ready", flush=True)
    )
    """
)


def _env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("SENTRY_")}
    env.pop("ERRLINK_DSN", None)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])
    return env


def _is_sentry_sdk(event: dict[str, Any]) -> bool:
    return bool(event.get("sdk", {}).get("name", "").startswith("sentry.python"))


def _request_header(event: dict[str, Any], name: str) -> str:
    headers = event["request"]["headers"]
    pairs = headers.items() if isinstance(headers, dict) else headers
    [value] = [value for key, value in pairs if key.lower() == name]
    return str(value)


@pytest.fixture(autouse=True)
def _isolated() -> Iterator[None]:
    errlink.close(timeout=1)
    with isolated_scope():
        yield
    errlink.close(timeout=5)


@pytest.fixture
def errlink_service(collector_thread: Any) -> Iterator[str]:
    """An errlink-instrumented Flask service whose /fail raises; its base URL."""
    from flask import Flask

    from errlink.integrations.flask import Errlink

    app = Flask("errlink_back")

    @app.get("/fail")
    def fail() -> str:
        raise RuntimeError("errlink back failed")

    Errlink(app, dsn=collector_thread.dsn, release="errlink-back@1", environment="interop")
    server, thread = serve_wsgi(app)
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        thread.join(EVENT_TIMEOUT)
        server.server_close()


@pytest.mark.parametrize("mode", ["errors-only", "tracing"])
def test_errlink_continues_a_trace_sentry_sdk_started(
    mode: str, collector_thread: Any, errlink_service: str, tmp_path: Path
) -> None:
    script = tmp_path / "sentry_caller.py"
    script.write_text(SENTRY_CALLER)
    done = subprocess.run(
        [sys.executable, str(script), collector_thread.dsn, f"{errlink_service}/fail", mode],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "status 500" in done.stdout
    events = collector_thread.wait_for_events(2, timeout=EVENT_TIMEOUT)
    [theirs] = [event for event in events if _is_sentry_sdk(event)]
    [ours] = [event for event in events if not _is_sentry_sdk(event)]
    assert ours["exception"]["values"][-1]["value"] == "errlink back failed"

    sent = _request_header(ours, "sentry-trace")  # what sentry-sdk's urllib hook sent
    sent_trace_id, sent_span_id = sent.split("-")[:2]
    sentry_trace = theirs["contexts"]["trace"]
    errlink_trace = ours["contexts"]["trace"]
    assert sentry_trace["trace_id"] == sent_trace_id
    assert errlink_trace["trace_id"] == sent_trace_id
    assert errlink_trace["parent_span_id"] == sent_span_id
    assert errlink_trace["span_id"] not in (sent_span_id, sentry_trace["span_id"])
    if mode == "errors-only":
        # No spans on sentry-sdk's side: the span it sent is the one its own error carries.
        assert sent_span_id == sentry_trace["span_id"]
    # sentry-sdk's baggage reached errlink, with the head's sampling context.
    dsc, _ = parse_baggage(_request_header(ours, "baggage"))
    assert dsc is not None
    assert dsc["trace_id"] == sent_trace_id
    assert dsc["release"] == "sentry-front@1"


def test_sentry_sdk_continues_a_trace_errlink_started(
    collector_thread: Any, tmp_path: Path
) -> None:
    script = tmp_path / "sentry_service.py"
    script.write_text(SENTRY_SERVICE)
    port = free_port()
    service = subprocess.Popen(
        [sys.executable, str(script), collector_thread.dsn, str(port)],
        env=_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert service.stdout is not None
        assert service.stdout.readline().strip() == "ready"
        errlink.init(collector_thread.dsn, release="errlink-front@1", environment="interop")
        with errlink.new_scope(new_trace=True):
            front = errlink.current_trace()
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/fail", headers=errlink.trace_headers()
            )
            with pytest.raises(urllib.error.HTTPError) as answered:
                urllib.request.urlopen(request, timeout=30)
            answered.value.close()  # its socket: else a ResourceWarning in a later test
            assert answered.value.code == 500
            errlink.capture_message("errlink front saw a 500", level="error")
        assert errlink.flush(10)
        events = collector_thread.wait_for_events(2, timeout=EVENT_TIMEOUT)
    finally:
        service.terminate()
        service.communicate(timeout=30)  # and closes its stdout

    [theirs] = [event for event in events if _is_sentry_sdk(event)]
    [ours] = [event for event in events if not _is_sentry_sdk(event)]
    assert theirs["exception"]["values"][-1]["value"] == "sentry-sdk back failed"
    assert ours["contexts"]["trace"] == {"trace_id": front.trace_id, "span_id": front.span_id}
    sentry_trace = theirs["contexts"]["trace"]
    assert sentry_trace["trace_id"] == front.trace_id
    assert sentry_trace["parent_span_id"] == front.span_id
    assert sentry_trace["span_id"] != front.span_id
