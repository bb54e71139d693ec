"""AWS Lambda integration: handlers invoked the way the Lambda runtime invokes them.

An event dict and a context object with the runtime's attribute names (_lambda_context.py);
errlink delivers to the real collector on 127.0.0.1. The freeze tests run the invocation in a
subprocess (_lambda_runner.py) and stop it with SIGSTOP the moment the handler has returned,
as the runtime freezes a function between invocations: the event must already be delivered.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _lambda_context import LambdaContext

import errlink
from errlink._capture.scope import isolated_scope
from errlink.integrations.awslambda import report_errors
from errlink.sync import default_client
from tests._support import wait_until
from tests._support.transports import MemoryTransport

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
WAIT = 20.0


@pytest.fixture(autouse=True)
def _no_default_client() -> Iterator[None]:
    with isolated_scope():  # what is logged outside invocations stays in this test
        yield
    errlink.close(timeout=2)


def _timeout_timers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "errlink-lambda-timeout"]


def _quiet(collector: Any) -> int:
    """The event count once everything this process captured was delivered."""
    assert errlink.flush(10) is True
    return int(collector.event_count())


def test_exception_is_reported_with_the_lambda_context_and_reraised_unchanged(
    collector_thread: Any,
) -> None:
    raised = ValueError("order 7 could not be charged")

    @report_errors(dsn=collector_thread.dsn, release="fn@3")
    def handler(event: dict[str, Any], context: Any) -> None:
        order_total = event["total"]  # noqa: F841 - a local the event should carry
        raise raised

    context = LambdaContext(timeout_ms=30_000)
    event = {"order_id": 7, "total": 12.5, "password": "hunter2", "items": list(range(500))}
    with pytest.raises(ValueError) as caught:
        handler(event, context)
    assert caught.value is raised
    # Flushed before the invocation returned: no waiting here.
    [stored] = collector_thread.events()

    [value] = stored["exception"]["values"]
    assert (value["type"], value["value"]) == ("ValueError", "order 7 could not be charged")
    assert value["mechanism"]["type"] == "aws_lambda"
    assert value["mechanism"]["handled"] is False
    assert value["stacktrace"]["frames"][-1]["vars"]["order_total"] == 12.5
    assert stored["transaction"] == "checkout"
    assert stored["release"] == "fn@3"
    assert "aws_lambda" in stored["sdk"]["integrations"]
    lambda_context = stored["contexts"]["aws_lambda"]
    assert lambda_context["function_name"] == "checkout"
    assert lambda_context["function_version"] == "$LATEST"
    assert lambda_context["invoked_function_arn"] == context.invoked_function_arn
    assert lambda_context["aws_request_id"] == context.aws_request_id
    assert lambda_context["memory_limit_in_mb"] == 256
    assert lambda_context["log_group_name"] == "/aws/lambda/checkout"
    assert 0 < lambda_context["remaining_time_in_millis"] <= 30_000
    lambda_event = stored["extra"]["aws_lambda_event"]
    assert lambda_event["order_id"] == 7
    assert lambda_event["password"] == "[Filtered]"
    assert len(lambda_event["items"]) < 500  # size-limited
    assert "request" not in stored


def test_a_successful_invocation_returns_exactly_what_the_handler_returned(
    collector_thread: Any,
) -> None:
    response = {"statusCode": 201, "body": json.dumps({"id": 1})}

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return response

    wrapped = report_errors(dsn=collector_thread.dsn)(handler)
    assert wrapped.__name__ == "handler"
    assert wrapped({"a": 1}, LambdaContext()) is handler({"a": 1}, LambdaContext())
    assert _quiet(collector_thread) == 0


def _rest_api_event() -> dict[str, Any]:
    """An API Gateway REST API (payload 1.0) proxy event."""
    return {
        "resource": "/orders/{id}",
        "path": "/orders/42",
        "httpMethod": "POST",
        "headers": {
            "Host": "api.example.com",
            "Content-Type": "application/json",
            "Authorization": "Bearer abc.def.ghi",
            "Cookie": "session=s3cr3t",
            "X-Forwarded-Proto": "https",
        },
        "multiValueQueryStringParameters": {"expand": ["items", "customer"]},
        "queryStringParameters": {"expand": "customer"},
        "pathParameters": {"id": "42"},
        "requestContext": {
            "stage": "prod",
            "identity": {"sourceIp": "203.0.113.9"},
            "domainName": "api.example.com",
        },
        "body": json.dumps({"quantity": 3, "card_number": "4111111111111111"}),
        "isBase64Encoded": False,
    }


def _http_api_event() -> dict[str, Any]:
    """An API Gateway HTTP API / function URL (payload 2.0) event with a base64 body."""
    return {
        "version": "2.0",
        "routeKey": "POST /orders",
        "rawPath": "/orders",
        "rawQueryString": "dry_run=1&token=abc",
        "cookies": ["session=s3cr3t", "theme=dark"],
        "headers": {"host": "abc.lambda-url.eu-west-1.on.aws", "content-type": "text/plain"},
        "requestContext": {
            "domainName": "abc.lambda-url.eu-west-1.on.aws",
            "http": {"method": "POST", "path": "/orders", "sourceIp": "198.51.100.4"},
        },
        "body": base64.b64encode(b"three apples").decode(),
        "isBase64Encoded": True,
    }


def test_an_api_gateway_rest_event_becomes_the_request(collector_thread: Any) -> None:
    @report_errors(dsn=collector_thread.dsn)
    def handler(event: dict[str, Any], context: Any) -> None:
        raise RuntimeError("db down")

    with pytest.raises(RuntimeError):
        handler(_rest_api_event(), LambdaContext())
    [stored] = collector_thread.events()
    request = stored["request"]
    assert request["url"] == "https://api.example.com/orders/42"
    assert request["method"] == "POST"
    assert request["query_string"] == "expand=items&expand=customer"
    assert request["headers"]["Content-Type"] == "application/json"
    assert "Authorization" not in request["headers"]  # no PII by default
    assert "cookies" not in request
    assert "REMOTE_ADDR" not in request.get("env", {})
    assert request["data"] == {"quantity": 3, "card_number": "[Filtered]"}
    assert "aws_lambda_event" not in stored.get("extra", {})


def test_an_http_api_event_becomes_the_request_with_pii_when_allowed(
    collector_thread: Any,
) -> None:
    @report_errors(dsn=collector_thread.dsn, send_default_pii=True)
    def handler(event: dict[str, Any], context: Any) -> None:
        raise RuntimeError("db down")

    with pytest.raises(RuntimeError):
        handler(_http_api_event(), LambdaContext())
    [stored] = collector_thread.events()
    request = stored["request"]
    assert request["url"] == "https://abc.lambda-url.eu-west-1.on.aws/orders"
    assert request["method"] == "POST"
    assert request["query_string"] == "dry_run=1&token=%5BFiltered%5D"
    assert request["data"] == "three apples"
    assert request["cookies"] == "session=[Filtered]; theme=dark"
    assert request["env"]["REMOTE_ADDR"] == "198.51.100.4"


def test_async_handlers_run_through_asyncio(collector_thread: Any) -> None:
    @report_errors(dsn=collector_thread.dsn)
    async def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        await asyncio.sleep(0)
        errlink.set_tag("step", event["step"])
        if event.get("fail"):
            raise LookupError("no stock")
        return {"loop": id(asyncio.get_running_loop())}

    first = handler({"step": "one"}, LambdaContext())
    second = handler({"step": "two"}, LambdaContext())
    assert first == second  # one loop for the life of the process: warm clients keep working
    with pytest.raises(LookupError, match="no stock"):
        handler({"step": "three", "fail": True}, LambdaContext())
    [stored] = collector_thread.events()
    assert stored["tags"] == {"step": "three"}  # set inside the coroutine, captured there
    assert stored["exception"]["values"][-1]["mechanism"]["type"] == "aws_lambda"
    assert stored["contexts"]["aws_lambda"]["function_name"] == "checkout"


def test_each_invocation_has_its_own_scope(collector_thread: Any) -> None:
    logging.getLogger("shop").setLevel(logging.INFO)  # the app lets its INFO records through

    @report_errors(dsn=collector_thread.dsn)
    def handler(event: dict[str, Any], context: Any) -> str:
        errlink.set_tag(f"invocation-{event['n']}", "set")
        logging.getLogger("shop").info("handling %s", event["n"])
        if event["fail"]:
            raise ValueError(f"invocation {event['n']}")
        return "ok"

    assert handler({"n": 1, "fail": False}, LambdaContext()) == "ok"
    with pytest.raises(ValueError):
        handler({"n": 2, "fail": True}, LambdaContext())
    [stored] = collector_thread.events()
    assert [k for k in stored["tags"] if k.startswith("invocation-")] == ["invocation-2"]
    assert [c["message"] for c in stored["breadcrumbs"]["values"]] == ["handling 2"]
    assert errlink.capture_message("outside") is not None
    [_, outside] = collector_thread.wait_for_events(2)
    assert "tags" not in outside or not outside["tags"]  # nothing leaked out either


def test_the_timeout_warning_fires_for_a_handler_that_sleeps_past_its_budget(
    collector_thread: Any,
) -> None:
    @report_errors(dsn=collector_thread.dsn, timeout_warning_margin=1.0)
    def slow_handler(event: dict[str, Any], context: Any) -> str:
        # Sleeps until the warning arrived (on a loaded machine that may be past the deadline,
        # the point where the runtime would stop the function).
        wait_until(lambda: collector_thread.event_count() >= 1, WAIT)
        return "finished late"

    assert slow_handler({"order_id": 1}, LambdaContext(timeout_ms=1_500)) == "finished late"
    [warning] = collector_thread.events()
    assert warning["level"] == "warning"
    assert warning["logentry"]["formatted"] == "checkout is about to time out"
    assert warning["tags"]["aws_lambda.timeout_warning"] == "true"
    assert warning["transaction"] == "checkout"
    assert warning["contexts"]["aws_lambda"]["remaining_time_in_millis"] <= 1_000
    assert warning["extra"]["aws_lambda_event"] == {"order_id": 1}
    [thread] = warning["threads"]["values"]  # where the handler was when time ran short
    functions = [frame["function"] for frame in thread["stacktrace"]["frames"]]
    assert any(name.endswith("slow_handler") for name in functions), functions


def test_no_timeout_warning_when_disabled_or_finished_in_time(collector_thread: Any) -> None:
    wait_until(lambda: not _timeout_timers(), WAIT)  # none left by other tests

    @report_errors(dsn=collector_thread.dsn, timeout_warning=False)
    def slow_handler(event: dict[str, Any], context: Any) -> str:
        assert not _timeout_timers()  # disabled: no watchdog at all
        # Well past the point a warning would fire (0.3 s in), on the invocation's own clock.
        wait_until(lambda: context.get_remaining_time_in_millis() <= 500, WAIT)
        return "slow"

    @report_errors(dsn=collector_thread.dsn, timeout_warning_margin=1.0)
    def quick_handler(event: dict[str, Any], context: Any) -> str:
        assert len(_timeout_timers()) == 1  # the watchdog whose warning must never fire
        return "quick"

    assert slow_handler({}, LambdaContext(timeout_ms=1_300)) == "slow"
    assert quick_handler({}, LambdaContext(timeout_ms=1_300)) == "quick"
    # Returning cancelled the watchdog. Once its thread has ended no warning can come any more
    # (a warning that did fire was captured before the thread ended, and the flush delivers it).
    wait_until(lambda: not _timeout_timers(), WAIT)
    assert _quiet(collector_thread) == 0


class HangingTransport(MemoryTransport):
    """A server that never answers."""

    async def send(self, envelope: Any) -> Any:
        await asyncio.Event().wait()


def test_the_final_flush_never_outlasts_the_invocation() -> None:
    @report_errors(transport=HangingTransport(), shutdown_timeout=30, timeout_warning=False)
    def handler(event: dict[str, Any], context: Any) -> str:
        raise ValueError("cannot be delivered")

    started = time.monotonic()
    with pytest.raises(ValueError):
        handler({}, LambdaContext(timeout_ms=1_200))
    # Bounded by the 1.2 s the invocation had (less a reserve), not by shutdown_timeout.
    assert time.monotonic() - started < 10
    assert errlink.close(timeout=0) is False  # the event is still stuck: give it up


def test_without_a_dsn_the_wrapper_only_calls_the_handler(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ERRLINK_DSN", raising=False)
    monkeypatch.delenv("SENTRY_DSN", raising=False)
    raised = KeyError("missing")
    response = {"statusCode": 200}

    @report_errors
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        if event.get("fail"):
            raise raised
        return response

    client = default_client()
    assert client is not None
    assert client.enabled is False
    assert handler({}, LambdaContext(timeout_ms=1_500)) is response
    with pytest.raises(KeyError) as caught:
        handler({"fail": True}, LambdaContext(timeout_ms=1_500))
    assert caught.value is raised
    wait_until(lambda: not _timeout_timers(), WAIT)  # none was started (nor left by other tests)


class BrokenContext:
    function_name = None

    def get_remaining_time_in_millis(self) -> int:
        raise RuntimeError("no deadline here")


@pytest.mark.parametrize(
    "event",
    [
        None,
        "plain text",
        [1, 2, 3],
        {"httpMethod": "GET", "headers": None, "requestContext": None},
        {"httpMethod": "POST", "body": "%%%not base64", "isBase64Encoded": True},
        {"requestContext": {"http": {"method": 7}}, "headers": {"content-type": None}},
    ],
)
@pytest.mark.parametrize("context", [None, BrokenContext(), object()])
def test_odd_events_and_contexts_never_fail_an_invocation(
    collector_thread: Any, event: Any, context: Any
) -> None:
    @report_errors(dsn=collector_thread.dsn)
    def handler(event: Any, context: Any) -> Any:
        if event == "plain text":
            raise ValueError("still reported")
        return event

    if event == "plain text":
        with pytest.raises(ValueError, match="still reported"):
            handler(event, context)
        collector_thread.wait_for_events(1)
    else:
        assert handler(event, context) is event


def test_invalid_options_fail_at_decoration() -> None:
    with pytest.raises(ValueError, match="invalid dsn"):
        report_errors(dsn="not a dsn")
    with pytest.raises(ValueError, match="timeout_warning_margin"):
        report_errors(timeout_warning_margin=-1)
    with pytest.raises(TypeError, match="no_such_option"):
        report_errors(no_such_option=True)  # type: ignore[call-overload]


# -- frozen right after the handler returns -------------------------------------------------------


@pytest.fixture
def run_invocation(collector_thread: Any) -> Iterator[Any]:
    started: list[subprocess.Popen[str]] = []

    def run(handler: str, event: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
        env = {
            **os.environ,
            "ERRLINK_DSN": collector_thread.dsn,
            "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT)]),
        }
        env.pop("SENTRY_DSN", None)
        proc = subprocess.Popen(
            [sys.executable, str(HERE / "_lambda_runner.py"), handler, json.dumps(event)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(proc)
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        assert ready, "the handler did not return in time"
        line = proc.stdout.readline()
        os.kill(proc.pid, signal.SIGSTOP)  # the runtime freezes the function here
        events = collector_thread.events()  # no waiting: delivered before the handler returned
        assert line, proc.stderr.read() if proc.stderr else ""
        return line.strip(), events

    yield run
    for proc in started:
        proc.kill()  # SIGKILL also ends a stopped process
        proc.communicate(timeout=30)


def test_a_frozen_function_has_already_delivered_its_exception(run_invocation: Any) -> None:
    line, events = run_invocation("failing", {"order_id": 9})
    assert line == "raised ValueError: order 9 could not be charged"
    [stored] = events
    assert stored["exception"]["values"][-1]["value"] == "order 9 could not be charged"
    assert stored["contexts"]["aws_lambda"]["function_name"] == "checkout"
    assert stored["extra"]["aws_lambda_event"] == {"order_id": 9}


def test_a_frozen_async_function_has_already_delivered_its_exception(
    run_invocation: Any,
) -> None:
    line, events = run_invocation("async_failing", {"order_id": 4})
    assert line == "raised LookupError: no stock for order 4"
    [stored] = events
    assert stored["exception"]["values"][-1]["type"] == "LookupError"
    assert stored["tags"]["stage"] == "async"


def test_a_frozen_successful_function_has_already_delivered_what_it_logged(
    run_invocation: Any,
) -> None:
    line, events = run_invocation("logs_an_error", {"order_id": 5})
    assert line == 'returned {"statusCode": 200, "body": "ok"}'
    [stored] = events
    assert stored["logentry"]["formatted"] == "payment provider slow for order 5"
    assert stored["level"] == "error"
    assert stored["transaction"] == "checkout"
