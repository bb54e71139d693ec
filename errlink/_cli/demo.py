"""`errlink demo`: errlink end to end on this machine, with no account and no external server.

Starts the local collector on a free port of 127.0.0.1 with a temporary database, runs a small
sample application through the sync facade and the AsyncClient, flushes, and prints what the
collector received, grouped into issues. The collector stops with the demo unless `serve` keeps
it running, with its web UI. Exits 0 only when every sample event arrived, was grouped as
expected and had its secrets scrubbed.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import tempfile
from pathlib import Path
from typing import Any, TextIO

from .._async_client import AsyncClient
from ..collector import Collector
from ..sync import Client

# The sample application lives in this module: report its frames as the application's own.
_IN_APP = [__name__]
_EXPECTED_EVENTS = 4
_FLUSH_SECONDS = 10.0


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

    from .._capture.binding import bind_client
    from .._capture.logs import EventHandler
    from .._capture.scope import new_scope

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
    from .._capture.scope import new_scope, set_request, set_user

    async with AsyncClient(dsn, environment="demo", in_app_include=_IN_APP) as client:

        async def fetch_profile(user_id: int) -> dict[str, Any]:
            await asyncio.sleep(0)
            return {"id": user_id}["name"]  # type: ignore[return-value]

        with new_scope():
            set_user({"id": "42", "username": "ada"})
            set_request({"method": "GET", "url": "http://shop.example/profile/42"})
            try:
                await fetch_profile(42)
            except KeyError:
                await client.capture_exception()
        await client.capture_message("async worker finished with warnings", level="warning")
        await client.flush(_FLUSH_SECONDS)


def _event_lines(events: list[dict[str, Any]]) -> list[str]:
    lines = []
    for event in events:
        if "exception" in event:
            values = event["exception"]["values"]
            chain = " <- ".join(f"{v['type']}: {v.get('value', '')}" for v in reversed(values))
            lines.append(f"  [{event.get('level')}] {chain}")
        else:
            lines.append(f"  [{event.get('level')}] {event.get('logentry', {}).get('formatted')}")
    return lines


def _issue_lines(collector: Collector) -> list[str]:
    return [
        f"  {group.count}x [{group.level}] {group.title}  ({group.culprit or 'no culprit'})"
        for group in collector.groups()
    ]


async def run_demo(*, serve: bool = False, port: int = 0, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    with tempfile.TemporaryDirectory(prefix="errlink-demo-") as tmp:
        async with Collector(port=port, db_path=Path(tmp) / "demo.db") as collector:
            print(f"collector listening at {collector.url} (DSN {collector.dsn})", file=out)
            sync_client = Client(collector.dsn, environment="demo", in_app_include=_IN_APP)
            await asyncio.to_thread(_sync_app, sync_client)
            await asyncio.to_thread(sync_client.close, _FLUSH_SECONDS)
            await _async_app(collector.dsn)

            events = collector.events()
            issues = _issue_lines(collector)
            scrubbed = any("[Filtered]" in str(event) for event in events)
            print(f"\nthe collector received {len(events)} events:", file=out)
            for line in _event_lines(events):
                print(line, file=out)
            print(f"\ngrouped into {len(issues)} issues:", file=out)
            for line in issues:
                print(line, file=out)
            print(f"\nsecrets scrubbed before sending: {'yes' if scrubbed else 'NO'}", file=out)
            ok = len(events) == _EXPECTED_EVENTS and len(issues) == _EXPECTED_EVENTS and scrubbed
            if not serve:
                # Its address would lead nowhere: the collector and its database go with the demo.
                print("\nthis demo's collector has stopped, and its events with it.", file=out)
                print(
                    "to browse them in the web UI, run `errlink demo --serve` "
                    "(it keeps running until Ctrl-C).",
                    file=out,
                    flush=True,
                )
                return 0 if ok else 1
            await _serve_until_stopped(collector, out)
            return 0 if ok else 1


async def _serve_until_stopped(collector: Collector, out: TextIO) -> None:
    from ..collector._serve import stop_on_signals

    with stop_on_signals() as stop_requested:
        print(f"events as JSON: {collector.events_url}", file=out)
        print(f"web UI: {collector.ui_url}  (open it in a browser; Ctrl-C to stop)", file=out)
        print(f"send your own events to {collector.dsn}", file=out, flush=True)
        await stop_requested.wait()
