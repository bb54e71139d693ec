"""Events built for hard cases are complete, bounded, scrubbed and valid for Sentry's normalizer."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest

import errlink
from errlink import AsyncClient
from errlink._capture.scope import isolated_scope
from tests._relay import normalize_as_relay
from tests._support.transports import MemoryTransport


@pytest.fixture(autouse=True)
def _fresh_scope() -> Iterator[None]:
    with isolated_scope():
        yield


async def _capture(exc: BaseException, **options: Any) -> dict[str, Any]:
    transport = MemoryTransport()
    async with AsyncClient(transport=transport, **options) as client:
        assert await client.capture_exception(exc) is not None
        assert await client.flush(10)
    [event] = transport.events()
    return event


def _raise(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as caught:
        return caught


class Hostile(Exception):
    def __str__(self) -> str:
        raise RuntimeError("str exploded")

    def __repr__(self) -> str:
        raise RuntimeError("repr exploded")


class HostileObject:
    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


class SelfRecursiveRepr:
    def __repr__(self) -> str:
        return repr(self)


def _locals_of_every_kind() -> BaseException:
    cyclic: dict[str, Any] = {"name": "loop"}
    cyclic["self"] = cyclic
    cyclic_list: list[Any] = [1]
    cyclic_list.append(cyclic_list)
    huge = "x" * 10_000_000  # noqa: F841 - read from the frame
    raw = b"\x00\xff\xfebinary" * 1000  # noqa: F841 - read from the frame
    none_keys = {None: 1, 2: "two", (3, 4): "tuple"}  # noqa: F841 - read from the frame
    hostile = HostileObject()  # noqa: F841 - read from the frame
    recursive = SelfRecursiveRepr()  # noqa: F841 - read from the frame
    surrogates = "bad \udc80 surrogate"  # noqa: F841 - read from the frame
    password = "hunter2"  # noqa: F841 - read from the frame
    try:
        raise ValueError("with locals")
    except ValueError as exc:
        return exc  # its traceback keeps this frame, and so these locals, alive


def _assert_common(event: dict[str, Any]) -> None:
    assert len(event["event_id"]) == 32
    assert event["platform"] == "python"
    assert event["level"] == "error"
    assert event["sdk"]["name"] == "errlink"
    assert event["contexts"]["runtime"]["name"] == "CPython"
    assert "os" in event["contexts"]
    normalize_as_relay(event)


async def test_plain_exception() -> None:
    event = await _capture(_raise(ZeroDivisionError("division by zero")))
    _assert_common(event)
    [value] = event["exception"]["values"]
    assert (value["type"], value["value"], value["module"]) == (
        "ZeroDivisionError",
        "division by zero",
        "builtins",
    )
    assert (value["mechanism"]["type"], value["mechanism"]["handled"]) == ("generic", True)
    frame = value["stacktrace"]["frames"][-1]
    assert frame["function"] == "_raise"
    assert frame["context_line"].strip() == "raise exc"
    assert frame["module"] == __name__
    assert frame["abs_path"] == __file__
    assert not frame["filename"].startswith("/")  # relative to its sys.path entry
    assert __file__.endswith(frame["filename"])
    assert frame["in_app"] is True


async def test_explicitly_and_implicitly_chained_exceptions() -> None:
    def explicit() -> None:
        try:
            raise KeyError("root cause")
        except KeyError as exc:
            raise RuntimeError("wrapper") from exc

    def implicit() -> None:
        try:
            raise KeyError("first")
        except KeyError:
            raise RuntimeError("during")  # noqa: B904 - implicit chaining is the point

    for fn, source, expected in (
        (explicit, "__cause__", ["'root cause'", "wrapper"]),
        (implicit, "__context__", ["'first'", "during"]),
    ):
        try:
            fn()
        except RuntimeError as exc:
            event = await _capture(exc)
        _assert_common(event)
        values = event["exception"]["values"]
        assert [v["value"] for v in values] == expected  # oldest first
        assert [v["type"] for v in values] == ["KeyError", "RuntimeError"]
        assert values[0]["mechanism"]["source"] == source
        assert values[1]["mechanism"]["handled"] is True


@pytest.mark.skipif(sys.version_info < (3, 11), reason="ExceptionGroup is built in from 3.11")
async def test_exception_group_with_nested_groups() -> None:
    inner = ExceptionGroup("inner", [KeyError("k"), ValueError("v")])  # noqa: F821
    outer = _raise(ExceptionGroup("outer", [TypeError("t"), inner]))  # noqa: F821
    event = await _capture(outer)
    _assert_common(event)
    values = event["exception"]["values"]
    by_type = {v["type"]: v for v in values}
    assert set(by_type) == {"ExceptionGroup", "TypeError", "KeyError", "ValueError"}
    groups = [v for v in values if v["type"] == "ExceptionGroup"]
    assert len(groups) == 2
    assert all(g["mechanism"]["is_exception_group"] for g in groups)
    ids = {v["mechanism"]["exception_id"]: v for v in values}
    assert ids[by_type["KeyError"]["mechanism"]["parent_id"]]["value"].startswith("inner")
    assert ids[by_type["TypeError"]["mechanism"]["parent_id"]]["value"].startswith("outer")


async def test_recursion_error_keeps_first_and_last_frames() -> None:
    def recurse(n: int) -> int:
        return recurse(n + 1) + 1

    try:
        recurse(0)
    except RecursionError as exc:
        event = await _capture(exc)
    _assert_common(event)
    [value] = event["exception"]["values"]
    frames = value["stacktrace"]["frames"]
    assert len(frames) == 100
    assert frames[-1]["function"].endswith("recurse")


async def test_hostile_str_and_repr_still_yield_an_event() -> None:
    event = await _capture(_raise(Hostile()))
    _assert_common(event)
    [value] = event["exception"]["values"]
    assert value["type"] == "Hostile"
    assert isinstance(value["value"], str)


async def test_locals_of_every_kind_are_bounded_and_scrubbed() -> None:
    event = await _capture(_locals_of_every_kind(), max_value_length=512)
    relay = normalize_as_relay(event)
    assert relay["exception"]["values"][0]["type"] == "ValueError"
    frame = event["exception"]["values"][0]["stacktrace"]["frames"][-1]
    local_vars = frame["vars"]
    assert local_vars["password"] == "[Filtered]"
    assert len(local_vars["huge"]) <= 512
    assert local_vars["cyclic"]["name"] == "loop"
    assert isinstance(local_vars["cyclic"]["self"], str)  # the cycle is cut, not followed
    assert isinstance(local_vars["raw"], str)
    assert len(local_vars["raw"]) <= 512
    assert set(local_vars["none_keys"]) == {"None", "2", "(3, 4)"}
    assert isinstance(local_vars["hostile"], str)
    assert isinstance(local_vars["recursive"], str)
    assert "\udc80" not in local_vars["surrogates"]
    # Trimming is annotated the protocol's way, so a reader knows what was cut.
    meta = event["_meta"]["exception"]["values"]
    frame_index = str(len(event["exception"]["values"][0]["stacktrace"]["frames"]) - 1)
    huge_meta = meta["0"]["stacktrace"]["frames"][frame_index]["vars"]["huge"][""]
    assert huge_meta["len"] == 10_000_000


async def test_include_locals_off_sends_no_vars() -> None:
    event = await _capture(_locals_of_every_kind(), include_locals=False)
    frame = event["exception"]["values"][0]["stacktrace"]["frames"][-1]
    assert "vars" not in frame
    _assert_common(event)


async def test_scope_and_call_site_data_are_merged_and_scrubbed() -> None:
    errlink.set_tag("region", "eu")
    errlink.set_user({"id": "42", "email": "a@example.com", "ip_address": "10.0.0.1"})
    errlink.set_context("order", {"id": 7, "card": "4111 1111 1111 1111"})
    errlink.set_extra("api_key", "sk_live_123")
    errlink.add_breadcrumb("paid", category="shop", data={"token": "abc", "amount": 5})
    errlink.set_transaction("/checkout")
    errlink.set_fingerprint(["checkout", "{{ default }}"])
    event = await _capture(
        _raise(RuntimeError("x")), tags={"service": "api"}, environment="prod", release="9.9"
    )
    _assert_common(event)
    assert event["tags"] == {"service": "api", "region": "eu"}
    assert event["user"] == {"id": "42"}  # e-mail and IP only with send_default_pii
    assert event["contexts"]["order"] == {"id": 7, "card": "[Filtered]"}
    assert event["extra"] == {"api_key": "[Filtered]"}
    [crumb] = event["breadcrumbs"]["values"]
    assert crumb["data"] == {"token": "[Filtered]", "amount": 5}
    assert event["transaction"] == "/checkout"
    assert event["fingerprint"] == ["checkout", "{{ default }}"]
    assert (event["environment"], event["release"]) == ("prod", "9.9")


async def test_user_pii_is_kept_with_send_default_pii() -> None:
    errlink.set_user({"id": "42", "email": "a@example.com", "ip_address": "10.0.0.1"})
    event = await _capture(_raise(RuntimeError("x")), send_default_pii=True)
    assert event["user"] == {"id": "42", "email": "a@example.com", "ip_address": "10.0.0.1"}


async def test_message_with_attached_stacktrace() -> None:
    transport = MemoryTransport()
    async with AsyncClient(transport=transport, attach_stacktrace=True) as client:
        await client.capture_message("look here", level="warning")
        await client.flush(5)
    [event] = transport.events()
    normalize_as_relay(event)
    frames = event["threads"]["values"][0]["stacktrace"]["frames"]
    assert frames[-1]["function"] == "test_message_with_attached_stacktrace"
    assert not any(f["module"].startswith("errlink") for f in frames)


async def test_oversized_event_is_trimmed_under_the_cap_keeping_the_exception() -> None:
    def deep(n: int) -> None:
        blob = ["y" * 1000] * 50  # noqa: F841
        if n == 0:
            raise OverflowError("too big")
        deep(n - 1)

    for n in range(300):
        errlink.add_breadcrumb("z" * 900, data={"n": n})
    try:
        deep(30)
    except OverflowError as exc:
        transport = MemoryTransport()
        async with AsyncClient(transport=transport, max_event_bytes=200_000) as client:
            await client.capture_exception(exc)
            await client.flush(10)
    [envelope] = transport.envelopes
    [item] = [i for i in envelope.items if i.type == "event"]
    assert len(item.payload) <= 200_000
    event = item.json()
    value = event["exception"]["values"][0]
    assert (value["type"], value["value"]) == ("OverflowError", "too big")
    assert all("lineno" in f and "function" in f for f in value["stacktrace"]["frames"])
    assert "_meta" in event
    normalize_as_relay(event)


async def test_hand_made_event_keeps_its_protocol_structure() -> None:
    event_in = {
        "level": "warning",
        "message": "custom event",
        "exception": {
            "values": [
                {
                    "type": "GatewayError",
                    "value": "upstream 502",
                    "stacktrace": {
                        "frames": [
                            {
                                "function": "call_gateway",
                                "filename": "shop/pay.py",
                                "lineno": 12,
                                "vars": {"attempt": 3, "token": "abc"},
                            }
                        ]
                    },
                }
            ]
        },
        "extra": {"password": "x", "order": 7},
    }
    transport = MemoryTransport()
    async with AsyncClient(transport=transport) as client:
        assert await client.capture_event(event_in) is not None
        await client.flush(5)
    [event] = transport.events()
    normalize_as_relay(event)
    frame = event["exception"]["values"][0]["stacktrace"]["frames"][0]
    assert frame["vars"] == {"attempt": 3, "token": "[Filtered]"}
    assert frame["lineno"] == 12
    assert event["level"] == "warning"
    assert event["logentry"] == {"formatted": "custom event"}
    assert "message" not in event
    assert event["extra"] == {"password": "[Filtered]", "order": 7}
