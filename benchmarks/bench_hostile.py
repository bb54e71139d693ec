"""Hostile servers: what a misbehaving error server costs the application's memory.

Run: python -m benchmarks.bench_hostile [--quick]

Every measurement runs in a fresh process (`--child`) against a loopback server in this one, for
errlink and, side by side, sentry-sdk (when installed).

1. Huge and endless answers. The process captures and flushes 4 exception events; the server
   answers every request 200 with a 200 MB body (Content-Length), or with a chunked body that
   never ends (the server stops after 30 s or 100 MB per request, whichever comes first:
   a peer that reads it all multiplies that in memory).
   Reported: the process's peak RSS (VmHWM) over its RSS before the first capture, and how
   long the flush took.
2. Hanging server. The server reads each request and never answers. The process captures
   1,000 exceptions whose 5 frames each hold 100 distinct 1,000-character strings in their
   locals (about 0.5 MB of JSON per errlink event). Reported: RSS growth after the captures,
   events held, errlink's own estimate of the bytes it holds, and what was dropped. errlink is
   also run with `queue_max_bytes` out of the way, to show what the byte bound saves.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HUGE_BODY = 200_000_000
ENDLESS_LIMIT = 100_000_000
ENDLESS_SECONDS = 30.0
CHILD_TIMEOUT = 240.0


# -- the hostile server (in the parent) --------------------------------------------------------


class HostileServer:
    """A loopback HTTP server answering every request by `mode`: huge, endless or hang."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name=f"hostile-{mode}", daemon=True)

    def __enter__(self) -> HostileServer:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    @property
    def dsn(self) -> str:
        return f"http://public@127.0.0.1:{self.port}/1"

    def _run(self) -> None:
        self._loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._answer, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        await self._stop.wait()
        server.close()
        for task in asyncio.all_tasks() - {asyncio.current_task()}:
            task.cancel()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                if self.mode == "hang":
                    assert self._stop is not None
                    await self._stop.wait()
                    return
                await self._write_body(writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:  # the server stops
            pass
        finally:
            writer.close()

    async def _write_body(self, writer: asyncio.StreamWriter) -> None:
        block = os.urandom(32_768).hex().encode()  # 64 KiB that does not compress
        if self.mode == "huge":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % HUGE_BODY)
            for _ in range(HUGE_BODY // len(block)):
                writer.write(block)
                await writer.drain()
            writer.write(block[: HUGE_BODY % len(block)])
            await writer.drain()
            return
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"%x\r\n" % len(block) + block + b"\r\n"
        deadline = time.monotonic() + ENDLESS_SECONDS
        written = 0
        while written < ENDLESS_LIMIT and time.monotonic() < deadline:
            writer.write(chunk)
            await writer.drain()
            written += len(chunk)
        raise ConnectionResetError("the endless body is cut here")  # never a valid end


# -- the measured process ----------------------------------------------------------------------


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _raise(depth: int, fat: bool) -> BaseException:
    def frame(remaining: int) -> None:
        if fat:
            strings = [os.urandom(500).hex() for _ in range(50)]  # noqa: F841 - locals
            table = {f"k{i}": os.urandom(500).hex() for i in range(50)}  # noqa: F841
        if remaining <= 1:
            raise ValueError("declined")
        frame(remaining - 1)

    try:
        frame(depth)
    except ValueError as exc:
        return exc
    raise AssertionError("unreachable")


class _Sdk:
    def __init__(self, name: str, dsn: str, options: dict[str, Any]) -> None:
        self.name = name
        if name == "sentry-sdk":
            import sentry_sdk

            sentry_sdk.init(
                dsn, include_local_variables=True, default_integrations=False, shutdown_timeout=1
            )
            self._sentry = sentry_sdk
        else:
            from errlink.sync import Client

            self.client = Client(dsn, include_locals=True, **options)

    def capture(self, exc: BaseException) -> None:
        if self.name == "sentry-sdk":
            self._sentry.capture_exception(exc)
        else:
            self.client.capture_exception(exc)

    def flush(self, timeout: float) -> None:
        if self.name == "sentry-sdk":
            self._sentry.flush(timeout)
        else:
            self.client.flush(timeout)

    def held(self) -> dict[str, Any]:
        if self.name == "sentry-sdk":
            worker = getattr(self._sentry.get_client().transport, "_worker", None)
            queue = getattr(worker, "_queue", None)
            return {"pending": queue.qsize() if queue is not None else None}
        stats = self.client.stats
        pipeline = self.client._core.pipeline  # a benchmark may look inside
        held_bytes = getattr(getattr(pipeline, "_handover", None), "held_bytes", None)
        return {
            "pending": stats.pending,
            "sent": stats.sent,
            "held_bytes": held_bytes,
            "dropped": stats.dropped,
        }


def child(scenario: str, params: dict[str, Any]) -> dict[str, Any]:
    sdk = _Sdk(params["sdk"], params["dsn"], params.get("options", {}))
    exceptions_fat = scenario == "hang"
    sdk.capture(_raise(3, False))  # warm up imports and the connection pool
    gc.collect()
    before = _status_kib("VmRSS")
    started = time.perf_counter()
    if scenario == "hang":
        for _ in range(params["n"]):
            sdk.capture(_raise(5, exceptions_fat))
        gc.collect()
        result: dict[str, Any] = {"rss_growth_kib": _status_kib("VmRSS") - before}
        result.update(sdk.held())
    else:
        for _ in range(4):
            sdk.capture(_raise(10, False))
        sdk.flush(params["timeout"])
        result = {"seconds": time.perf_counter() - started}
        result.update(sdk.held())
    result["peak_growth_kib"] = _status_kib("VmHWM") - before
    return result


def run_child(scenario: str, params: dict[str, Any]) -> dict[str, Any]:
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "benchmarks.bench_hostile", "--child", scenario],
            input=json.dumps(params),
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
    except subprocess.TimeoutExpired:
        return {"error": f"no result within {CHILD_TIMEOUT:.0f} s"}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line[len("RESULT ") :])
            return result
    return {"error": proc.stderr.strip().splitlines()[-1:] or ["no result"]}


def _have_sentry() -> bool:
    try:
        import sentry_sdk  # noqa: F401
    except ImportError:
        return False
    return True


def _mb(kib: int | None) -> str:
    return "n/a" if kib is None else f"{kib / 1024:,.1f} MB"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer captures (smoke test)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        result = child(args.child, json.loads(sys.stdin.read()))
        print("RESULT " + json.dumps(result), flush=True)
        os._exit(0)  # a client still waiting on a hanging server must not hold up the exit

    sdks = ["errlink"] + (["sentry-sdk"] if _have_sentry() else [])
    n = 200 if args.quick else 1000
    print("| server | SDK | peak RSS growth | RSS growth | time / held | notes |")
    print("|---|---|---:|---:|---:|---|")
    for mode in ("huge", "endless"):
        with HostileServer(mode) as server:
            for name in sdks:
                options = {"http_timeout": 10.0} if name == "errlink" else {}
                r = run_child(
                    "answers", {"sdk": name, "dsn": server.dsn, "timeout": 60, "options": options}
                )
                what = f"4 events, {'200 MB answers' if mode == 'huge' else 'endless answers'}"
                if "error" in r:
                    print(f"| {what} | {name} | FAILED | | | {r['error']} |")
                    continue
                sent = f"{r['sent']} of 5 events sent" if "sent" in r else ""
                print(
                    f"| {what} | {name} | {_mb(r['peak_growth_kib'])} | | "
                    f"flush {r['seconds']:.1f} s | {sent} |"
                )
    with HostileServer("hang") as server:
        variants: list[tuple[str, dict[str, Any]]] = [("errlink", {})]
        variants.append(("errlink", {"queue_max_bytes": 1 << 40}))
        if "sentry-sdk" in sdks:
            variants.append(("sentry-sdk", {}))
        for name, options in variants:
            r = run_child("hang", {"sdk": name, "dsn": server.dsn, "n": n, "options": options})
            label = name + (" (queue_max_bytes off)" if options else "")
            what = f"hanging, {n} events with large locals"
            if "error" in r:
                print(f"| {what} | {label} | FAILED | | | {r['error']} |")
                continue
            held = f"{r['pending']} events"
            notes = []
            if r.get("held_bytes") is not None:
                notes.append(f"estimate held {r['held_bytes'] / 1e6:,.1f} MB")
            if r.get("dropped"):
                notes.append("dropped " + ", ".join(f"{k} {v}" for k, v in r["dropped"].items()))
            print(
                f"| {what} | {label} | {_mb(r['peak_growth_kib'])} | "
                f"{_mb(r['rss_growth_kib'])} | {held} | {'; '.join(notes)} |"
            )


if __name__ == "__main__":
    main()
