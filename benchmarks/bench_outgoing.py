"""What errlink adds to each outgoing HTTP request: its HTTP client integrations on against off.

Run: python -m benchmarks.bench_outgoing [--quick]

The aiohttp client, httpx (async and sync) and requests each make many GET requests (with a
query string) to the benchmark sink, a separate process answering at once, while an
`AsyncClient` (in-memory transport) is current. Three modes take turns, each client's back to
back in every round, in one process, so a noisy neighbour slows them alike:

- off: the integrations unhooked (what `disabled_integrations` gives);
- on: hooked, with the defaults: a breadcrumb per request, no trace headers;
- on + propagation: the URL matches `trace_propagation_targets`, so the request also carries
  ``sentry-trace``, ``baggage`` and ``traceparent``.

Each figure is this process's CPU time per request (`time.process_time`), the median over the
rounds; the overhead is the median over the rounds of a mode's time minus off's in the same
round (a client's modes run back to back, so a slow spell on this shared machine slows both
sides of a difference; in turn forwards and backwards, so that a drift within a round favours
no mode). The target is under 5 µs per request.
Sessions and clients are made anew each round (the aiohttp hook acts when a session is made)
and are warmed up before timing.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import http.client
import io
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import aiohttp
import aiohttp.client_proto
import aiohttp.tracing
import httpx
import requests

import errlink
from benchmarks._fastsink import Sink
from benchmarks.bench_capture import NullTransport
from errlink.integrations import _libraries
from errlink.integrations._libraries import aiohttp_client
from errlink.integrations._sdk import bind_client

MODES = ("off", "on", "on + propagation")
CLIENTS = ("aiohttp", "httpx async", "httpx sync", "requests")
WARMUP = 20
LIBRARIES = ("aiohttp_client", "httpx", "http_client")


async def _aiohttp(url: str, n: int, connector: aiohttp.BaseConnector | None = None) -> float:
    async with aiohttp.ClientSession(connector=connector) as session:
        for _ in range(WARMUP):
            async with session.get(url) as response:
                await response.read()
        started = time.process_time()
        for _ in range(n):
            async with session.get(url) as response:
                await response.read()
        return time.process_time() - started


async def _httpx_async(url: str, n: int) -> float:
    async with httpx.AsyncClient() as client:
        for _ in range(WARMUP):
            await client.get(url)
        started = time.process_time()
        for _ in range(n):
            await client.get(url)
        return time.process_time() - started


def _httpx_sync(url: str, n: int) -> float:
    with httpx.Client() as client:
        for _ in range(WARMUP):
            client.get(url)
        started = time.process_time()
        for _ in range(n):
            client.get(url)
        return time.process_time() - started


def _requests(url: str, n: int) -> float:
    with requests.Session() as session:
        for _ in range(WARMUP):
            session.get(url)
        started = time.process_time()
        for _ in range(n):
            session.get(url)
        return time.process_time() - started


RUNNERS: dict[str, Callable[[str, int], Awaitable[float] | float]] = {
    "aiohttp": _aiohttp,
    "httpx async": _httpx_async,
    "httpx sync": _httpx_sync,
    "requests": _requests,
}


async def measure(base: str, rounds: int, n: int) -> dict[tuple[str, str], list[float]]:
    url = f"{base}/counts?page=2&token=not-for-breadcrumbs"
    runners = {name: functools.partial(RUNNERS[name], url) for name in CLIENTS}
    return await _paired_rounds(runners, rounds, n)


async def _paired_rounds(
    runners: Mapping[str, Callable[[int], Awaitable[float] | float]], rounds: int, n: int
) -> dict[tuple[str, str], list[float]]:
    """CPU µs per request of each runner in each mode, one sample per round."""
    dsn = "http://key@127.0.0.1:9/1"  # not the sink: its host would be left alone as errlink's own
    plain = errlink.AsyncClient(dsn, transport=NullTransport())
    targeted = errlink.AsyncClient(
        dsn, transport=NullTransport(), trace_propagation_targets=[r"^http://127\.0\.0\.1:\d+/"]
    )
    samples: dict[tuple[str, str], list[float]] = {(c, m): [] for c in runners for m in MODES}
    for number in range(rounds):
        for name, run in runners.items():
            # The modes of one client back to back: a round's off and on are seconds apart,
            # so what disturbs one disturbs the other too (see `_table`); in turn forwards and
            # backwards, so that a drift within a round favours no mode.
            for mode in MODES if number % 2 == 0 else reversed(MODES):
                if mode == "off":
                    _libraries.disable_all()
                else:
                    _libraries.enable(LIBRARIES)
                client = targeted if mode == "on + propagation" else plain
                with errlink.new_scope(new_trace=True), bind_client(client.core):
                    result = run(n)
                    seconds = await result if isinstance(result, Awaitable) else result
                    samples[(name, mode)].append(seconds / n * 1e6)
    _libraries.disable_all()
    await plain.aclose()
    await targeted.aclose()
    return samples


# -- the hooks' own cost, without a network ----------------------------------------------------
#
# Over loopback, a request's CPU time swings by tens of µs from run to run (system calls, the
# scheduler), more than the hooks add. So each client also makes requests that never reach a
# socket, where a few µs show: httpx through `httpx.MockTransport`, http.client (what requests
# and urllib3 use) on a socket object that answers from memory, aiohttp over a connection that
# answers from memory: through errlink's client middleware (aiohttp 3.12 and later, the default
# there), and through the `TraceConfig` older aiohttp gets instead (with one, aiohttp sends a
# dozen signals per request, each with a parameters object, whatever their receivers do).

_ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
_URL = "http://127.0.0.1:8000/counts?page=2&token=not-for-breadcrumbs"


class _MemorySocket:
    def sendall(self, data: bytes) -> None:
        pass

    def makefile(self, mode: str) -> io.BytesIO:
        return io.BytesIO(_ANSWER)

    def close(self) -> None:
        pass


def _http_client_offline(n: int) -> float:
    connection = http.client.HTTPConnection("127.0.0.1", 8000)
    started = time.process_time()
    for _ in range(n):
        connection.sock = _MemorySocket()
        connection.request("GET", "/counts?page=2&token=not-for-breadcrumbs")
        connection.getresponse().read()
    return time.process_time() - started


def _httpx_sync_offline(n: int) -> float:
    with httpx.Client(transport=httpx.MockTransport(lambda _: httpx.Response(200))) as client:
        started = time.process_time()
        for _ in range(n):
            client.get(_URL)
        return time.process_time() - started


async def _httpx_async_offline(n: int) -> float:
    transport = httpx.MockTransport(lambda _: httpx.Response(200))
    async with httpx.AsyncClient(transport=transport) as client:
        started = time.process_time()
        for _ in range(n):
            await client.get(_URL)
        return time.process_time() - started


class _MemoryConnection(asyncio.Transport):
    """Answers each request written to it, as a keep-alive server would."""

    def __init__(self, protocol: aiohttp.client_proto.ResponseHandler) -> None:
        super().__init__()
        self._protocol = protocol
        self._closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if b"\r\n\r\n" in data:  # the end of the request's headers (a GET has no body)
            asyncio.get_running_loop().call_soon(self._protocol.data_received, _ANSWER)

    def writelines(self, lines: Iterable[bytes | bytearray | memoryview]) -> None:
        self.write(b"".join(lines))

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if not self._closing:
            self._closing = True
            asyncio.get_running_loop().call_soon(self._protocol.connection_lost, None)

    def abort(self) -> None:
        self.close()

    def get_extra_info(self, name: str, default: object = None) -> object:
        return default

    def get_write_buffer_size(self) -> int:
        return 0


class _MemoryConnector(aiohttp.BaseConnector):
    async def _create_connection(self, *args: object, **kwargs: object) -> Any:
        protocol = aiohttp.client_proto.ResponseHandler(asyncio.get_running_loop())
        protocol.connection_made(_MemoryConnection(protocol))
        return protocol


def _aiohttp_offline(n: int) -> Awaitable[float]:
    return _aiohttp(_URL, n, _MemoryConnector())


async def _aiohttp_offline_trace_config(n: int) -> float:
    """`_aiohttp_offline`, aiohttp hooked as before 3.12 (when `_paired_rounds` hooked it)."""
    hooked = "aiohttp_client" in _libraries.hooked()
    if hooked:
        _libraries.disable_all()
        takes_middlewares = aiohttp_client.takes_middlewares
        aiohttp_client.takes_middlewares = lambda: False  # read by the hook, once
        try:
            _libraries.enable(LIBRARIES)
        finally:
            aiohttp_client.takes_middlewares = takes_middlewares
    try:
        return await _aiohttp_offline(n)
    finally:
        if hooked:
            _libraries.disable_all()
            _libraries.enable(LIBRARIES)


OFFLINE: dict[str, Callable[[int], Awaitable[float] | float]] = {
    "aiohttp (memory connection)": _aiohttp_offline,
    "aiohttp (memory connection, TraceConfig: aiohttp < 3.12)": _aiohttp_offline_trace_config,
    "httpx async (MockTransport)": _httpx_async_offline,
    "httpx sync (MockTransport)": _httpx_sync_offline,
    "http.client (requests, urllib3)": _http_client_offline,
}


async def measure_offline(rounds: int, n: int) -> dict[tuple[str, str], list[float]]:
    return await _paired_rounds(OFFLINE, rounds, n)


def _table(names: Iterable[str], samples: dict[tuple[str, str], list[float]]) -> None:
    medians = {key: statistics.median(values) for key, values in samples.items()}
    print("| client | mode | µs CPU per request | overhead vs off |")
    print("|---|---|---:|---:|")
    for name in names:
        for mode in MODES:
            value = medians[(name, mode)]
            # The median of each round's difference with off, not the difference of medians:
            # a neighbour's burst slows a whole round, and pairing cancels it.
            paired = zip(samples[(name, mode)], samples[(name, "off")], strict=True)
            added = statistics.median(on - off for on, off in paired)
            added_text = "baseline" if mode == "off" else f"{added:+.1f} µs"
            print(f"| {name} | {mode} | {value:.1f} | {added_text} |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few requests only (smoke test)")
    args = parser.parse_args(argv)
    rounds, n = (2, 50) if args.quick else (21, 1000)
    with Sink() as sink:
        samples = asyncio.run(measure(f"http://127.0.0.1:{sink.port}", rounds, n))
    print(f"Python {sys.version.split()[0]}; GET with a query string to a loopback server")
    print(f"median of {rounds} rounds x {n} requests, CPU time of the calling process\n")
    _table(CLIENTS, samples)
    offline_rounds, offline_n = (2, 50) if args.quick else (41, 2000)
    offline = asyncio.run(measure_offline(offline_rounds, offline_n))
    print("\nThe hooks' own cost: the same requests without a network (see the module's notes)")
    print(f"median of {offline_rounds} rounds x {offline_n} requests\n")
    _table(OFFLINE, offline)


if __name__ == "__main__":
    main()
