"""Trace context as a user sees it: continuing a caller's trace from its headers (or refusing
to, quietly), the headers passed on, and what a server receives: ``contexts.trace`` on each
event and the dynamic sampling context in the envelope's ``trace`` header, also after a spell in
the outbox.
"""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path
from typing import Any

import pytest

import errlink
from errlink import AsyncClient
from errlink._capture.trace import (
    BAGGAGE_MAX_BYTES,
    BAGGAGE_MAX_MEMBERS,
    IncomingTrace,
    PropagationContext,
    continue_from,
    parse_baggage,
)
from tests._support import free_port, wait_until_async
from tests._support.envelope_server import ScriptedServer
from tests._support.transports import MemoryTransport

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN_ID = "00f067aa0ba902b7"
DSN = "https://public-key@errlink.invalid/7"
HEAD_BAGGAGE = (
    f"sentry-trace_id={TRACE_ID},sentry-public_key=head-key,sentry-release=front%401.0,"
    "sentry-environment=prod,sentry-sample_rate=0.25"
)
HEAD_DSC = {
    "trace_id": TRACE_ID,
    "public_key": "head-key",
    "release": "front@1.0",
    "environment": "prod",
    "sample_rate": "0.25",
}


def continued(headers: Any) -> PropagationContext:
    with errlink.continue_trace(headers) as context:
        assert errlink.current_trace() is context
        return context


def assert_new_trace(context: PropagationContext) -> None:
    assert context.trace_id != TRACE_ID
    assert context.parent_span_id is None
    assert context.dsc is None
    assert re.fullmatch("[0-9a-f]{32}", context.trace_id)
    assert re.fullmatch("[0-9a-f]{16}", context.span_id)


# -- continuing -------------------------------------------------------------------------------


def test_sentry_trace_and_baggage_are_continued() -> None:
    context = continued(
        {"Sentry-Trace": f"{TRACE_ID}-{SPAN_ID}-1", "Baggage": f"{HEAD_BAGGAGE},vendor=a%20b"}
    )
    assert context.trace_id == TRACE_ID
    assert context.parent_span_id == SPAN_ID
    assert context.span_id not in (SPAN_ID, "0" * 16)
    assert context.parent_sampled is True
    assert context.trace_context() == {
        "trace_id": TRACE_ID,
        "span_id": context.span_id,
        "parent_span_id": SPAN_ID,
    }


def test_headers_passed_on_keep_the_trace_the_decision_and_the_frozen_baggage() -> None:
    incoming = {"sentry-trace": f"{TRACE_ID}-{SPAN_ID}-0", "baggage": f"{HEAD_BAGGAGE},vendor=x"}
    with errlink.continue_trace(incoming) as context:
        headers = errlink.trace_headers()
    assert headers["sentry-trace"] == f"{TRACE_ID}-{context.span_id}-0"
    assert headers["traceparent"] == f"00-{TRACE_ID}-{context.span_id}-00"
    dsc, third_party = parse_baggage(headers["baggage"])
    assert dsc == HEAD_DSC  # the head's, unchanged: this service must not rewrite it
    assert third_party == "vendor=x"


def test_traceparent_is_continued_when_there_is_no_sentry_trace() -> None:
    context = continued({"traceparent": f"00-{TRACE_ID}-{SPAN_ID}-01"})
    assert (context.trace_id, context.parent_span_id, context.parent_sampled) == (
        TRACE_ID,
        SPAN_ID,
        True,
    )
    unsampled = continued({"TRACEPARENT": f"00-{TRACE_ID}-{SPAN_ID}-00"})
    assert unsampled.parent_sampled is False
    # A later version may append fields: the ones we know are read.
    assert continued({"traceparent": f"01-{TRACE_ID}-{SPAN_ID}-01-more"}).trace_id == TRACE_ID


def test_sentry_trace_wins_over_traceparent() -> None:
    other_trace, other_span = "a" * 32, "b" * 16
    context = continued(
        {
            "sentry-trace": f"{TRACE_ID}-{SPAN_ID}",
            "traceparent": f"00-{other_trace}-{other_span}-01",
        }
    )
    assert (context.trace_id, context.parent_span_id, context.parent_sampled) == (
        TRACE_ID,
        SPAN_ID,
        None,
    )


def test_a_malformed_sentry_trace_falls_back_to_traceparent() -> None:
    context = continued({"sentry-trace": "garbage", "traceparent": f"00-{TRACE_ID}-{SPAN_ID}-01"})
    assert context.trace_id == TRACE_ID


def test_bytes_headers_are_read_as_text() -> None:
    context = continued(
        {"sentry-trace": f"{TRACE_ID}-{SPAN_ID}".encode(), "baggage": HEAD_BAGGAGE.encode()}
    )
    assert (context.trace_id, context.parent_span_id, context.dsc) == (TRACE_ID, SPAN_ID, HEAD_DSC)


class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text for you")


MALFORMED = [
    "",
    " ",
    f"{TRACE_ID}",  # no span id
    f"{TRACE_ID[:-1]}-{SPAN_ID}",  # trace id too short
    f"{TRACE_ID}0-{SPAN_ID}",  # too long
    f"{TRACE_ID}-{SPAN_ID[:-1]}",
    f"{TRACE_ID}-{SPAN_ID}0",
    f"{TRACE_ID.upper()}-{SPAN_ID}",  # upper-case hex
    f"{TRACE_ID}-{SPAN_ID.upper()}",
    f"{'0' * 32}-{SPAN_ID}",  # all-zero ids are invalid
    f"{TRACE_ID}-{'0' * 16}",
    f"{TRACE_ID}-{SPAN_ID}-2",  # sampled flag is 0 or 1
    f"{TRACE_ID}-{SPAN_ID}-1-extra",
    f"{TRACE_ID}_{SPAN_ID}",
    f"g{TRACE_ID[1:]}-{SPAN_ID}",
    f"{TRACE_ID}-{SPAN_ID}" * 20_000,  # huge
    "\x00" * 100,
    "é" * 49,
    12345,
    3.5,
    ["a", "b"],
    {"trace": TRACE_ID},
    object(),
    _Unprintable(),
    b"\xff\xfe" * 10,
]

MALFORMED_TRACEPARENT = [
    f"ff-{TRACE_ID}-{SPAN_ID}-01",  # version ff is forbidden
    f"00-{TRACE_ID}-{SPAN_ID}",  # no flags
    f"00-{TRACE_ID.upper()}-{SPAN_ID}-01",
    f"00-{'0' * 32}-{SPAN_ID}-01",
    f"00-{TRACE_ID}-{'0' * 16}-01",
    f"0-{TRACE_ID}-{SPAN_ID}-01",
    f"00-{TRACE_ID}-{SPAN_ID}-1",
    f"00-{TRACE_ID[:-2]}-{SPAN_ID}-01",
    f"00-{TRACE_ID}-{SPAN_ID}-zz",
    "00-" + "a" * 100_000,
    f"{TRACE_ID}-{SPAN_ID}",  # a sentry-trace in the wrong header
    None,
    7,
]


@pytest.mark.parametrize("value", MALFORMED, ids=lambda v: repr(v)[:40])
def test_a_malformed_sentry_trace_never_raises_and_starts_a_new_trace(value: Any) -> None:
    assert_new_trace(continued({"sentry-trace": value, "baggage": HEAD_BAGGAGE}))
    assert_new_trace(continue_from(value, HEAD_BAGGAGE, None))


@pytest.mark.parametrize("value", MALFORMED_TRACEPARENT, ids=lambda v: repr(v)[:40])
def test_a_malformed_traceparent_never_raises_and_starts_a_new_trace(value: Any) -> None:
    assert_new_trace(continued({"traceparent": value}))


@pytest.mark.parametrize(
    "headers",
    [None, {}, [("sentry-trace", f"{TRACE_ID}-{SPAN_ID}")], "sentry-trace", 42, {1: 2}],
    ids=repr,
)
def test_continue_trace_takes_anything_as_headers(headers: Any) -> None:
    assert_new_trace(continued(headers))


def test_a_lookup_that_fails_gives_a_new_trace() -> None:
    def broken(name: str) -> str:
        raise KeyError(name)

    assert_new_trace(IncomingTrace(broken).resolve())


@pytest.mark.parametrize(
    "baggage",
    [
        12,
        "=,=,,;;",
        "sentry-trace_id",  # no value
        "sentry-%zz=1",
        b"\xff\xfe",
        "," * 1000,
    ],
    ids=repr,
)
def test_malformed_baggage_never_raises_and_the_trace_is_still_continued(baggage: Any) -> None:
    context = continued({"sentry-trace": f"{TRACE_ID}-{SPAN_ID}", "baggage": baggage})
    assert context.trace_id == TRACE_ID
    errlink.trace_headers()  # and it can be passed on


def _oversized_by_bytes() -> str:
    pad = "x" * (BAGGAGE_MAX_BYTES - len(HEAD_BAGGAGE))
    return f"{HEAD_BAGGAGE},vendor={pad}"


def _oversized_by_members() -> str:
    return HEAD_BAGGAGE + "".join(f",k{n}=v" for n in range(BAGGAGE_MAX_MEMBERS))


@pytest.mark.parametrize("baggage", [_oversized_by_bytes(), _oversized_by_members()])
def test_oversized_baggage_is_ignored_whole(baggage: str) -> None:
    assert len(baggage) > BAGGAGE_MAX_BYTES or baggage.count(",") + 1 > BAGGAGE_MAX_MEMBERS
    with errlink.continue_trace({"sentry-trace": f"{TRACE_ID}-{SPAN_ID}", "baggage": baggage}):
        context = errlink.current_trace()
        sent = errlink.trace_headers()["baggage"]
    assert (context.trace_id, context.dsc, context.third_party) == (TRACE_ID, None, "")
    dsc, third_party = parse_baggage(sent)
    assert dsc == {"trace_id": TRACE_ID}  # this service as the head (no client: no key)
    assert third_party == ""


def test_baggage_of_another_trace_is_not_taken_as_this_ones() -> None:
    baggage = HEAD_BAGGAGE.replace(TRACE_ID, "c" * 32)
    context = continued({"sentry-trace": f"{TRACE_ID}-{SPAN_ID}", "baggage": baggage})
    assert (context.trace_id, context.dsc) == (TRACE_ID, None)


def test_third_party_baggage_is_passed_through_unchanged() -> None:
    theirs = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7;prop=1"
    context = continued(
        {"sentry-trace": f"{TRACE_ID}-{SPAN_ID}", "baggage": f"{theirs},{HEAD_BAGGAGE}"}
    )
    assert context.third_party == theirs
    with errlink.continue_trace({"sentry-trace": f"{TRACE_ID}-{SPAN_ID}", "baggage": theirs}):
        sent = errlink.trace_headers()["baggage"]
    assert sent.endswith("," + theirs)


# -- scopes and processes ------------------------------------------------------------------------


def test_outside_requests_the_process_has_one_trace() -> None:
    first = errlink.current_trace()
    with errlink.new_scope():
        assert errlink.current_trace() is first

    async def in_a_task() -> PropagationContext:
        return errlink.current_trace()

    assert asyncio.run(in_a_task()) is first
    assert first.parent_span_id is None
    assert errlink.trace_headers()["sentry-trace"] == f"{first.trace_id}-{first.span_id}"


def test_new_scope_with_new_trace_starts_one_for_its_block() -> None:
    outer = errlink.current_trace()
    with errlink.new_scope(new_trace=True):
        inner = errlink.current_trace()
        with errlink.new_scope():
            assert errlink.current_trace() is inner  # nested scopes stay in it
        with errlink.new_scope(new_trace=True):
            assert errlink.current_trace().trace_id not in (inner.trace_id, outer.trace_id)
    assert inner.trace_id != outer.trace_id
    assert inner.parent_span_id is None
    assert errlink.current_trace() is outer


def test_concurrent_tasks_keep_their_own_traces() -> None:
    async def handle(trace_id: str, ready: asyncio.Event, go: asyncio.Event) -> str:
        with errlink.continue_trace({"sentry-trace": f"{trace_id}-{SPAN_ID}"}):
            ready.set()
            await go.wait()
            return errlink.current_trace().trace_id

    async def main() -> list[str]:
        go = asyncio.Event()
        readies = [asyncio.Event(), asyncio.Event()]
        tasks = [
            asyncio.create_task(handle(c * 32, ready, go))
            for c, ready in zip("ab", readies, strict=True)
        ]
        for ready in readies:
            await ready.wait()
        go.set()
        return list(await asyncio.gather(*tasks))

    assert asyncio.run(main()) == ["a" * 32, "b" * 32]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_gets_a_new_trace() -> None:
    parent = errlink.current_trace()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its trace and leave without running the parent's exit code
        try:
            context = errlink.current_trace()
            os.write(write_end, f"{context.trace_id} {context.span_id}".encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        child_trace, child_span = pipe.read().decode().split()
    os.waitpid(pid, 0)
    assert child_trace != parent.trace_id
    assert child_span != parent.span_id
    assert errlink.current_trace() is parent


# -- what a server receives --------------------------------------------------------------------


async def test_events_carry_the_trace_and_envelopes_its_sampling_context() -> None:
    transport = MemoryTransport()
    process = errlink.current_trace()
    incoming = {"sentry-trace": f"{TRACE_ID}-{SPAN_ID}-1", "baggage": HEAD_BAGGAGE}
    async with AsyncClient(
        DSN, transport=transport, release="back@2.0", environment="staging"
    ) as client:
        await client.capture_message("outside any request")
        with errlink.continue_trace(incoming) as continued_here:
            await client.capture_message("in a continued trace")
        with errlink.new_scope(new_trace=True):
            own = errlink.current_trace()
            await client.capture_message("in a trace of its own")
        assert await client.flush(5)

    by_message = {
        item.json()["logentry"]["formatted"]: (envelope.headers, item.json())
        for envelope in transport.envelopes
        for item in envelope.items
        if item.type == "event"
    }
    headers, event = by_message["outside any request"]
    assert event["contexts"]["trace"] == {"trace_id": process.trace_id, "span_id": process.span_id}
    assert headers["trace"] == {
        "trace_id": process.trace_id,
        "public_key": "public-key",
        "release": "back@2.0",
        "environment": "staging",
    }

    headers, event = by_message["in a continued trace"]
    assert event["contexts"]["trace"] == {
        "trace_id": TRACE_ID,
        "span_id": continued_here.span_id,
        "parent_span_id": SPAN_ID,
    }
    assert headers["trace"] == HEAD_DSC  # frozen by the head of the trace

    headers, event = by_message["in a trace of its own"]
    assert event["contexts"]["trace"]["trace_id"] == own.trace_id != process.trace_id
    assert headers["trace"]["trace_id"] == own.trace_id
    assert "_dsc" not in str(event)  # nothing of the hand-over is left in the payload


async def test_a_trace_the_caller_sets_in_contexts_is_kept() -> None:
    transport = MemoryTransport()
    given = {"trace_id": "d" * 32, "span_id": "e" * 16}
    async with AsyncClient(DSN, transport=transport) as client:
        await client.capture_message("mine", contexts={"trace": given})
        assert await client.flush(5)
    [event] = transport.events()
    assert event["contexts"]["trace"] == given


async def test_the_trace_header_survives_the_outbox(tmp_path: Path) -> None:
    port = free_port()
    dsn = f"http://public-key@127.0.0.1:{port}/3"
    outbox = tmp_path / "outbox.sqlite3"
    incoming = {"sentry-trace": f"{TRACE_ID}-{SPAN_ID}", "baggage": HEAD_BAGGAGE}
    first = AsyncClient(dsn, outbox=outbox, http_timeout=1.0, outbox_drain_rate=1000.0)
    with errlink.continue_trace(incoming) as context:
        event_id = await first.capture_message("while the server was down")
    assert event_id is not None
    assert await first.aclose(10)
    assert first.stats.in_outbox == 1  # nothing listened: it was spilled

    server = await ScriptedServer().start(port)
    try:
        async with AsyncClient(
            dsn, outbox=outbox, http_timeout=1.0, outbox_drain_rate=1000.0
        ) as second:
            await wait_until_async(lambda: server.events(), timeout=30)
            assert second.stats.drained == 1
    finally:
        await server.stop()
    [received] = [r for r in server.delivered if r.items("event")]
    [event] = received.items("event")
    assert event["event_id"] == event_id
    assert event["contexts"]["trace"] == {
        "trace_id": TRACE_ID,
        "span_id": context.span_id,
        "parent_span_id": SPAN_ID,
    }
    assert received.envelope.headers["trace"] == HEAD_DSC
