"""`build_pipeline`: the transport, outbox and pipeline that a client's options describe."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._options import Event, Options
from .pipeline import DRAIN_BATCH, Pipeline
from .stats import Stats

if TYPE_CHECKING:
    from .._outbox.records import Removal
    from .._outbox.writer import Outbox
    from .._wire.transport import Transport
    from .prepare import BeforeSendAsync

_OUTBOX_LEASE_MARGIN = 30.0


def build_pipeline(options: Options, *, stats: Stats, sdk_info: dict[str, Any]) -> Pipeline:
    """A pipeline for an enabled client: it has a DSN or a transport of its own.

    The default HTTP transport (and the send path it imports) is built when the pipeline
    starts, on its loop; one that names a CA bundle, a proxy or `verify_tls=False` is built
    here, so that a bad bundle fails and the warning shows where the client is created.
    """
    transport: Transport | None = options.transport
    if transport is None and (
        options.ca_certs or options.http_proxy or options.verify_tls is not True
    ):
        transport = _http_transport(options)
    return Pipeline(
        transport=transport,
        transport_factory=None if transport is not None else lambda: _http_transport(options),
        stats=stats,
        sdk_info=sdk_info,
        dsn=options.dsn,
        queue_size=options.queue_size,
        queue_max_bytes=options.queue_max_bytes,
        max_in_flight=options.max_in_flight,
        max_event_bytes=options.max_event_bytes,
        before_send_async=_async_before_send(options),
        outbox=_outbox(options, stats),
        outbox_drain_rate=options.outbox_drain_rate,
        outbox_lease_seconds=_outbox_lease_seconds(options),
        max_attachment_bytes=options.max_attachment_bytes,
        queue_max_attachment_bytes=options.queue_max_attachment_bytes,
    )


def _http_transport(options: Options) -> Transport:
    from .http import HttpTransport

    return HttpTransport(
        options.dsn,  # type: ignore[arg-type]  # enabled without transport implies a dsn
        http_timeout=options.http_timeout,
        http_proxy=options.http_proxy,
        ca_certs=options.ca_certs,
        verify_tls=options.verify_tls,
        max_connections=options.max_in_flight,
    )


def _async_before_send(options: Options) -> BeforeSendAsync | None:
    """A coroutine `before_send` runs on the pipeline's loop (a plain one runs at capture)."""
    hook = options.before_send
    if hook is None or not options.before_send_is_async:
        return None

    async def run(event: Event) -> Event | None:
        result = await hook(event, {})
        return result if result is None or isinstance(result, dict) else event

    return run


def _outbox(options: Options, stats: Stats) -> Outbox | None:
    if options.outbox is None:
        return None
    from .._outbox.records import outbox_target
    from .._outbox.store import OutboxStore
    from .._outbox.writer import Outbox

    store = OutboxStore(
        options.outbox,
        target=outbox_target(options.dsn, options.transport),
        max_bytes=options.outbox_max_bytes,
        max_age=options.outbox_max_age,
    )

    def count_removals(removals: list[Removal]) -> None:
        for removal in removals:
            stats.record_outbox_drop(
                removal.reason, removal.category, removal.quantity, own=removal.own
            )

    return Outbox(store, on_removals=count_removals)


def _outbox_lease_seconds(options: Options) -> float:
    # Long enough for a whole claimed batch to be sent one by one, each within http_timeout.
    per_event = options.http_timeout + 1.0 / options.outbox_drain_rate
    return _OUTBOX_LEASE_MARGIN + DRAIN_BATCH * per_event
