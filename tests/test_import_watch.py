"""Library integrations are hooked when the application imports the library, never before.

`errlink.init()` must not import httpx, SQLAlchemy or Redis itself; a library imported after
it is hooked at that moment and works as usual. Checked in fresh interpreters (this one has
imported everything already) and with a throwaway module for the import watch itself.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from errlink.integrations._libraries import _import_watch

ROOT = Path(__file__).resolve().parent.parent

HOOKED_ON_IMPORT = textwrap.dedent(
    """
    import json, sys, threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    import errlink
    from tests._support.transports import MemoryTransport

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
            self.server.seen.append(self.headers.get("sentry-trace"))
        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.seen = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/after-init"

    transport = MemoryTransport()
    errlink.init("http://key@127.0.0.1:9/1", transport=transport,
                 trace_propagation_targets=[r"/after-init"])
    before = sorted(name for name in ("httpx", "sqlalchemy", "redis", "asyncpg")
                    if name in sys.modules)
    import httpx
    status = httpx.get(url).status_code
    errlink.capture_message("after the import")
    errlink.flush(10)
    [event] = transport.events()
    crumbs = [c for c in event.get("breadcrumbs", {}).get("values", []) if c.get("type") == "http"]
    print(json.dumps({
        "before": before,
        "status": status,
        "crumbs": [(c["category"], c["data"]["url"]) for c in crumbs],
        "header": server.seen[0],
        "trace_id": event["contexts"]["trace"]["trace_id"],
        "integrations": event["sdk"]["integrations"],
        "loader": type(httpx.__spec__.loader).__module__,
        "url": url,
    }))
    server.shutdown()
    """
)


def _run(script: str, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-W", "error", "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_a_library_imported_after_init_is_hooked_then_and_not_before() -> None:
    seen = json.loads(_run(HOOKED_ON_IMPORT))
    assert seen["before"] == []  # init() imported none of them
    assert seen["status"] == 200
    assert seen["crumbs"] == [["httpx", seen["url"]]]
    assert seen["header"].startswith(seen["trace_id"] + "-")
    assert "httpx" in seen["integrations"]
    assert seen["loader"] != _import_watch.__name__  # httpx sees its own loader


def test_disabled_library_is_not_watched() -> None:
    script = textwrap.dedent(
        """
        import json, errlink
        from errlink.integrations import _libraries
        client = errlink.init("http://key@127.0.0.1:9/1", disabled_integrations=["httpx"])
        import sys
        before = "aiohttp" in sys.modules
        import httpx, aiohttp
        print(json.dumps([_libraries.hooked(), client.core.builder.sdk["integrations"], before]))
        """
    )
    hooked, recorded, aiohttp_before = json.loads(_run(script))
    assert "httpx" not in hooked
    assert "httpx" not in recorded
    assert not aiohttp_before  # errlink's own transport does not load aiohttp
    assert "aiohttp_client" in hooked  # the other libraries are still watched


# -- the watch itself ------------------------------------------------------------------------------


@pytest.fixture
def throwaway(tmp_path: Path) -> Iterator[str]:
    """The name of a module, not imported yet, that records being executed."""
    name = f"errlink_watch_probe_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text("executed = True\n")
    sys.path.insert(0, str(tmp_path))
    yield name
    sys.path.remove(str(tmp_path))
    sys.modules.pop(name, None)
    _import_watch.forget_all()


def test_callback_runs_once_after_the_module_executed(throwaway: str) -> None:
    calls: list[ModuleType] = []
    _import_watch.when_imported(throwaway, calls.append)
    assert throwaway not in sys.modules  # watching imports nothing
    assert calls == []

    module = __import__(throwaway)
    assert calls == [module]
    assert module.executed is True
    assert module.__spec__ is not None
    assert module.__spec__.loader is module.__loader__
    assert type(module.__loader__).__module__ != _import_watch.__name__
    importlib.reload(module)
    assert calls == [module]  # once


def test_an_imported_module_is_handed_over_at_once(throwaway: str) -> None:
    module = __import__(throwaway)
    calls: list[ModuleType] = []
    _import_watch.when_imported(throwaway, calls.append)
    assert calls == [module]


def test_a_failing_callback_is_logged_and_the_import_still_works(
    throwaway: str, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(module: ModuleType) -> None:
        raise RuntimeError("instrumentation bug")

    _import_watch.when_imported(throwaway, broken)
    with caplog.at_level("WARNING", logger="errlink"):
        module = __import__(throwaway)
    assert module.executed is True
    assert "could not instrument" in caplog.text
