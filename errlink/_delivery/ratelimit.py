"""Rate limits announced by the server, per data category.

Two header forms exist. `X-Sentry-Rate-Limits` lists quotas as
``SECONDS:CATEGORIES:SCOPE[:REASON[:NAMESPACES]]`` separated by commas, with categories separated by
``;`` and an empty category list meaning every category; it may come with any status. On a 429
without it, `Retry-After` (seconds or an HTTP date; 60 s when absent or unreadable) limits every
category. Malformed parts are skipped: a server's typo must not stop or crash the client.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from datetime import datetime, timezone

ALL_CATEGORIES = ""
DEFAULT_RETRY_AFTER = 60.0


class RateLimits:
    """Deadlines per category on the monotonic clock. Used from the sender loop only."""

    def __init__(self) -> None:
        self._until: dict[str, float] = {}

    def update(self, status: int, headers: Mapping[str, str], now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        applied = False
        quotas = _header(headers, "X-Sentry-Rate-Limits")
        if quotas is not None:
            for seconds, categories in _parse_quotas(quotas):
                for category in categories:
                    self._limit(category, now + seconds)
                applied = True
        if status == 429 and not applied:
            self._limit(ALL_CATEGORIES, now + _parse_retry_after(_header(headers, "Retry-After")))

    def is_limited(self, category: str, now: float | None = None) -> bool:
        return self.retry_after(category, now) > 0

    def retry_after(self, category: str, now: float | None = None) -> float:
        """Seconds until `category` may be sent again; 0 when it is not limited."""
        if not self._until:
            return 0.0
        now = time.monotonic() if now is None else now
        until = max(self._until.get(category, 0.0), self._until.get(ALL_CATEGORIES, 0.0))
        return max(0.0, until - now)

    def _limit(self, category: str, until: float) -> None:
        # A shorter limit arriving later does not shorten a longer one already in force.
        if until > self._until.get(category, -math.inf):
            self._until[category] = until


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    # A plain dict from a custom transport may spell the name in any case.
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


def _parse_quotas(text: str) -> list[tuple[float, list[str]]]:
    quotas = []
    for quota in text.split(","):
        fields = quota.strip().split(":")
        if len(fields) < 2:
            continue
        seconds = _seconds(fields[0])
        if seconds is None:
            continue
        categories = [c.strip() for c in fields[1].split(";") if c.strip()]
        quotas.append((seconds, categories or [ALL_CATEGORIES]))
    return quotas


def _parse_retry_after(value: str | None) -> float:
    if value is None:
        return DEFAULT_RETRY_AFTER
    seconds = _seconds(value)
    if seconds is not None:
        return seconds
    moment = _http_date(value)
    if moment is None:
        return DEFAULT_RETRY_AFTER
    return max(0.0, moment - time.time())


_MONTHS = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}


def _http_date(text: str) -> float | None:
    """The time an HTTP date names (RFC 9110: IMF-fixdate, and the obsolete RFC 850 and asctime
    forms), always GMT; None if it is none of them. Parsed by hand: email.utils costs start-up
    time, and the sender's loop thread must not import anything on first use."""
    words = text.replace(",", " ").replace("-", " ").split()
    if words and words[-1].upper() in ("GMT", "UTC", "UT", "Z", "+0000", "0000"):
        words.pop()  # HTTP dates are always GMT; a date without its zone is read as GMT too
    try:
        if len(words) != 5:
            return None
        if words[2].lower() in _MONTHS:  # Sun 06 Nov 1994 08:49:37 (and RFC 850's 06-Nov-94)
            day, month, year, clock = words[1], words[2], words[3], words[4]
        else:  # asctime: Sun Nov  6 08:49:37 1994
            month, day, clock, year = words[1], words[2], words[3], words[4]
        hour, minute, second = (int(part) for part in clock.split(":"))
        number = int(year)
        if number < 100:  # RFC 850's two-digit years
            number += 2000 if number < 70 else 1900
        moment = datetime(
            number, _MONTHS[month.lower()], int(day), hour, minute, second, tzinfo=timezone.utc
        )
    except (KeyError, ValueError):
        return None
    return moment.timestamp()


def _seconds(text: str) -> float | None:
    try:
        value = float(text.strip())
    except ValueError:
        return None
    if not math.isfinite(value) or value < 0:
        return None
    return value
