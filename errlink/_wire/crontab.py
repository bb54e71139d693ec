"""Crontab schedules: five fields, parsed to the sets of values they match.

Shared by the client (validating ``errlink.monitor(schedule=...)`` where the user wrote it)
and the collector (when a monitor's next check-in is due). Fields: minute, hour, day of month,
month, day of week; each a ``*``, a value, a range ``a-b``, any of those with a step ``/n``, or a
comma-separated list of them. Months and days of the week may be named (``jan``, ``mon``); day
of week 7 is Sunday, like 0. Macros such as ``@daily`` are not accepted.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_FIELDS: tuple[tuple[str, int, int, tuple[str, ...]], ...] = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _WEEKDAYS),
)
# How far ahead `next_after` looks before giving up (a day that never comes: 31 feb).
_HORIZON_DAYS = 366 * 5


class CrontabError(ValueError):
    pass


@dataclass(frozen=True)
class Crontab:
    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool  # day of month is "*"
    any_weekday: bool

    def matches(self, moment: datetime.datetime) -> bool:
        if moment.minute not in self.minutes or moment.hour not in self.hours:
            return False
        return moment.month in self.months and self._day_matches(moment)

    def _day_matches(self, moment: datetime.date) -> bool:
        by_day = moment.day in self.days
        by_weekday = (moment.isoweekday() % 7) in self.weekdays
        # Classic cron: when both are restricted, either one matching is enough.
        if self.any_day or self.any_weekday:
            return by_day and by_weekday
        return by_day or by_weekday

    def next_after(self, moment: datetime.datetime) -> datetime.datetime | None:
        """The first matching minute strictly after `moment` (same tzinfo), within 5 years."""
        start = moment.replace(second=0, microsecond=0) + datetime.timedelta(minutes=1)
        day = start.date()
        for offset in range(_HORIZON_DAYS):
            current = day + datetime.timedelta(days=offset)
            if current.month not in self.months or not self._day_matches(current):
                continue
            for hour in sorted(self.hours):
                for minute in sorted(self.minutes):
                    candidate = datetime.datetime.combine(
                        current, datetime.time(hour, minute), tzinfo=moment.tzinfo
                    )
                    if candidate >= start:
                        return candidate
        return None


def parse_crontab(text: object) -> Crontab:
    """The crontab `text` parsed; CrontabError (a ValueError) says what is wrong with it."""
    if not isinstance(text, str):
        raise CrontabError(f"a crontab schedule is a string, not {type(text).__name__}")
    parts = text.split()
    if len(parts) != 5:
        raise CrontabError(
            f"crontab {text!r} has {len(parts)} fields; it needs 5 "
            "(minute hour day-of-month month day-of-week)"
        )
    sets = [_field(part, *spec) for part, spec in zip(parts, _FIELDS, strict=True)]
    weekdays = frozenset(0 if day == 7 else day for day in sets[4])
    return Crontab(
        text=" ".join(parts),
        minutes=sets[0],
        hours=sets[1],
        days=sets[2],
        months=sets[3],
        weekdays=weekdays,
        any_day=parts[2] == "*",
        any_weekday=parts[4] == "*",
    )


def _field(text: str, name: str, low: int, high: int, names: tuple[str, ...]) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        values.update(_item(item, text, name, low, high, names))
    return frozenset(values)


def _item(item: str, whole: str, name: str, low: int, high: int, names: tuple[str, ...]) -> range:
    where = f"crontab {name} field {whole!r}"
    span, slash, step_text = item.partition("/")
    step = 1
    if slash:
        if not step_text.isdigit() or int(step_text) < 1:
            raise CrontabError(f"{where}: step {step_text!r} must be a whole number of 1 or more")
        step = int(step_text)
    if span == "*":
        start, end = low, high
    elif "-" in span:
        first, _, last = span.partition("-")
        start = _value(first, where, low, high, names)
        end = _value(last, where, low, high, names)
        if start > end:
            raise CrontabError(f"{where}: range {span!r} runs backwards")
    else:
        start = _value(span, where, low, high, names)
        end = high if slash else start
    return range(start, end + 1, step)


def _value(text: str, where: str, low: int, high: int, names: tuple[str, ...]) -> int:
    lowered = text.lower()
    if lowered in names:
        return names.index(lowered) + (1 if low == 1 else 0)
    if not text.isdigit():
        allowed = f"{low}-{high}" + (f" or a name ({', '.join(names[:3])}, ...)" if names else "")
        raise CrontabError(f"{where}: {text!r} is not a number {allowed}")
    value = int(text)
    if not low <= value <= high:
        raise CrontabError(f"{where}: {value} is out of range {low}-{high}")
    return value
