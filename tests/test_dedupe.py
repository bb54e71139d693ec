import gc
from typing import Any

from errlink._capture.dedupe import SeenExceptions


class FrozenError(Exception):
    """An exception that refuses new attributes, to exercise the weak-reference fallback."""

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("frozen")


def test_same_exception_object_is_seen_once() -> None:
    seen = SeenExceptions()
    exc = ValueError("boom")
    assert seen.first_sighting(exc) is True
    assert seen.first_sighting(exc) is False
    assert seen.first_sighting(ValueError("boom")) is True


def test_each_client_reports_the_exception_once() -> None:
    first, second = SeenExceptions(), SeenExceptions()
    exc = KeyError("k")
    assert first.first_sighting(exc) is True
    assert second.first_sighting(exc) is True
    assert first.first_sighting(exc) is False
    assert second.first_sighting(exc) is False


def test_a_new_exception_reusing_a_dead_ones_address_is_not_mistaken_for_it() -> None:
    for make in (lambda: KeyError("k"), lambda: FrozenError("f")):
        seen = SeenExceptions()
        reused = 0
        for _ in range(2000):
            exc = make()
            address = id(exc)
            assert seen.first_sighting(exc) is True
            del exc
            gc.collect(0)
            fresh = make()
            if id(fresh) == address:
                reused += 1
            assert seen.first_sighting(fresh) is True
            del fresh
        # CPython reuses freed memory constantly: the loop really met reused addresses.
        assert reused > 0


def test_fallback_remembers_exceptions_that_refuse_attributes() -> None:
    seen = SeenExceptions()
    exc = FrozenError("f")
    assert seen.first_sighting(exc) is True
    assert seen.first_sighting(exc) is False


def test_fallback_memory_is_bounded_and_forgets_dead_exceptions() -> None:
    seen = SeenExceptions(capacity=50)
    alive = [FrozenError(i) for i in range(500)]
    for exc in alive:
        seen.first_sighting(exc)
    assert len(seen) <= 51
    del alive, exc
    gc.collect()
    assert len(seen) == 0
