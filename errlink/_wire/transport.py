"""The transport interface: what carries an envelope to the server and what it answers.

`Transport` is what a user can implement (the `transport=` option) to send envelopes somewhere
else: an in-memory sink for tests, a queue, another protocol. The default, HTTP with keep-alive,
lives in the delivery layer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from .envelope import Envelope


@dataclass(frozen=True)
class TransportResponse:
    """The server's answer: its status and headers (`Retry-After`, `X-Sentry-Rate-Limits`),
    and optionally its body, whose reason (`{"detail": ...}`) is shown when it refuses."""

    status: int
    headers: Mapping[str, str]
    body: bytes = b""


class TransportError(Exception):
    """A transient network fault (refused, DNS, timeout, connection reset): worth retrying.

    Its message never contains the DSN's secret key.
    """


@runtime_checkable
class Transport(Protocol):
    """Carries envelopes. Implement it to send envelopes anywhere (the `transport=` option).

    `send` returns the server's answer (use status 200 for "accepted" when there is no server);
    raise `TransportError` for a transient fault, which the pipeline retries with backoff. Any
    other exception drops the event as "send_error". `aclose` releases resources; it is called
    once, when the client closes.
    """

    async def send(self, envelope: Envelope) -> TransportResponse: ...

    async def aclose(self) -> None: ...
