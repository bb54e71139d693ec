"""`errlink.logger`: structured logs, batched into `log` items, checked on what errlink's
collector on 127.0.0.1 stored (issue 18, structured logs)."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

import errlink
from errlink import TransportResponse
from errlink._capture import log_batch
from errlink._capture.binding import bind_client
from errlink._capture.scope import isolated_scope
from errlink._wire.envelope import Envelope
from errlink.collector import CollectorThread
from errlink.integrations.logging import EventHandler
from errlink.sync import Client
from tests._support import wait_until
from tests._support.transports import MemoryTransport


@pytest.fixture(autouse=True)
def _fresh_scope() -> Iterator[None]:
    # Records logged through init()'s handlers become breadcrumbs of the process's scope: keep
    # them in this test.
    with isolated_scope():
        yield


THREADS = 10
PER_THREAD = 1000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorThread]:
    db = tmp_path_factory.mktemp("logs") / "collector.db"
    with CollectorThread(db_path=db, public_key="errlink") as started:
        yield started


@contextmanager
def bound(client: Client) -> Iterator[Client]:
    with bind_client(client.core):
        yield client
    client.close(10)


def stored_logs(server: CollectorThread, **query: str) -> list[dict[str, Any]]:
    """Every stored log matching `query`, newest first, through the JSON API."""
    found: list[dict[str, Any]] = []
    before = ""
    while True:
        params = "&".join(f"{k}={v}" for k, v in {**query, "limit": "1000"}.items())
        url = f"{server.url}/api/0/logs/?{params}" + (f"&before={before}" if before else "")
        with urllib.request.urlopen(url, timeout=10) as answer:
            page = json.load(answer)
        found += page["logs"]
        if page["next"] is None:
            return found
        before = str(page["next"])


def logs_with(server: CollectorThread, run: str) -> list[dict[str, Any]]:
    return [log for log in stored_logs(server) if log["attributes"].get("run") == run]


def trace_of(index: int) -> str:
    return f"{index + 1:032x}"


def test_ten_thousand_records_from_ten_threads_all_arrive_batched(tmp_path: Any) -> None:
    with CollectorThread(db_path=tmp_path / "c.db", public_key="errlink") as collector:
        client = Client(collector.dsn, release="1.0.0", environment="load")
        start = threading.Barrier(THREADS)

        def work(index: int) -> None:
            with (
                bind_client(client.core),
                errlink.continue_trace({"sentry-trace": f"{trace_of(index)}-{index + 1:016x}-1"}),
            ):
                start.wait()
                for n in range(PER_THREAD):
                    errlink.logger.info("record {n} of thread {thread}", n=n, thread=index)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert client.flush(60)
        stats = client.stats
        client.close(10)

        with sqlite3.connect(collector.db_path) as db:
            rows = db.execute("SELECT item_id, trace_id, attributes FROM logs").fetchall()
        assert len(rows) == THREADS * PER_THREAD
        seen = set()
        per_item: dict[int, int] = {}
        for item_id, trace_id, attributes in rows:
            values = {k: v["value"] for k, v in json.loads(attributes).items()}
            thread, n = (
                values["sentry.message.parameter.thread"],
                values["sentry.message.parameter.n"],
            )
            assert trace_id == trace_of(thread)
            seen.add((thread, n))
            per_item[item_id] = per_item.get(item_id, 0) + 1
        assert len(seen) == THREADS * PER_THREAD
        # Batched: never more than 100 records in an item, one item per envelope.
        assert max(per_item.values()) <= 100
        assert len(per_item) >= THREADS * PER_THREAD // 100
        assert collector.request_statuses[200] == len(per_item)
        assert stats.dropped == {}


def test_a_record_carries_template_parameters_attributes_trace_and_client_fields(
    server: CollectorThread,
) -> None:
    client = Client(server.dsn, release="2.0.0", environment="prod", server_name="web-1")
    with bound(client), errlink.continue_trace({"sentry-trace": "ab" * 16 + "-" + "cd" * 8 + "-1"}):
        errlink.logger.warning(
            "payment {order_id} failed after {tries} tries",
            order_id=7,
            tries=2.5,
            attributes={"run": "fields", "shop": "eu", "retry": True},
        )
        assert client.flush(10)
    [log] = logs_with(server, "fields")
    assert log["body"] == "payment 7 failed after 2.5 tries"
    assert log["level"] == "warn"
    assert log["severity_number"] == 13
    assert log["trace_id"] == "ab" * 16
    attributes = log["attributes"]
    assert attributes["sentry.message.template"] == "payment {order_id} failed after {tries} tries"
    assert attributes["sentry.message.parameter.order_id"] == 7
    assert attributes["sentry.message.parameter.tries"] == 2.5
    assert attributes["shop"] == "eu"
    assert attributes["retry"] is True
    assert attributes["sentry.release"] == "2.0.0"
    assert attributes["sentry.environment"] == "prod"
    assert attributes["server.address"] == "web-1"
    assert attributes["sentry.sdk.name"] == "errlink"
    assert attributes["sentry.sdk.version"] == errlink.__version__


def test_every_level_has_its_name_and_severity(server: CollectorThread) -> None:
    client = Client(server.dsn)
    with bound(client):
        for name in ("trace", "debug", "info", "warning", "error", "fatal"):
            getattr(errlink.logger, name)("at {name}", name=name, attributes={"run": "levels"})
        assert client.flush(10)
    found = {
        log["body"]: (log["level"], log["severity_number"]) for log in logs_with(server, "levels")
    }
    assert found == {
        "at trace": ("trace", 1),
        "at debug": ("debug", 5),
        "at info": ("info", 9),
        "at warning": ("warn", 13),
        "at error": ("error", 17),
        "at fatal": ("fatal", 21),
    }


class Unprintable:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")

    __str__ = __repr__


def test_bad_input_never_raises_and_still_sends(server: CollectorThread) -> None:
    client = Client(server.dsn)
    extra = {"run": "bad"}
    with bound(client):
        log = errlink.logger
        log.info("unclosed {", attributes=extra)
        log.info("{missing} name", attributes=extra, other=1)
        log.info("{value:d} wrong spec", value="text", attributes=extra)
        log.info("{} and {}", "positional", attributes=extra)
        log.info(None, attributes=extra)  # type: ignore[arg-type]
        log.info("object {thing}", thing=Unprintable(), attributes=extra)
        log.info("nested {data}", data={"a": [1, 2, {"b": None}]}, attributes=extra)
        log.info("attributes not a mapping", attributes=["run", "bad"])  # type: ignore[arg-type]
        log.info("huge " + "x" * 100_000, attributes=extra)
        assert client.flush(10)
    bodies = sorted(log["body"] for log in logs_with(server, "bad"))
    assert "unclosed {" in bodies
    assert "{missing} name" in bodies
    assert "{value:d} wrong spec" in bodies
    assert "positional and {}" in bodies or "{} and {}" in bodies
    assert "None" in bodies
    assert any(body.startswith("object <") for body in bodies)
    assert any(body.startswith("nested {'a': [1, 2") for body in bodies)
    assert any(body.startswith("huge xxx") and len(body) < 20_000 for body in bodies)
    assert client.stats.dropped == {}


def test_before_send_log_drops_and_changes_records(server: CollectorThread) -> None:
    def hook(record: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any] | None:
        if "drop me" in record["body"]:
            return None
        record["body"] = record["body"].upper()
        record["attributes"]["reviewed"] = True
        return record

    client = Client(server.dsn, before_send_log=hook)
    with bound(client):
        errlink.logger.info("keep {n}", n=1, attributes={"run": "hook"})
        errlink.logger.info("drop me", attributes={"run": "hook"})
        errlink.logger.info("drop me too", attributes={"run": "hook"})
        assert client.flush(10)
        assert client.stats.dropped_by_category == {("before_send", "log_item"): 2}
    [log] = logs_with(server, "hook")
    assert log["body"] == "KEEP 1"
    assert log["attributes"]["reviewed"] is True
    reports = [
        d
        for r in server.client_reports()
        for d in r["discarded_events"]
        if d["category"] == "log_item" and d["reason"] == "before_send"
    ]
    assert sum(d["quantity"] for d in reports) >= 2


def test_secrets_in_attributes_and_parameters_are_scrubbed(server: CollectorThread) -> None:
    client = Client(server.dsn)
    with bound(client):
        errlink.logger.info(
            "login {user} with {password}, card 4111 1111 1111 1111",
            user="ada",
            password="hunter2",
            attributes={"run": "scrub", "api_key": "sk_live_123", "nested": {"token": "t0k"}},
        )
        assert client.flush(10)
    [log] = logs_with(server, "scrub")
    assert "hunter2" not in json.dumps(log)
    assert "sk_live_123" not in json.dumps(log)
    assert "t0k" not in json.dumps(log)
    assert "4111 1111 1111 1111" not in json.dumps(log)
    assert log["body"] == "login ada with [Filtered], card [Filtered]"
    assert log["attributes"]["sentry.message.parameter.password"] == "[Filtered]"
    assert log["attributes"]["api_key"] == "[Filtered]"
    assert log["attributes"]["sentry.message.parameter.user"] == "ada"


def test_a_log_item_rate_limit_stops_logs_and_not_events(tmp_path: Any) -> None:
    with CollectorThread(db_path=tmp_path / "c.db", public_key="errlink") as collector:
        collector.set_faults(limit_categories=("log_item",), retry_after=60)
        client = Client(collector.dsn)
        with bound(client):
            for n in range(30):
                errlink.logger.info("first {n}", n=n)
            assert client.flush(10)
            assert collector.request_statuses[429] == 1
            for n in range(20):
                errlink.logger.info("later {n}", n=n)
            errlink.capture_message("still reported")
            assert client.flush(10)
            errlink.capture_message("and this one")
            assert client.flush(10)
        messages = [e["logentry"]["formatted"] for e in collector.events()]
        assert messages == ["still reported", "and this one"]
        assert collector.request_statuses[429] == 1  # the later logs were not even sent
        with sqlite3.connect(collector.db_path) as db:
            assert db.execute("SELECT count(*) FROM logs").fetchone()[0] == 0
        assert collector.discarded_totals()[("ratelimit_backoff", "log_item")] == 50


class GateTransport(MemoryTransport):
    """Holds every send until `gate` opens."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    async def send(self, envelope: Envelope) -> TransportResponse:
        await asyncio.to_thread(self.gate.wait)
        return await super().send(envelope)


def test_beyond_the_bound_records_are_dropped_and_counted_per_record() -> None:
    transport = GateTransport()
    client = Client("http://key@127.0.0.1:9/1", transport=transport)
    with bound(client):
        errlink.capture_message("an error is still queued")
        for n in range(10_000 + 250):
            errlink.logger.info("record {n}", n=n)
        dropped = client.stats.dropped_by_category
        transport.gate.set()
        wait_until(lambda: client.stats.pending == 0)
        assert client.flush(30)
    # 100 batches of 100 are held; the next two batches are refused, 50 wait in the open batch.
    assert dropped == {("queue_overflow", "log_item"): 200}
    items = [i for e in transport.envelopes for i in e.items if i.type == "log"]
    assert sum(i.headers["item_count"] for i in items) == 10_050
    assert all(i.headers["content_type"] == "application/vnd.sentry.items.log+json" for i in items)
    assert all(len(i.json()["items"]) == i.headers["item_count"] <= 100 for i in items)
    assert len(transport.events()) == 1
    reported = [d for r in transport.client_reports() for d in r["discarded_events"]]
    assert {"reason": "queue_overflow", "category": "log_item", "quantity": 200} in reported


def test_enable_logs_false_makes_the_logger_a_no_op() -> None:
    transport = MemoryTransport()
    client = Client("http://key@127.0.0.1:9/1", transport=transport, enable_logs=False)
    with bound(client):
        errlink.logger.error("never sent {n}", n=1)
        errlink.capture_message("sent")
        assert client.flush(10)
    assert client.core.logs is None
    assert [i.type for e in transport.envelopes for i in e.items] == ["event"]


def test_the_logger_without_a_client_does_nothing() -> None:
    errlink.logger.info("nobody listens {n}", n=1)


def test_an_open_batch_is_sent_after_the_flush_interval(
    server: CollectorThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(log_batch, "FLUSH_SECONDS", 0.05)
    client = Client(server.dsn)
    with bound(client):
        errlink.logger.info("on a timer", attributes={"run": "timer"})
        wait_until(lambda: logs_with(server, "timer"), timeout=10)


def test_the_logging_handler_forwards_records_with_extra_fields(server: CollectorThread) -> None:
    client = Client(server.dsn)
    app_logger = logging.getLogger("shop.payments")
    handler = EventHandler(log_level=logging.INFO, breadcrumb_level=None, event_level=None)
    app_logger.addHandler(handler)
    app_logger.setLevel(logging.DEBUG)
    internal = logging.getLogger("errlink")
    internal.addHandler(handler)
    try:
        with (
            bound(client),
            errlink.continue_trace({"sentry-trace": "ef" * 16 + "-" + "12" * 8 + "-1"}),
        ):
            app_logger.debug("too low %s", "to forward", extra={"run": "handler"})
            app_logger.info(
                "order %s paid by %s", 7, "ada", extra={"run": "handler", "password": "s3cret"}
            )
            internal.warning("errlink's own", extra={"run": "handler"})
            assert client.flush(10)
    finally:
        app_logger.removeHandler(handler)
        internal.removeHandler(handler)
    [log] = logs_with(server, "handler")
    assert log["body"] == "order 7 paid by ada"
    assert log["level"] == "info"
    assert log["trace_id"] == "ef" * 16
    attributes = log["attributes"]
    assert attributes["sentry.message.template"] == "order %s paid by %s"
    assert attributes["sentry.message.parameter.0"] == 7
    assert attributes["sentry.message.parameter.1"] == "ada"
    assert attributes["logger.name"] == "shop.payments"
    assert attributes["password"] == "[Filtered]"
    assert (
        attributes["code.function.name"]
        == "test_the_logging_handler_forwards_records_with_extra_fields"
    )


def test_init_forwards_logging_records_at_its_log_level(server: CollectorThread) -> None:
    app_logger = logging.getLogger("shop.init")
    app_logger.setLevel(logging.INFO)
    client = errlink.init(
        server.dsn,
        logging_log_level="WARNING",
        logging_event_level=None,
        excepthook=False,
        default_integrations=False,
    )
    try:
        app_logger.info("below the level", extra={"run": "init"})
        app_logger.warning("disk %d%% full", 93, extra={"run": "init", "disk": "/var"})
        assert client.flush(10)
    finally:
        errlink.close()
    [log] = logs_with(server, "init")
    assert log["body"] == "disk 93% full"
    assert log["attributes"]["disk"] == "/var"
    assert log["level"] == "warn"
