from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import pytest

import errlink as scope_api
from errlink import AsyncClient
from errlink._capture.binding import current_client, request_scope
from errlink._capture.core import ClientCore
from errlink._capture.scope import (
    RequestScope,
    Scope,
    current_scope,
    enter_own_scope,
    fill_own_scope,
    isolated_scope,
    new_scope,
    restore_scope,
)
from tests._support.transports import MemoryTransport


@pytest.fixture(autouse=True)
def _fresh_scope() -> object:
    with isolated_scope() as scope:
        yield scope


def test_setters_update_the_current_scope() -> None:
    scope_api.set_tag("region", "eu")
    scope_api.set_tags({"shard": 3})
    scope_api.set_user({"id": "42"})
    scope_api.set_context("order", {"id": 7})
    scope_api.set_extra("cart", [1, 2])
    scope_api.set_level("warning")
    scope_api.set_fingerprint(["a", 1])
    scope_api.set_transaction("/checkout")
    scope = current_scope()
    assert scope.tags == {"region": "eu", "shard": "3"}
    assert scope.user == {"id": "42"}
    assert scope.contexts == {"order": {"id": 7}}
    assert scope.extra == {"cart": [1, 2]}
    assert scope.level == "warning"
    assert scope.fingerprint == ("a", "1")
    assert scope.transaction == "/checkout"


def test_set_level_reads_logging_names_and_ignores_unknown_levels() -> None:
    scope_api.set_level("CRITICAL")
    assert current_scope().level == "fatal"
    scope_api.set_level("loud")  # logged once and ignored (tests/test_misuse.py)
    assert current_scope().level == "fatal"


def test_new_scope_undoes_changes_at_exit() -> None:
    scope_api.set_tag("outer", "1")
    with new_scope():
        scope_api.set_tag("inner", "2")
        scope_api.add_breadcrumb("inside")
        assert current_scope().tags == {"outer": "1", "inner": "2"}
    assert current_scope().tags == {"outer": "1"}
    assert current_scope().breadcrumbs(100) == []


def test_breadcrumbs_are_a_bounded_ring_oldest_first() -> None:
    for i in range(250):
        scope_api.add_breadcrumb(f"crumb {i}", category="test")
    crumbs = current_scope().breadcrumbs(100)
    assert [c["message"] for c in crumbs] == [f"crumb {i}" for i in range(150, 250)]
    assert crumbs[0]["category"] == "test"
    assert crumbs[0]["level"] == "info"


def test_a_trail_stays_bounded() -> None:
    for i in range(10_000):
        scope_api.add_breadcrumb(f"c{i}")
    assert len(current_scope()._breadcrumbs or ()) <= 200
    assert [c["message"] for c in current_scope().breadcrumbs(3)] == ["c9997", "c9998", "c9999"]


async def test_concurrent_tasks_never_see_each_others_scope() -> None:
    seen: dict[int, dict[str, str]] = {}

    async def request(n: int) -> None:
        scope_api.set_tag("request", str(n))
        await asyncio.sleep(0.001 * (n % 5))
        scope_api.set_tag("after_sleep", str(n))
        await asyncio.sleep(0)
        seen[n] = dict(current_scope().tags)

    await asyncio.gather(*(request(n) for n in range(100)))
    assert seen == {n: {"request": str(n), "after_sleep": str(n)} for n in range(100)}
    assert current_scope().tags == {}


async def test_tasks_add_to_their_unit_of_works_breadcrumbs_and_units_keep_theirs_apart() -> None:
    # A unit of work (here the test's scope; in an app, a request) keeps one record of what
    # happened, whichever of its tasks did it; a `new_scope()` block is a unit of its own.
    scope_api.add_breadcrumb("before")
    seen: dict[int, list[str]] = {}

    async def fetch(n: int) -> None:
        await asyncio.sleep(0.001 * (n % 3))
        scope_api.add_breadcrumb(f"fetched {n}")

    async def job(n: int) -> None:
        with new_scope():
            scope_api.add_breadcrumb(f"job {n}")
            await asyncio.sleep(0.001 * (n % 5))
            seen[n] = [c["message"] for c in current_scope().breadcrumbs(100)]

    await asyncio.gather(*(fetch(n) for n in range(3)))
    messages = [c["message"] for c in current_scope().breadcrumbs(100)]
    assert messages[0] == "before"
    assert sorted(messages[1:]) == ["fetched 0", "fetched 1", "fetched 2"]
    await asyncio.gather(*(job(n) for n in range(50)))
    assert seen == {n: [*messages, f"job {n}"] for n in range(50)}
    assert [c["message"] for c in current_scope().breadcrumbs(100)] == messages


def test_each_thread_starts_a_trail_of_its_own() -> None:
    scope_api.add_breadcrumb("main")
    seen: dict[int, list[str]] = {}
    barrier = threading.Barrier(4)

    def worker(n: int) -> None:
        scope_api.add_breadcrumb(f"thread {n}")
        barrier.wait()
        seen[n] = [c["message"] for c in current_scope().breadcrumbs(100)]

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == {n: [f"thread {n}"] for n in range(4)}
    assert [c["message"] for c in current_scope().breadcrumbs(100)] == ["main"]


async def test_a_task_sees_its_parents_scope_at_start_but_does_not_leak_back() -> None:
    scope_api.set_tag("parent", "yes")

    async def child() -> dict[str, str]:
        before = dict(current_scope().tags)
        scope_api.set_tag("child", "yes")
        return before

    assert await asyncio.create_task(child()) == {"parent": "yes"}
    assert current_scope().tags == {"parent": "yes"}


def test_threads_never_see_each_others_scope() -> None:
    barrier = threading.Barrier(20)
    results: dict[int, dict[str, str]] = {}

    def worker(n: int) -> None:
        scope_api.set_tag("thread", str(n))
        barrier.wait()
        results[n] = dict(current_scope().tags)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {n: {"thread": str(n)} for n in range(20)}
    assert current_scope().tags == {}


# -- request_scope: what integrations give each request -------------------------------------


class CountingMapping(Mapping[str, Any]):
    """A lazy mapping (like an integration's request) that counts how often it is read."""

    def __init__(self, **data: Any) -> None:
        self._data = data
        self.reads = 0

    def __getitem__(self, key: str) -> Any:
        self.reads += 1
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        self.reads += 1
        return iter(self._data)

    def __len__(self) -> int:
        self.reads += 1
        return len(self._data)


@pytest.fixture
async def two_cores() -> AsyncIterator[tuple[ClientCore, ClientCore]]:
    async with (
        AsyncClient(transport=MemoryTransport()) as first,
        AsyncClient(transport=MemoryTransport()) as second,
    ):
        yield first.core, second.core


async def test_request_scope_fills_a_fresh_scope_and_binds_the_client_until_exit(
    two_cores: tuple[ClientCore, ClientCore],
) -> None:
    core, _ = two_cores
    scope_api.set_tag("outer", "1")
    outer_scope, outer_client = current_scope(), current_client()
    request = CountingMapping(url="http://shop/orders/7")
    with request_scope(
        core, request=request, transaction="orders.show", tags={"shard": "3"}
    ) as scope:
        assert current_scope() is scope
        assert current_client() is core
        assert scope.request is request  # stored as given, not copied
        assert (scope.transaction, scope.tags, scope.user) == ("orders.show", {"shard": "3"}, None)
        scope_api.set_tag("inside", "2")
        assert current_scope().tags == {"shard": "3", "inside": "2"}
        assert scope.tags == {"shard": "3"}  # copy-on-write, as anywhere
    assert current_scope() is outer_scope
    assert current_client() is outer_client
    assert current_scope().tags == {"outer": "1"}
    assert request.reads == 0


def test_request_scope_fills_every_field_of_a_scope() -> None:
    # request_scope builds its Scope slot by slot (for speed): none may be left unset.
    blank = Scope()
    with request_scope(None, extra={"a": 1}, contexts={"c": {"x": 1}}, user={"id": "7"}) as scope:
        for name in Scope.__slots__:
            expected = {
                "extra": {"a": 1},
                "contexts": {"c": {"x": 1}},
                "user": {"id": "7"},
                "_breadcrumbs": [],  # a trail of its own
            }
            assert getattr(scope, name) == expected.get(name, getattr(blank, name)), name


class _OwnRequest(RequestScope, Mapping[str, Any]):
    """A request object that is its own scope, as the ASGI integration's is."""

    __slots__ = ("url",)

    def __getitem__(self, key: str) -> Any:
        return {"url": self.url}[key]

    def __iter__(self) -> Iterator[str]:
        return iter(("url",))

    def __len__(self) -> int:
        return 1

    def __call__(self) -> str:
        return "/items/{item_id}"

    def resolve(self) -> Any:
        return self.url


def _own_request(url: str) -> _OwnRequest:
    request = object.__new__(_OwnRequest)
    request.url = url
    return request


@pytest.mark.parametrize("how", ["fill_own_scope", "enter_own_scope"])
def test_a_request_scope_has_every_field_but_the_three_it_is(how: str) -> None:
    # Most fields are class constants (never set on a request's own scope): every one must
    # read as a blank scope's, however the scope was made.
    blank = Scope()
    request = _own_request("http://x/items/1")
    if how == "fill_own_scope":
        fill_own_scope(request, None)
    else:
        restore_scope(enter_own_scope(request, None))
    for name in Scope.__slots__:
        if name not in ("request", "trace", "transaction"):
            expected = [] if name == "_breadcrumbs" else getattr(blank, name)
            assert getattr(request, name) == expected, name
    assert request.request is request
    assert request.trace is request
    assert request.transaction is request
    # Not kept as values: an object pointing at itself would wait for the garbage collector.
    assert not any(referent is request for referent in gc.get_referents(request))


def test_a_request_scope_is_installed_and_its_copies_point_at_it() -> None:
    request = _own_request("http://x/items/1")
    token = enter_own_scope(request, None)
    try:
        assert current_scope() is request
        scope_api.set_tag("inside", "1")
        copy = current_scope()
        assert type(copy) is Scope
        assert copy.request is request
        assert copy.trace is request
        assert copy.transaction is request
        assert copy.tags == {"inside": "1"}
        assert dict(copy.request or {}) == {"url": "http://x/items/1"}
    finally:
        restore_scope(token)
    assert current_scope().request is None


def test_request_scopes_nest_and_each_exit_restores_its_level() -> None:
    with request_scope(None, transaction="outer") as outer:
        scope_api.add_breadcrumb("outer crumb")
        with request_scope(None, transaction="inner"):
            assert current_scope().transaction == "inner"
            assert current_scope().breadcrumbs(100) == []  # fresh, not inherited
        assert current_scope().transaction == "outer"
        assert [c["message"] for c in current_scope().breadcrumbs(100)] == ["outer crumb"]
        assert current_scope() is outer  # a breadcrumb is added to it, in place
    assert current_scope().transaction is None


async def test_request_scope_is_undone_when_the_block_raises(
    two_cores: tuple[ClientCore, ClientCore],
) -> None:
    core, _ = two_cores
    before_scope, before_client = current_scope(), current_client()

    def failing_request() -> None:
        with request_scope(core, transaction="failing"):
            scope_api.set_tag("doomed", "yes")
            raise KeyError("boom")

    with pytest.raises(KeyError):
        failing_request()
    assert current_scope() is before_scope
    assert current_client() is before_client


async def test_concurrent_tasks_each_keep_their_own_request_scope(
    two_cores: tuple[ClientCore, ClientCore],
) -> None:
    seen: dict[int, tuple[object, object, dict[str, str]]] = {}

    async def handle(n: int) -> None:
        core = two_cores[n % 2]
        with request_scope(core, request={"url": f"/r/{n}"}, transaction=f"t{n}"):
            scope_api.set_tag("n", str(n))
            await asyncio.sleep(0.001 * (n % 4))
            scope = current_scope()
            seen[n] = (scope.request, current_client(), dict(scope.tags))
        assert current_scope().transaction is None

    await asyncio.gather(*(handle(n) for n in range(60)))
    for n in range(60):
        assert seen[n] == ({"url": f"/r/{n}"}, two_cores[n % 2], {"n": str(n)})


async def test_enter_here_lasts_for_the_task_and_never_reaches_its_parent(
    two_cores: tuple[ClientCore, ClientCore],
) -> None:
    core, other = two_cores
    parent_scope, parent_client = current_scope(), current_client()

    async def served_in_turn() -> list[tuple[str | None, object]]:
        # One task serving requests one after the other (a keep-alive connection).
        seen = []
        for name, client in (("first", core), ("second", other)):
            request_scope(client, transaction=name).enter_here()
            await asyncio.sleep(0)
            seen.append((current_scope().transaction, current_client()))
        return seen

    assert await asyncio.create_task(served_in_turn()) == [("first", core), ("second", other)]
    assert current_scope() is parent_scope
    assert current_client() is parent_client


def test_threads_each_keep_their_own_request_scope() -> None:
    barrier = threading.Barrier(8)
    seen: dict[int, tuple[str | None, Mapping[str, Any] | None]] = {}

    def worker(n: int) -> None:
        with request_scope(None, request={"n": n}, transaction=f"thread-{n}"):
            barrier.wait()
            scope = current_scope()
            seen[n] = (scope.transaction, scope.request)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == {n: (f"thread-{n}", {"n": n}) for n in range(8)}


async def test_lazy_fields_are_read_only_when_an_event_is_captured() -> None:
    transport = MemoryTransport()
    request = CountingMapping(url="http://shop/cart", method="POST")
    user = CountingMapping(id="42")
    async with AsyncClient(transport=transport) as client:
        with request_scope(client.core, request=request, user=user, transaction="cart"):
            # A request's usual life: scope changes, breadcrumbs, no event.
            scope_api.set_tag("step", "1")
            scope_api.add_breadcrumb("added to cart")
            scope_api.set_context("cart", {"items": 2})
            assert (request.reads, user.reads) == (0, 0)
            await client.capture_message("checkout failed")
            assert request.reads > 0
            assert user.reads > 0
        assert await client.flush(10)
    [event] = transport.events()
    assert event["request"]["url"] == "http://shop/cart"
    assert event["user"]["id"] == "42"
    assert (event["transaction"], event["tags"]["step"]) == ("cart", "1")


def test_a_tag_value_whose_str_raises_does_not_raise_into_the_caller() -> None:
    class Hostile:
        def __str__(self) -> str:
            raise RuntimeError("no str")

    scope_api.set_tag("bad", Hostile())
    assert current_scope().tags["bad"] == "<unprintable Hostile>"


def test_a_copy_keeps_every_field_of_a_scope() -> None:
    # Scope.copy copies slot by slot (for speed): none may be left out.
    original = Scope()
    for number, name in enumerate(Scope.__slots__):
        if name not in ("outcome", "session_root"):  # release health: see test_sessions.py
            setattr(original, name, f"value {number}")
    clone = original.copy()
    for name in Scope.__slots__:
        assert getattr(clone, name) == getattr(original, name), name
