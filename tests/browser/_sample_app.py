"""A small application that reports to a collector: what the browser tests then look at."""

from __future__ import annotations

import json

from errlink import add_breadcrumb, new_scope, set_tag, set_user
from errlink._capture.binding import bind_client
from errlink._capture.scope import set_request
from errlink.sync import Client

# Lands in exception values, messages, tags, user fields and breadcrumbs: it must show as text.
INJECTED = '<script>window.__pwned = 1; document.title = "pwned"</script><b>bold?</b>'
RAISE_LINE = 'raise ConnectionError("payment gateway timed out")'


class CheckoutError(Exception):
    pass


def charge(card_number: str, amount_cents: int) -> None:
    gateway = "sandbox-eu"  # noqa: F841 - a local the event page shows
    raise ConnectionError("payment gateway timed out")


def checkout(client: Client) -> None:
    try:
        try:
            charge("4111 1111 1111 1111", 1999)
        except ConnectionError as exc:
            raise CheckoutError("checkout failed for order 7") from exc
    except CheckoutError:
        client.capture_exception()


def reserve_stock(client: Client) -> None:
    add_breadcrumb("cart loaded with 3 items", category="shop.cart")
    add_breadcrumb("inventory low for sku-42", category="shop.stock", level="warning")
    client.capture_message("could not reserve stock for sku-42", level="error")


def import_settings(client: Client) -> None:
    try:
        json.loads("{'single': 'quotes'}")  # raises inside the standard library's json
    except json.JSONDecodeError:
        client.capture_exception()


def hostile_input(client: Client) -> None:
    set_tag("note", INJECTED)
    set_user({"id": "7", "username": INJECTED})
    set_request({"method": "GET", "url": "http://shop.example/?q=" + INJECTED})
    add_breadcrumb(INJECTED, category="html")
    try:
        raise ValueError(INJECTED)
    except ValueError:
        client.capture_exception()


def run(dsn: str) -> int:
    """Report every sample once; returns how many events were sent."""
    client = Client(dsn, environment="browser-test", in_app_include=[__name__])
    try:
        with bind_client(client.core):
            for sample in (checkout, reserve_stock, import_settings, hostile_input):
                with new_scope():
                    sample(client)
        if not client.flush(30):
            raise RuntimeError("the sample events were not delivered in time")
        return client.stats.sent
    finally:
        client.close(10)
