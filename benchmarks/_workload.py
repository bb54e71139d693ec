"""The shared workload: an exception raised 10 frames deep with 5 locals in each frame."""

from __future__ import annotations


class Order:
    def __init__(self, order_id: int) -> None:
        self.order_id = order_id
        self.items = ["sku-1", "sku-2"]

    def __repr__(self) -> str:
        return f"Order(id={self.order_id})"


def raise_deep(depth: int = 10) -> BaseException:
    """Raise and catch an exception `depth` frames below this call; return it."""
    try:
        _frame(depth)
    except Exception as exc:
        return exc
    raise AssertionError("unreachable")


def _frame(remaining: int) -> None:
    count = remaining
    label = f"frame-{remaining}"
    payload = {"user": 42, "cart": [1, 2, 3], "note": "gift"}
    numbers = list(range(10))
    order = Order(remaining)
    if remaining <= 1:
        raise ValueError(
            f"payment declined at {label} ({count}, {len(payload)}, {numbers[0]}, {order})"
        )
    _frame(remaining - 1)
