"""`errlink test [DSN]`: send one test event and say whether the server accepted it, and if not,
why, in one line: the server's own reason for a refusal, or what kept the request from it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Iterator
from typing import TextIO

from .._async_client import AsyncClient
from .._delivery.http import HttpTransport
from .._delivery.sender import server_reason
from .._wire.dsn import Dsn
from .._wire.envelope import Envelope
from .._wire.transport import Transport, TransportError, TransportResponse


class _Witness:
    """A transport that passes envelopes on and remembers the last answer or network fault."""

    def __init__(self, inner: Transport) -> None:
        self._inner = inner
        self.answer: TransportResponse | None = None
        self.fault: TransportError | None = None

    async def send(self, envelope: Envelope) -> TransportResponse:
        try:
            self.answer = await self._inner.send(envelope)
        except TransportError as exc:
            self.fault = exc
            raise
        return self.answer

    async def aclose(self) -> None:
        await self._inner.aclose()


async def send_test_event(
    dsn: str, *, timeout: float, out: TextIO, err: TextIO, debug: bool = False
) -> int:
    """Exit status 0 only when the server answered 2xx for the test event."""
    try:
        parsed = Dsn.parse(dsn)
    except ValueError as exc:
        print(f"errlink test: {exc}", file=err)
        return 2
    witness = _Witness(HttpTransport(parsed, http_timeout=timeout))
    # Without --debug the verdict below says in one line what errlink's log would say.
    with contextlib.nullcontext() if debug else _errlink_log_silenced():
        client = AsyncClient(parsed, transport=witness, shutdown_timeout=timeout, debug=debug)
        event_id = await client.capture_message(
            "errlink test event: if you can read this, errlink can reach this server",
            level="info",
            tags={"errlink_test": "yes"},
        )
        await client.flush(timeout)
        stats = client.stats
        await client.aclose(1)
    if stats.sent == 1:
        print(f"sent test event {event_id} to {parsed}: accepted", file=out)
        return 0
    print(f"errlink test: {_why_not_accepted(parsed, witness, stats.dropped, timeout)}", file=err)
    return 1


def _why_not_accepted(dsn: Dsn, witness: _Witness, dropped: dict[str, int], timeout: float) -> str:
    answer = witness.answer
    address = _address(dsn)
    if answer is not None and not 200 <= answer.status < 300:
        reason = server_reason(answer.body, secret=dsn.secret_key)
        return f"the server at {address} refused the test event: HTTP {answer.status}" + (
            f": {reason}" if reason else ""
        )
    if witness.fault is not None:
        return f"cannot reach {address}: {_network_fault(witness.fault, timeout)}"
    if dropped:
        reasons = ", ".join(f"{reason} x{n}" for reason, n in dropped.items())
        return f"the test event was not sent to {address} ({reasons})"
    return f"no answer from {address} within {timeout:g} s"


def _address(dsn: Dsn) -> str:
    """`host:port`, with the scheme's port when the DSN names none."""
    host = f"[{dsn.host}]" if ":" in dsn.host and not dsn.host.startswith("[") else dsn.host
    port = dsn.port or (443 if dsn.scheme == "https" else 80)
    return f"{host}:{port}"


def _network_fault(fault: TransportError, timeout: float) -> str:
    """What went wrong on the network, as a person says it: `connection refused`."""
    cause: BaseException | None = fault
    deepest_os_error: OSError | None = None
    while cause is not None:
        if isinstance(cause, asyncio.TimeoutError):
            return f"no answer within {timeout:g} s"
        if isinstance(cause, OSError) and cause.errno:
            deepest_os_error = cause
        cause = cause.__cause__
    if isinstance(deepest_os_error, socket.gaierror):
        return f"the host name does not resolve ({deepest_os_error.strerror})"
    if deepest_os_error is not None and deepest_os_error.errno:
        text = os.strerror(deepest_os_error.errno)
        return text[:1].lower() + text[1:]
    return str(fault)


@contextlib.contextmanager
def _errlink_log_silenced() -> Iterator[None]:
    errlink_logger = logging.getLogger("errlink")
    silence = logging.NullHandler()
    propagate = errlink_logger.propagate
    errlink_logger.addHandler(silence)
    errlink_logger.propagate = False
    try:
        yield
    finally:
        errlink_logger.propagate = propagate
        errlink_logger.removeHandler(silence)


def run_selftest(dsn: str, *, timeout: float, out: TextIO, err: TextIO, debug: bool = False) -> int:
    return asyncio.run(send_test_event(dsn, timeout=timeout, out=out, err=err, debug=debug))
