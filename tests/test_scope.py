import asyncio
import threading

import pytest

from errlink import _scope as scope_api
from errlink._scope import current_scope, isolated_scope, new_scope


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


def test_set_level_rejects_unknown_levels() -> None:
    with pytest.raises(ValueError, match="level must be one of"):
        scope_api.set_level("loud")


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


def test_breadcrumb_chain_stays_compact() -> None:
    for i in range(10_000):
        scope_api.add_breadcrumb(f"c{i}")
    node = current_scope()._breadcrumbs
    length = 0
    while node is not None:
        length += 1
        node = node.previous
    assert length <= 200


async def test_concurrent_tasks_never_see_each_others_scope() -> None:
    seen: dict[int, dict[str, str]] = {}

    async def request(n: int) -> None:
        scope_api.set_tag("request", str(n))
        scope_api.add_breadcrumb(f"start {n}")
        await asyncio.sleep(0.001 * (n % 5))
        scope_api.set_tag("after_sleep", str(n))
        await asyncio.sleep(0)
        seen[n] = dict(current_scope().tags)
        assert [c["message"] for c in current_scope().breadcrumbs(100)] == [f"start {n}"]

    await asyncio.gather(*(request(n) for n in range(100)))
    assert seen == {n: {"request": str(n), "after_sleep": str(n)} for n in range(100)}
    assert current_scope().tags == {}


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
