"""Grouping events into issues: real errors through a real client, plus the payload shapes
other SDKs send, and how the event page links the exceptions of their chains."""

from __future__ import annotations

import html
import importlib.util
import logging
import re
import textwrap
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import errlink
from errlink import AsyncClient
from errlink._capture.scope import isolated_scope
from errlink.collector import Collector, CollectorThread
from errlink.collector._event_view import event_sections
from errlink.collector._grouping import group_key
from errlink.collector._records import event_record

# A module the test rewrites: `place_order` keeps its name while the line that raises moves.
_SHOP_SOURCE = '''
def place_order(order_id):
    """Edited often: lines come and go above the raise."""
{inside}
    raise ValueError(f"order {{order_id}} is invalid")


def cancel_order(order_id):
    raise ValueError(f"order {{order_id}} is invalid")
'''


def _shop_version(tmp_path: Path, version: int) -> ModuleType:
    """`shop_app` as edited for the `version`-th time: `version` more lines above the raise."""
    source = _SHOP_SOURCE.format(
        inside="\n".join(f"    step_{n} = {n}  # added in edit {n}" for n in range(version + 1)),
    )
    path = tmp_path / f"edit{version}" / "shop_app.py"
    path.parent.mkdir()
    path.write_text(textwrap.dedent(source))
    spec = importlib.util.spec_from_file_location("shop_app", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _raising_frame(event: dict[str, Any]) -> dict[str, Any]:
    frame: dict[str, Any] = event["exception"]["values"][-1]["stacktrace"]["frames"][-1]
    return frame


async def test_same_function_100_times_with_moving_lines_is_one_group(
    collector: Collector, tmp_path: Path
) -> None:
    async with AsyncClient(collector.dsn, in_app_include=["shop_app"]) as client:
        for version in range(100):
            shop = _shop_version(tmp_path, version)
            try:
                shop.place_order(1000 + version)
            except ValueError:
                await client.capture_exception()
        for order_id in range(5):
            shop = _shop_version(tmp_path, 100 + order_id)
            try:
                shop.cancel_order(order_id)
            except ValueError:
                await client.capture_exception()
        assert await client.flush(timeout=30)

    events = collector.events()
    placed = [e for e in events if _raising_frame(e)["function"] == "place_order"]
    assert len(placed) == 100
    # The premise: every event really has its own line number and its own value.
    assert len({_raising_frame(e)["lineno"] for e in placed}) == 100
    assert len({e["exception"]["values"][-1]["value"] for e in placed}) == 100

    groups = sorted(collector.groups(), key=lambda group: group.count)
    assert [group.count for group in groups] == [5, 100]
    cancelled, placed_group = groups
    assert placed_group.title == "ValueError: order 1099 is invalid"  # the latest event's
    assert placed_group.culprit == "shop_app in place_order"
    assert cancelled.culprit == "shop_app in cancel_order"


def test_logged_errors_group_by_their_template(collector_thread: CollectorThread) -> None:
    log = logging.getLogger("tests.grouping.orders")
    with isolated_scope():
        errlink.init(collector_thread.dsn)
        try:
            for n in range(20):
                log.error("order %d failed: %s", n, "card declined" if n % 2 else "timeout")
            log.error("inventory sync failed")
            assert errlink.flush(30)
        finally:
            errlink.close(timeout=5)
    counts = sorted((group.count, group.title) for group in collector_thread.groups())
    assert counts == [(1, "inventory sync failed"), (20, "order 19 failed: card declined")]


def _event(**fields: Any) -> dict[str, Any]:
    return {"event_id": uuid.uuid4().hex, "level": "error", **fields}


def _exception(kind: str, value: str, *frames: tuple[str, str, int, bool]) -> dict[str, Any]:
    return {
        "values": [
            {
                "type": kind,
                "value": value,
                "stacktrace": {
                    "frames": [
                        {"module": module, "function": function, "lineno": line, "in_app": in_app}
                        for module, function, line, in_app in frames
                    ]
                },
            }
        ]
    }


def test_only_in_app_frames_count_when_there_are_any() -> None:
    one = _exception(
        "KeyError", "'a'", ("asyncio.events", "_run", 80, False), ("app.views", "show", 10, True)
    )
    other_library_path = _exception(
        "KeyError",
        "'b'",
        ("uvloop", "run", 3, False),
        ("starlette.routing", "handle", 7, False),
        ("app.views", "show", 99, True),
    )
    other_view = _exception("KeyError", "'a'", ("app.views", "edit", 10, True))
    assert (
        group_key(_event(exception=one)).hash
        == group_key(_event(exception=other_library_path)).hash
    )
    assert group_key(_event(exception=one)).hash != group_key(_event(exception=other_view)).hash


def test_without_in_app_frames_all_frames_count_and_recursion_depth_does_not() -> None:
    shallow = _exception(
        "RecursionError", "x", ("lib", "walk", 1, False), ("lib", "leaf", 2, False)
    )
    deep = _exception(
        "RecursionError",
        "y",
        ("lib", "walk", 1, False),
        ("lib", "walk", 1, False),
        ("lib", "walk", 1, False),
        ("lib", "leaf", 2, False),
    )
    elsewhere = _exception("RecursionError", "x", ("lib", "walk", 1, False))
    assert group_key(_event(exception=shallow)).hash == group_key(_event(exception=deep)).hash
    assert group_key(_event(exception=shallow)).hash != group_key(_event(exception=elsewhere)).hash


def test_exceptions_without_a_stack_group_by_type_and_value() -> None:
    def key(kind: str, value: str) -> str:
        return group_key(_event(exception={"values": [{"type": kind, "value": value}]})).hash

    assert key("TimeoutError", "db") == key("TimeoutError", "db")
    assert key("TimeoutError", "db") != key("TimeoutError", "cache")
    assert key("TimeoutError", "db") != key("OSError", "db")


def test_every_link_of_a_chain_counts() -> None:
    def chained(cause: str) -> dict[str, Any]:
        values = [
            _exception(cause, "x", ("app.db", "query", 1, True))["values"][0],
            _exception("CheckoutError", "y", ("app.shop", "checkout", 5, True))["values"][0],
        ]
        return _event(exception={"values": values})

    assert group_key(chained("ConnectionError")).hash == group_key(chained("ConnectionError")).hash
    assert group_key(chained("ConnectionError")).hash != group_key(chained("TimeoutError")).hash
    assert group_key(chained("TimeoutError")).title == "CheckoutError: y"


def test_message_shapes_of_other_sdks_group_by_template() -> None:
    logging_style = _event(
        logentry={"formatted": "user 7 not found", "message": "user %s not found", "params": [7]}
    )
    template_only = _event(logentry={"message": "user %s not found", "params": [8]})
    old_interface = _event(message={"message": "user %s not found", "params": [9]})
    assert group_key(logging_style).hash == group_key(template_only).hash
    assert group_key(logging_style).hash == group_key(old_interface).hash
    assert group_key(logging_style).title == "user 7 not found"

    # Without a template, the formatted text is all there is to go by.
    plain = group_key(_event(message="user 7 not found"))
    assert plain == group_key(_event(logentry={"formatted": "user 7 not found"}))
    assert plain.hash != group_key(_event(message="user 8 not found")).hash
    assert plain.hash != group_key(logging_style).hash


def test_fingerprint_overrides_and_default_variable_extends() -> None:
    error = _exception("ValueError", "bad", ("app.x", "f", 1, True))
    other_error = _exception("KeyError", "k", ("app.y", "g", 1, True))

    def key(exception: dict[str, Any], fingerprint: Any = None) -> str:
        fields = {"fingerprint": fingerprint} if fingerprint is not None else {}
        return group_key(_event(exception=exception, **fields)).hash

    assert key(error, ["payments"]) == key(other_error, ["payments"])
    assert key(error, ["payments"]) != key(error)
    assert key(error, ["{{ default }}"]) == key(error)
    assert key(error, ["{{default}}"]) == key(error)
    assert key(error, ["{{ default }}", "tenant-a"]) == key(error, ["{{ DEFAULT }}", "tenant-a"])
    assert key(error, ["{{ default }}", "tenant-a"]) != key(error, ["{{ default }}", "tenant-b"])
    assert key(error, ["{{ default }}", "tenant-a"]) != key(error)
    assert key(error, ["{{ default }}", "t"]) != key(other_error, ["{{ default }}", "t"])
    assert key(error, []) == key(error)


def test_odd_payloads_still_get_a_group_and_a_title() -> None:
    for payload in (
        _event(),
        _event(exception="not a dict"),
        _event(exception={"values": [None, 3]}),
        _event(exception={"values": [{"stacktrace": {"frames": "nope"}}]}),
        _event(fingerprint=[{"nested": ["x"]}, 3, None]),
        _event(logentry={"formatted": "\ud800 lone surrogate"}),
    ):
        key = group_key(payload)
        assert len(key.hash) == 32
        assert key.title
        key.title.encode("utf-8")  # storable: no lone surrogates left


# -- messages sent with their stack ------------------------------------------------------------


def _javascript_message(text: str, function: str = "warn", **exception: Any) -> dict[str, Any]:
    """What @sentry/node sends for `captureMessage(text)` with `attachStacktrace: true`."""
    frames = [
        {"filename": "node:internal/main", "module": "main", "function": "run", "in_app": False},
        {"filename": "/srv/app/jobs.js", "module": "jobs", "function": function, "in_app": True},
    ]
    synthetic = {
        "value": text,
        "stacktrace": {"frames": frames},
        "mechanism": {"type": "generic", "handled": True, "synthetic": True},
        **exception,
    }
    return _event(message=text, level="warning", exception={"values": [synthetic]})


def test_a_message_sent_with_its_stack_is_a_message() -> None:
    disk = group_key(_javascript_message("disk almost full"))
    assert disk.title == "disk almost full"
    assert disk.culprit == "jobs in warn"  # where it was sent from
    # Grouped as the same message sent without a stack, apart from other messages of the function.
    assert disk.hash == group_key(_event(message="disk almost full")).hash
    assert disk.hash != group_key(_javascript_message("queue is backing up")).hash
    assert disk.hash == group_key(_javascript_message("disk almost full", "other")).hash

    # Variants: a made-up type, or an older SDK's exception without a type or a mechanism.
    typed = _javascript_message("disk almost full", type="Error")
    untyped = _javascript_message("disk almost full", mechanism=None)
    assert group_key(typed) == disk
    assert group_key(untyped) == disk

    # Its page shows the message and the stack it was sent from, not an exception.
    page = str(event_sections(_javascript_message("disk almost full")))
    assert re.findall(r'<h2 id="(\w+)">', page)[:2] == ["message", "stacktrace"]
    assert 'id="exception"' not in page
    assert "<code>warn</code>" in page


def test_a_message_sent_with_its_stack_is_stored_as_a_message() -> None:
    # What event lists and the console show comes from the stored record, not from the group.
    typed = event_record(
        _javascript_message("disk almost full", type="Error"),
        project_id="1",
        fallback_event_id=None,
        where="event",
    )
    assert (typed.exception_type, typed.message) == (None, "disk almost full")


def test_an_exception_sent_with_a_message_stays_an_exception() -> None:
    # errlink's and sentry-python's logging integrations send a log record's message with the
    # exception it carried; a synthetic exception without any message is one too.
    logged = _event(
        logentry={"message": "checkout failed for %s", "formatted": "checkout failed for 7"},
        exception=_exception("KeyError", "'amex'", ("app.shop", "charge", 3, True)),
    )
    assert group_key(logged).title == "KeyError: 'amex'"
    captured_string = _javascript_message("oops", type="Error")
    del captured_string["message"]  # `captureException("oops")`
    assert group_key(captured_string).title == "Error: oops"
    assert group_key(captured_string).hash != group_key(_event(message="oops")).hash
    other_value = _javascript_message("disk almost full", value="ENOSPC", mechanism=None)
    assert group_key(other_value).title == "Error: ENOSPC"


# -- how the event page links the exceptions of a chain -----------------------------------------


def _chain_notes(values: list[dict[str, Any]]) -> list[str]:
    page = str(event_sections(_event(exception={"values": values})))
    return [html.unescape(note) for note in re.findall(r'class="chain-note">(.*?)</p>', page)]


def _linked(kind: str, **mechanism: Any) -> dict[str, Any]:
    return {"type": kind, "value": kind.lower(), "mechanism": {"handled": True, **mechanism}}


def test_javascript_cause_reads_as_a_direct_cause() -> None:
    # @sentry/node for `new Error("outer", {cause: new Error("inner")})`.
    values = [
        _linked("Error", type="chained", source="cause", exception_id=1, parent_id=0),
        _linked("Error", type="generic", exception_id=0),
    ]
    assert _chain_notes(values) == [
        "The above exception was the direct cause of the following exception:"
    ]


def test_group_members_hang_from_their_group_by_id() -> None:
    # @sentry/node for `new AggregateError([new Error("a"), new Error("b")])`.
    javascript = [
        _linked("Error", type="chained", source="errors[1]", exception_id=2, parent_id=0),
        _linked("Error", type="chained", source="errors[0]", exception_id=1, parent_id=0),
        _linked("AggregateError", type="generic", is_exception_group=True, exception_id=0),
    ]
    assert _chain_notes(javascript) == [
        "The above exception is part of the exception group AggregateError (further below).",
        "The above exception is part of the following exception group:",
    ]
    # sentry-python for an ExceptionGroup whose first member was raised from a KeyError: the
    # cause's parent_id names the group, yet the cause is listed right before its exception.
    python = [
        _linked("KeyError", type="chained", source="exceptions[1]", exception_id=3, parent_id=0),
        _linked("KeyError", type="chained", source="__cause__", exception_id=2, parent_id=0),
        _linked(
            "RuntimeError", type="chained", source="exceptions[0]", exception_id=1, parent_id=0
        ),
        _linked("ExceptionGroup", type="generic", is_exception_group=True, exception_id=0),
    ]
    assert _chain_notes(python) == [
        "The above exception is part of the exception group ExceptionGroup (further below).",
        "The above exception was the direct cause of the following exception:",
        "The above exception is part of the following exception group:",
    ]


def test_a_chain_without_sources_or_ids_reads_in_order() -> None:
    # sentry-python's plain chains say neither how the exceptions are linked nor their ids.
    values = [_linked("KeyError", type="generic"), _linked("RuntimeError", type="generic")]
    assert _chain_notes(values) == ["The above exception led to the following exception:"]
    # Ids that cannot be trusted (repeated) are set aside: a chain is read in order, but a
    # member of an exception group cannot be placed.
    repeated = [
        _linked("KeyError", type="chained", source="exceptions[0]", exception_id=1, parent_id=0),
        _linked("OSError", type="chained", source="exceptions[1]", exception_id=1, parent_id=0),
        _linked("ExceptionGroup", type="generic", exception_id=0),
    ]
    assert _chain_notes(repeated) == ["Then:", "Then:"]  # which group is not known
