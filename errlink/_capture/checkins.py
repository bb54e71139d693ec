"""Check-ins (cron monitors): validating what the user wrote, and the ``check_in`` payload.

Validation raises at once (`ValueError`/`TypeError` naming the argument), where the monitor is
declared; sending never raises.
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Mapping
from typing import Any

from .._delivery.kinds import CHECK_IN
from .._wire.crontab import parse_crontab
from .._wire.ids import new_event_id
from .core import ClientCore

STATUSES = ("in_progress", "ok", "error")
INTERVAL_UNITS = ("minute", "hour", "day", "week", "month", "year")
_SLUG = re.compile(r"[a-z0-9][a-z0-9_-]{0,49}")
_NOT_SLUG = re.compile(r"[^a-z0-9_-]+")

Schedule = str | tuple[int, str] | datetime.timedelta | Mapping[str, Any]


def check_slug(slug: object) -> str:
    if not isinstance(slug, str) or not _SLUG.fullmatch(slug):
        raise ValueError(
            f"monitor slug {slug!r} is not valid: use 1 to 50 lowercase letters, digits, "
            "'-' and '_', starting with a letter or digit"
        )
    return slug


def slugify(name: str) -> str:
    """A valid slug made from any name (a Celery task's dotted name, say)."""
    slug = _NOT_SLUG.sub("-", name.lower()).strip("-_")[:50].rstrip("-_")
    return slug or "monitor"


def check_status(status: object) -> str:
    if status not in STATUSES:
        raise ValueError(f"check-in status must be one of {', '.join(STATUSES)}, not {status!r}")
    return str(status)


def monitor_config(
    schedule: Schedule | None,
    *,
    checkin_margin: float | None = None,
    max_runtime: float | None = None,
    timezone: str | None = None,
) -> dict[str, Any] | None:
    """The ``monitor_config`` upsert for these arguments (None without a schedule)."""
    margin = _minutes("checkin_margin", checkin_margin)
    runtime = _minutes("max_runtime", max_runtime)
    zone = _timezone(timezone)
    if schedule is None:
        if margin is not None or runtime is not None or zone is not None:
            raise ValueError(
                "checkin_margin, max_runtime and timezone describe a schedule: give schedule= too"
            )
        return None
    config: dict[str, Any] = {"schedule": _schedule(schedule)}
    if margin is not None:
        config["checkin_margin"] = margin
    if runtime is not None:
        config["max_runtime"] = runtime
    if zone is not None:
        config["timezone"] = zone
    return config


def _schedule(schedule: object) -> dict[str, Any]:
    if isinstance(schedule, str):
        try:
            return {"type": "crontab", "value": parse_crontab(schedule).text}
        except ValueError as exc:
            raise ValueError(f"schedule: {exc}") from None
    if isinstance(schedule, datetime.timedelta):
        return interval_schedule(schedule.total_seconds())
    if isinstance(schedule, Mapping):
        kind = schedule.get("type")
        if kind == "crontab":
            return _schedule(schedule.get("value"))
        if kind == "interval":
            return _interval(schedule.get("value"), schedule.get("unit"))
        raise ValueError(f"schedule type must be 'crontab' or 'interval', not {kind!r}")
    if isinstance(schedule, tuple) and len(schedule) == 2:
        return _interval(*schedule)
    raise TypeError(
        "schedule must be a crontab string ('*/5 * * * *'), an interval (5, 'minute'), "
        f"or a datetime.timedelta, not {type(schedule).__name__}"
    )


def _interval(value: object, unit: object) -> dict[str, Any]:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"schedule interval must be a whole number of 1 or more, not {value!r}")
    if unit not in INTERVAL_UNITS:
        raise ValueError(f"schedule unit must be one of {', '.join(INTERVAL_UNITS)}, not {unit!r}")
    return {"type": "interval", "value": value, "unit": unit}


def interval_schedule(seconds: float) -> dict[str, Any]:
    """An interval of `seconds` in the largest whole unit; under a minute (the protocol's
    smallest unit) counts as one minute."""
    if not seconds > 0:
        raise ValueError(f"schedule interval must be positive, not {seconds!r} seconds")
    minutes = max(1, math.ceil(seconds / 60))
    for unit, size in (("week", 7 * 24 * 60), ("day", 24 * 60), ("hour", 60)):
        if minutes % size == 0:
            return {"type": "interval", "value": minutes // size, "unit": unit}
    return {"type": "interval", "value": minutes, "unit": "minute"}


def _minutes(name: str, value: object) -> int | float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TypeError(f"{name} must be a number of minutes, not {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be 0 or more minutes, not {value!r}")
    return int(value) if float(value).is_integer() else value


def _timezone(zone: object) -> str | None:
    if zone is None:
        return None
    if not isinstance(zone, str):
        raise TypeError(f"timezone must be a tz database name such as 'Europe/Paris', not {zone!r}")
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(zone)
    except (ValueError, KeyError, OSError):  # ZoneInfoNotFoundError is a KeyError
        raise ValueError(f"timezone {zone!r} is not a tz database name") from None
    return zone


def new_check_in_id() -> str:
    return new_event_id()


def send_checkin(
    core: ClientCore | None,
    slug: str,
    status: str,
    *,
    check_in_id: str,
    duration: float | None = None,
    config: Mapping[str, Any] | None = None,
) -> bool:
    """Queue one check-in on `core`'s pipeline (its own queue, category ``monitor``)."""
    if core is None or core.pipeline is None:
        return False
    options = core.options
    payload: dict[str, Any] = {"check_in_id": check_in_id, "monitor_slug": slug, "status": status}
    if duration is not None:
        payload["duration"] = round(duration, 6)
    if options.release:
        payload["release"] = options.release
    payload["environment"] = options.environment or "production"
    if config is not None:
        payload["monitor_config"] = dict(config)
    return core.submit_item(CHECK_IN, payload)
