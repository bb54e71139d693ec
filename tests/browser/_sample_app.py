"""A small application that reports to a collector: what the browser tests then look at."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import errlink
from errlink import add_breadcrumb, new_scope, set_tag, set_user
from errlink._capture.binding import bind_client
from errlink._capture.scope import isolated_scope, set_request
from errlink.integrations.awslambda import report_errors
from errlink.sync import Client
from tests._support import wait_until

# Lands in exception values, messages, tags, user fields and breadcrumbs: it must show as text.
INJECTED = '<script>window.__pwned = 1; document.title = "pwned"</script><b>bold?</b>'
RAISE_LINE = 'raise ConnectionError("payment gateway timed out")'
# Percent-encoded, with a repeated name, a blank value and a scrubbed token.
QUERY_STRING = "term=caf%C3%A9+au+lait&page=&token=%5BFiltered%5D&page=2"
# The flaky job's reports: (region tag, server name); the issue page breaks them down.
FLAKY_RUNS = [("eu", "worker-1"), ("eu", "worker-2"), ("us", "worker-1"), ("eu", "worker-1")]
LONG_WORD = "x" * 3000  # one unbreakable word, longer than any window is wide


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
    set_request(
        {
            "method": "GET",
            "url": "http://shop.example/search",
            "query_string": QUERY_STRING + "&q=" + INJECTED,
        }
    )
    add_breadcrumb(INJECTED, category="html")
    try:
        raise ValueError(INJECTED)
    except ValueError:
        client.capture_exception()


def flaky_job(client: Client) -> None:
    for region, server in FLAKY_RUNS:
        client.capture_message(
            "nightly sync timed out", level="warning", tags={"region": region}, server_name=server
        )
        # Delivered before the next is sent: several in flight may arrive in any order, and the
        # UI's "latest event" is the last to arrive.
        client.flush()


def export_report(client: Client) -> None:
    """A message sent with the stack it was sent from (`attach_stacktrace=True`)."""
    client.capture_message(f"export finished with a long id {LONG_WORD}", level="info")


def thread_dump(client: Client) -> None:
    """An event with several threads' stacks, as native and JVM SDKs send them."""

    def frame(function: str, line: str) -> dict[str, Any]:
        return {"filename": "app/worker.py", "function": function, "lineno": 12, "in_app": True,
                "context_line": line}  # fmt: skip

    client.capture_event(
        {
            "level": "fatal",
            "message": "watchdog: worker stuck",
            "threads": {
                "values": [
                    {"id": 1, "name": "MainThread", "current": True,
                     "stacktrace": {"frames": [frame("serve", "    loop.run_forever()")]}},
                    {"id": 7, "name": "worker-7", "crashed": True,
                     "stacktrace": {"frames": [frame("drain", "    lock.acquire()")]}},
                    {"id": 9, "name": "heartbeat",
                     "stacktrace": {"frames": [frame("beat", "    time.sleep(5)")]}},
                ]
            },
        }
    )  # fmt: skip


def run(dsn: str) -> int:
    """Report every sample once; returns how many events were sent."""
    client = Client(dsn, environment="browser-test", in_app_include=[__name__])
    stack_client = Client(
        dsn, environment="browser-test", in_app_include=[__name__], attach_stacktrace=True
    )
    try:
        with bind_client(client.core):
            for sample in (checkout, reserve_stock, import_settings, hostile_input):
                with new_scope():
                    sample(client)
            flaky_job(client)
            thread_dump(client)
        export_report(stack_client)
        if not client.flush(30) or not stack_client.flush(30):
            raise RuntimeError("the sample events were not delivered in time")
        return client.stats.sent + stack_client.stats.sent
    finally:
        client.close(10)
        stack_client.close(10)


class LambdaContext:
    """The attributes of the AWS Lambda runtime's context that errlink reads."""

    function_name = "nightly-report"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:nightly-report"
    memory_limit_in_mb = "256"
    aws_request_id = "8f5e0c3a-0000-4000-8000-000000000001"
    log_group_name = "/aws/lambda/nightly-report"
    log_stream_name = "2026/01/01/[$LATEST]0001"

    def __init__(self, timeout_seconds: float) -> None:
        self.deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def lambda_timeout(dsn: str, warned: Callable[[], bool]) -> None:
    """A Lambda handler that runs into its timeout warning: errlink reports the handler's
    stack under `threads`. The handler returns once `warned()` says the warning arrived."""

    @report_errors(dsn=dsn, timeout_warning_margin=1.0, environment="browser-test")
    def build_report(event: dict[str, Any], context: Any) -> str:
        wait_until(warned, 30, message="the Lambda timeout warning did not arrive")
        return "late"

    with isolated_scope():
        try:
            build_report({"report": "daily"}, LambdaContext(timeout_seconds=1.2))
        finally:
            errlink.close(timeout=10)
