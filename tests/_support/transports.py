"""In-memory Transports for logic tests (the real one is tested against loopback servers)."""

from __future__ import annotations

from typing import Any

from errlink import TransportResponse
from errlink._delivery.pipeline import SENDING
from errlink._wire.envelope import Envelope


class MemoryTransport:
    """Keeps every envelope it is given and answers `status`.

    `failures` are raised, one per call and in order, before any envelope is kept; `calls`
    counts every call (failed or not), `closed` tells whether `aclose()` ran, and
    `sending_flags` records errlink's `SENDING` context variable at each call.
    """

    def __init__(self, status: int = 200, failures: list[BaseException] | None = None) -> None:
        self.status = status
        self.failures = list(failures or [])
        self.envelopes: list[Envelope] = []
        self.calls = 0
        self.closed = False
        self.sending_flags: list[bool] = []

    async def send(self, envelope: Envelope) -> TransportResponse:
        self.calls += 1
        self.sending_flags.append(SENDING.get())
        if self.failures:
            raise self.failures.pop(0)
        self.envelopes.append(envelope)
        return TransportResponse(self.status, {})

    async def aclose(self) -> None:
        self.closed = True

    def events(self) -> list[dict[str, Any]]:
        return [item.json() for env in self.envelopes for item in env.items if item.type == "event"]

    def client_reports(self) -> list[dict[str, Any]]:
        return [
            item.json()
            for env in self.envelopes
            for item in env.items
            if item.type == "client_report"
        ]
