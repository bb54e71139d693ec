"""Cron monitors in the collector: ``check_in`` items stored, and each monitor's state.

A monitor is a slug. Its schedule is the newest ``monitor_config`` any of its check-ins
carried. Check-ins sharing a ``check_in_id`` are one run (``in_progress`` then ``ok``/``error``).
A monitor is *missed* when, at the time asked about, its schedule expected a check-in after the
last one more than ``checkin_margin`` minutes ago (default 1): for a crontab, the first slot
after the last check-in; for an interval, the last check-in plus the interval.
"""

from __future__ import annotations

import datetime
import json
import re
import sqlite3
from dataclasses import dataclass
from typing import Any

from .._wire.crontab import parse_crontab
from ._errors import Rejected

_SLUG = re.compile(r"[A-Za-z0-9_-]{1,50}")
_STATUSES = ("in_progress", "ok", "error")
_DEFAULT_MARGIN_MINUTES = 1.0
RUNS_SHOWN = 10
_UNIT_MINUTES = {
    "minute": 1,
    "hour": 60,
    "day": 24 * 60,
    "week": 7 * 24 * 60,
    "month": 30 * 24 * 60,
    "year": 365 * 24 * 60,
}

SCHEMA = [
    """
    CREATE TABLE IF NOT EXISTS check_ins (
        id INTEGER PRIMARY KEY,
        received_at REAL NOT NULL,
        project_id TEXT NOT NULL,
        check_in_id TEXT NOT NULL,
        monitor_slug TEXT NOT NULL,
        status TEXT NOT NULL,
        duration REAL,
        environment TEXT,
        monitor_config TEXT,
        payload TEXT NOT NULL
    )
    """,
    "CREATE INDEX IF NOT EXISTS check_ins_slug ON check_ins (monitor_slug, id)",
]


@dataclass(frozen=True)
class CheckInRecord:
    project_id: str
    check_in_id: str
    monitor_slug: str
    status: str
    duration: float | None
    environment: str | None
    monitor_config: str | None
    payload_json: str


@dataclass(frozen=True)
class Run:
    """One check-in id: its latest status, duration, and when it started and last reported."""

    check_in_id: str
    status: str
    duration: float | None
    started_at: float
    updated_at: float

    def as_json(self) -> dict[str, Any]:
        return {
            "check_in_id": self.check_in_id,
            "status": self.status,
            "duration": self.duration,
            "started_at": self.started_at,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True)
class MonitorState:
    slug: str
    config: dict[str, Any] | None
    runs: list[Run]  # newest first
    last_check_in_at: float
    next_expected_at: float | None
    missed: bool

    @property
    def status(self) -> str:
        if self.missed:
            return "missed"
        return self.runs[0].status if self.runs else "unknown"

    def as_json(self) -> dict[str, Any]:
        return {
            "slug": self.slug,
            "status": self.status,
            "missed": self.missed,
            "monitor_config": self.config,
            "last_check_in_at": self.last_check_in_at,
            "next_expected_at": self.next_expected_at,
            "check_ins": [run.as_json() for run in self.runs],
        }


def create_tables(db: sqlite3.Connection) -> None:
    for statement in SCHEMA:
        db.execute(statement)


def check_in_record(payload: object, *, project_id: str, where: str) -> CheckInRecord:
    if not isinstance(payload, dict):
        raise Rejected(400, f"{where} is not a JSON object")
    slug = payload.get("monitor_slug")
    if not isinstance(slug, str) or not _SLUG.fullmatch(slug):
        raise Rejected(400, f"{where} monitor_slug {slug!r:.60} is not a valid slug")
    check_in_id = payload.get("check_in_id")
    if not isinstance(check_in_id, str) or not 1 <= len(check_in_id) <= 64:
        raise Rejected(400, f"{where} needs a string 'check_in_id'")
    status = payload.get("status")
    if status not in _STATUSES:
        raise Rejected(400, f"{where} status {status!r:.40} is not one of {', '.join(_STATUSES)}")
    duration = payload.get("duration")
    if duration is not None and (
        isinstance(duration, bool) or not isinstance(duration, int | float) or duration < 0
    ):
        raise Rejected(400, f"{where} duration must be a non-negative number of seconds")
    config = payload.get("monitor_config")
    if config is not None:
        _check_config(config, where)
    environment = payload.get("environment")
    return CheckInRecord(
        project_id=project_id,
        check_in_id=check_in_id.replace("-", "").lower(),
        monitor_slug=slug,
        status=status,
        duration=None if duration is None else float(duration),
        environment=environment if isinstance(environment, str) else None,
        monitor_config=None if config is None else json.dumps(config),
        payload_json=json.dumps(payload, ensure_ascii=False),
    )


def _check_config(config: object, where: str) -> None:
    schedule = config.get("schedule") if isinstance(config, dict) else None
    if not isinstance(schedule, dict):
        raise Rejected(400, f"{where} monitor_config needs a 'schedule' object")
    if schedule.get("type") == "crontab":
        try:
            parse_crontab(schedule.get("value"))
        except ValueError as exc:
            raise Rejected(400, f"{where} monitor_config: {exc}") from None
    elif schedule.get("type") == "interval":
        value = schedule.get("value")
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise Rejected(400, f"{where} interval value must be a positive integer")
        if schedule.get("unit") not in _UNIT_MINUTES:
            raise Rejected(400, f"{where} interval unit must be one of {', '.join(_UNIT_MINUTES)}")
    else:
        raise Rejected(400, f"{where} schedule type must be 'crontab' or 'interval'")


def insert(db: sqlite3.Connection, received_at: float, records: list[CheckInRecord]) -> None:
    db.executemany(
        "INSERT INTO check_ins (received_at, project_id, check_in_id, monitor_slug, status, "
        "duration, environment, monitor_config, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                received_at,
                r.project_id,
                r.check_in_id,
                r.monitor_slug,
                r.status,
                r.duration,
                r.environment,
                r.monitor_config,
                r.payload_json,
            )
            for r in records
        ],
    )


def monitors(db: sqlite3.Connection, now: float) -> list[MonitorState]:
    """Every monitor that checked in, as of `now` (seconds since the epoch), by slug."""
    slugs = [row[0] for row in db.execute("SELECT DISTINCT monitor_slug FROM check_ins")]
    return [monitor(db, slug, now) for slug in sorted(slugs)]


def monitor(db: sqlite3.Connection, slug: str, now: float) -> MonitorState:
    config_row = db.execute(
        "SELECT monitor_config FROM check_ins WHERE monitor_slug = ? "
        "AND monitor_config IS NOT NULL ORDER BY id DESC LIMIT 1",
        (slug,),
    ).fetchone()
    config = json.loads(config_row[0]) if config_row else None
    rows = db.execute(
        "SELECT check_in_id, status, duration, received_at FROM check_ins "
        "WHERE monitor_slug = ? ORDER BY id DESC LIMIT ?",
        (slug, RUNS_SHOWN * 4),
    ).fetchall()
    runs: dict[str, Run] = {}
    for check_in_id, status, duration, received_at in reversed(rows):  # oldest first
        known = runs.get(check_in_id)
        started = received_at if known is None else known.started_at
        runs[check_in_id] = Run(check_in_id, status, duration, started, received_at)
    newest = sorted(runs.values(), key=lambda run: run.updated_at, reverse=True)[:RUNS_SHOWN]
    last = rows[0][3] if rows else 0.0
    expected = _next_expected(config, last) if config else None
    margin = _margin_seconds(config)
    missed = expected is not None and now > expected + margin
    return MonitorState(slug, config, newest, last, expected, missed)


def _margin_seconds(config: dict[str, Any] | None) -> float:
    margin = (config or {}).get("checkin_margin")
    if isinstance(margin, int | float) and not isinstance(margin, bool) and margin >= 0:
        return float(margin) * 60
    return _DEFAULT_MARGIN_MINUTES * 60


def _next_expected(config: dict[str, Any], last: float) -> float | None:
    schedule = config.get("schedule") or {}
    if schedule.get("type") == "interval":
        unit = str(schedule.get("unit"))
        minutes = _UNIT_MINUTES.get(unit, 1) * int(schedule.get("value") or 1)
        return last + minutes * 60
    try:
        crontab = parse_crontab(schedule.get("value"))
    except ValueError:
        return None
    zone: datetime.tzinfo = datetime.timezone.utc
    name = config.get("timezone")
    if isinstance(name, str):
        try:
            import zoneinfo

            zone = zoneinfo.ZoneInfo(name)
        except (ValueError, KeyError, OSError):
            pass
    slot = crontab.next_after(datetime.datetime.fromtimestamp(last, zone))
    return None if slot is None else slot.timestamp()
