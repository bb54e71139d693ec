"""Misbehaving on purpose, so clients' retries, backoff and rate-limit handling can be watched.

Faults apply to the ingestion endpoints only (the UI and the read API always answer). Every
ingestion request is first delayed by `delay_ms`; then, with probability `fail_rate`, its body
is read and thrown away and it is answered `fail_status` with nothing stored. A 429 or 503
carries `Retry-After: <retry_after>`, and a 429 also `X-Sentry-Rate-Limits` for all categories.

`limit_categories` rate-limits data categories instead (``("monitor",)``, say): every envelope
carrying an item of one of them is answered 429 with `X-Sentry-Rate-Limits` naming them, and
everything else is stored as usual.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from ._errors import Rejected

_RETRY_AFTER_STATUSES = (429, 503)
# The data category of each envelope item type, as rate limits name them.
ITEM_CATEGORIES = {
    "event": "error",
    "transaction": "transaction",
    "attachment": "attachment",
    "session": "session",
    "sessions": "session",
    "check_in": "monitor",
    "feedback": "feedback",
    "user_report": "user_report_v2",
    "log": "log_item",
    "client_report": "internal",
}


@dataclass(frozen=True)
class Faults:
    """What the collector does wrong on purpose; the default does nothing wrong."""

    fail_rate: float = 0.0  # share of ingestion requests refused, 0.0 to 1.0
    fail_status: int = 500  # status they are refused with: 429, 500, 503 or any 4xx/5xx
    delay_ms: float = 0.0  # added before every ingestion answer
    retry_after: float = 1.0  # seconds, sent with 429 and 503
    limit_categories: tuple[str, ...] = ()  # data categories answered 429 (rate limited)

    def __post_init__(self) -> None:
        if not isinstance(self.limit_categories, tuple) or not all(
            isinstance(c, str) and c and c.replace("_", "").isalnum() for c in self.limit_categories
        ):
            raise ValueError(
                "limit_categories must be a tuple of data category names such as "
                f"('monitor',), got {self.limit_categories!r}"
            )
        if not _is_number(self.fail_rate) or not 0.0 <= self.fail_rate <= 1.0:
            raise ValueError(f"fail_rate must be between 0.0 and 1.0, got {self.fail_rate!r}")
        if (
            not isinstance(self.fail_status, int)
            or isinstance(self.fail_status, bool)
            or not 400 <= self.fail_status <= 599
        ):
            raise ValueError(
                f"fail_status must be an HTTP error status (400-599), got {self.fail_status!r}"
            )
        for name in ("delay_ms", "retry_after"):
            value = getattr(self, name)
            if not _is_number(value) or value < 0 or not math.isfinite(value):
                raise ValueError(f"{name} must be a non-negative number, got {value!r}")

    @property
    def active(self) -> bool:
        return self.fail_rate > 0 or self.delay_ms > 0 or bool(self.limit_categories)

    def describe(self) -> str:
        parts = []
        if self.fail_rate > 0:
            parts.append(
                f"refusing {self.fail_rate:.0%} of ingestion requests with {self.fail_status}"
            )
        if self.delay_ms > 0:
            parts.append(f"delaying every ingestion answer by {self.delay_ms:g} ms")
        if self.limit_categories:
            parts.append(f"rate-limiting {', '.join(self.limit_categories)} with 429")
        return ", ".join(parts) or "none"


class FaultInjector:
    """Holds the current `Faults`; replacing them is one reference swap, safe from any thread."""

    def __init__(self, faults: Faults, seed: int | None = None) -> None:
        self.faults = faults
        self._random = random.Random(seed)  # drawn on the collector's event loop only

    def update(self, **changes: Any) -> Faults:
        self.faults = replace(self.faults, **changes)
        return self.faults

    async def before_ingest(self, read_body: Callable[[], Awaitable[object]]) -> None:
        """Delay, then maybe refuse: raises Rejected after consuming the body via `read_body`."""
        faults = self.faults
        if faults.delay_ms > 0:
            await asyncio.sleep(faults.delay_ms / 1000)
        if faults.fail_rate <= 0 or not self._draw(faults.fail_rate):
            return
        # Read what the client sent, so the connection stays usable for its next request.
        await read_body()
        headers: dict[str, str] = {}
        if faults.fail_status in _RETRY_AFTER_STATUSES:
            seconds = str(math.ceil(faults.retry_after))
            headers["Retry-After"] = seconds
            if faults.fail_status == 429:
                headers["X-Sentry-Rate-Limits"] = f"{seconds}::organization:errlink_fault"
        raise Rejected(
            faults.fail_status,
            "failure injected on purpose (errlink serve --fail-rate)",
            headers=headers,
        )

    def check_categories(self, item_types: Iterable[str]) -> None:
        """Raise the 429 of `limit_categories` when an item is of a limited category."""
        limited = self.faults.limit_categories
        if not limited:
            return
        if not any(ITEM_CATEGORIES.get(kind, kind) in limited for kind in item_types):
            return
        seconds = str(math.ceil(self.faults.retry_after))
        raise Rejected(
            429,
            f"rate limited on purpose: {', '.join(limited)}",
            headers={
                "Retry-After": seconds,
                "X-Sentry-Rate-Limits": f"{seconds}:{';'.join(limited)}:organization:errlink_fault",
            },
        )

    def _draw(self, rate: float) -> bool:
        return rate >= 1.0 or self._random.random() < rate


class FaultKnobs:
    """The fault knobs as attributes and methods, for a class that owns a `FaultInjector`."""

    def _fault_injector(self) -> FaultInjector:
        raise NotImplementedError

    @property
    def faults(self) -> Faults:
        return self._fault_injector().faults

    def set_faults(self, **changes: Any) -> Faults:
        """Change some knobs at once (`fail_rate`, `fail_status`, `delay_ms`, `retry_after`);
        the next ingestion request sees them. Returns the new settings."""
        return self._fault_injector().update(**changes)

    def clear_faults(self) -> None:
        """Behave again: no failures, no delay."""
        self._fault_injector().faults = Faults()

    @property
    def fail_rate(self) -> float:
        return self.faults.fail_rate

    @fail_rate.setter
    def fail_rate(self, value: float) -> None:
        self.set_faults(fail_rate=value)

    @property
    def fail_status(self) -> int:
        return self.faults.fail_status

    @fail_status.setter
    def fail_status(self, value: int) -> None:
        self.set_faults(fail_status=value)

    @property
    def delay_ms(self) -> float:
        return self.faults.delay_ms

    @delay_ms.setter
    def delay_ms(self, value: float) -> None:
        self.set_faults(delay_ms=value)

    @property
    def retry_after(self) -> float:
        return self.faults.retry_after

    @retry_after.setter
    def retry_after(self, value: float) -> None:
        self.set_faults(retry_after=value)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
