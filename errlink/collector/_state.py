"""What every request handler of the collector app shares."""

from __future__ import annotations

import collections
from dataclasses import dataclass, field

from aiohttp import web

from ._access import AccessPolicy
from ._connections import HeadDeadline
from ._faults import FaultInjector, Faults
from ._refusals import RefusalLog
from ._store import EventStore

MiB = 1024 * 1024
# Sentry's envelope limit: room for attachments of up to 20 MiB each (`_attachments.py`).
DEFAULT_MAX_BODY_BYTES = 100 * MiB
DEFAULT_MAX_DECOMPRESSED_BYTES = 100 * MiB
DEFAULT_MAX_ENVELOPE_ITEMS = 1000
# A request body must arrive within this many seconds of its headers.
DEFAULT_BODY_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class IngestSettings:
    public_key: str
    project_id: str
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES
    max_envelope_items: int = DEFAULT_MAX_ENVELOPE_ITEMS
    body_timeout: float = DEFAULT_BODY_TIMEOUT_SECONDS


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
    # Which Host names and browser origins are served (see `_access.py`).
    access: AccessPolicy = field(default_factory=AccessPolicy.loopback)
    refusals: RefusalLog = field(default_factory=RefusalLog)
    head_deadline: HeadDeadline | None = None


STATE = web.AppKey("errlink_collector_state", CollectorState)
