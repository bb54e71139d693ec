"""`errlink demo`: errlink end to end on this machine, with no account and no external server.

Starts the local collector on a free port of 127.0.0.1 with a temporary database, runs a small
sample application through the sync facade and the AsyncClient, flushes, and prints what the
collector received.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from pathlib import Path
from typing import Any, TextIO

from ._client import AsyncClient
from .collector import Collector
from .sync import Client


class CheckoutError(Exception):
    pass


def _sync_app(client: Client) -> None:
    """A tiny shop: a chained exception, a logged error after some breadcrumbs."""
    log = logging.getLogger("demo.shop")
    log.setLevel(logging.INFO)

    def charge(card_number: str, password: str) -> None:
        amount_cents = 1999  # noqa: F841 - locals show up in the event
        raise ConnectionError("payment gateway timed out")

    try:
        try:
            charge("4111 1111 1111 1111", password="hunter2")
        except ConnectionError as exc:
            raise CheckoutError("checkout failed for order 7") from exc
    except CheckoutError:
        client.capture_exception(tags={"feature": "checkout"})

    from ._scope import bind_client, new_scope
    from .integrations.logging import EventHandler

    handler = EventHandler()
    log.addHandler(handler)
    try:
        with bind_client(client.core), new_scope():
            log.info("cart loaded with %d items", 3)
            log.warning("inventory low for %s", "sku-42")
            log.error("could not reserve stock for %s", "sku-42", extra={"api_token": "s3cr3t"})
    finally:
        log.removeHandler(handler)


async def _async_app(dsn: str) -> None:
    async with AsyncClient(dsn, environment="demo") as client:

        async def fetch_profile(user_id: int) -> dict[str, Any]:
            await asyncio.sleep(0)
            return {"id": user_id}["name"]  # type: ignore[return-value]

        try:
            await fetch_profile(42)
        except KeyError:
            await client.capture_exception()
        await client.capture_message("async worker finished with warnings", level="warning")
        await client.flush(10)


def _summarize(events: list[dict[str, Any]]) -> list[str]:
    lines = []
    for event in events:
        if "exception" in event:
            values = event["exception"]["values"]
            chain = " <- ".join(f"{v['type']}: {v.get('value', '')}" for v in reversed(values))
            lines.append(f"  [{event.get('level')}] {chain}")
        else:
            lines.append(f"  [{event.get('level')}] {event.get('logentry', {}).get('formatted')}")
    return lines


async def run_demo(*, serve: bool = False, out: TextIO | None = None) -> int:
    import sys

    out = out or sys.stdout
    with tempfile.TemporaryDirectory(prefix="errlink-demo-") as tmp:
        async with Collector(db_path=Path(tmp) / "demo.db") as collector:
            print(f"collector listening at {collector.url} (DSN {collector.dsn})", file=out)
            sync_client = Client(collector.dsn, environment="demo")
            await asyncio.to_thread(_sync_app, sync_client)
            await asyncio.to_thread(sync_client.close, 10)
            await _async_app(collector.dsn)
            events = collector.events()
            print(f"\nthe collector received {len(events)} events:", file=out)
            for line in _summarize(events):
                print(line, file=out)
            scrubbed = any("[Filtered]" in str(event) for event in events)
            print(f"\nsecrets scrubbed before sending: {'yes' if scrubbed else 'NO'}", file=out)
            print(f"events as JSON: {collector.events_url}", file=out)
            if serve:
                print("serving until Ctrl-C ...", file=out, flush=True)
                try:
                    await asyncio.Event().wait()
                except asyncio.CancelledError:
                    pass
            return 0 if len(events) == 4 and scrubbed else 1
