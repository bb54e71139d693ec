"""An in-memory Transport for logic tests (the real one is tested against loopback servers)."""

from __future__ import annotations

from typing import Any

from errlink import TransportResponse
from errlink._envelope import Envelope


class MemoryTransport:
    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.envelopes: list[Envelope] = []

    async def send(self, envelope: Envelope) -> TransportResponse:
        self.envelopes.append(envelope)
        return TransportResponse(self.status, {})

    async def aclose(self) -> None:
        pass

    def events(self) -> list[dict[str, Any]]:
        return [item.json() for env in self.envelopes for item in env.items if item.type == "event"]

    def client_reports(self) -> list[dict[str, Any]]:
        return [
            item.json()
            for env in self.envelopes
            for item in env.items
            if item.type == "client_report"
        ]
