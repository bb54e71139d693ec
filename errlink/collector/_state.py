"""What every request handler of the collector app shares."""

from __future__ import annotations

import collections
from dataclasses import dataclass, field

from aiohttp import web

from ._faults import FaultInjector, Faults
from ._store import EventStore

MiB = 1024 * 1024
DEFAULT_MAX_BODY_BYTES = 20 * MiB
DEFAULT_MAX_DECOMPRESSED_BYTES = 20 * MiB


@dataclass(frozen=True)
class IngestSettings:
    public_key: str
    project_id: str
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES


@dataclass
class CollectorState:
    settings: IngestSettings
    store: EventStore
    # Statuses answered on the ingestion endpoints (the read API is not counted).
    request_statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    # Envelope items accepted but not stored (sessions, transactions, attachments...), by type.
    ignored_items: collections.Counter[str] = field(default_factory=collections.Counter)
    # Failures and delays on purpose (`errlink serve --fail-rate/--status/--delay`).
    faults: FaultInjector = field(default_factory=lambda: FaultInjector(Faults()))


STATE = web.AppKey("errlink_collector_state", CollectorState)
