"""Release health in the collector: ``session`` and ``sessions`` items, stored and summed.

A ``session`` item is one update of one session (application mode); the session's state is
its update with the highest ``seq`` (the latest received on a tie). A ``sessions`` item holds
per-minute counts (request mode). A release's totals add both: sessions, crashed, errored
(ended with errors but not crashed), abnormal, and the crash-free rate, 1 - crashed / total.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from ._errors import Rejected

_MAX_TEXT = 200
_MAX_COUNT = 2**53

SCHEMA = [
    """
    CREATE TABLE IF NOT EXISTS session_updates (
        id INTEGER PRIMARY KEY,
        received_at REAL NOT NULL,
        project_id TEXT NOT NULL,
        sid TEXT NOT NULL,
        seq INTEGER NOT NULL,
        release TEXT NOT NULL,
        environment TEXT NOT NULL,
        status TEXT NOT NULL,
        errors INTEGER NOT NULL,
        payload TEXT NOT NULL
    )
    """,
    "CREATE INDEX IF NOT EXISTS session_updates_sid ON session_updates (sid, seq, id)",
    """
    CREATE TABLE IF NOT EXISTS session_aggregates (
        id INTEGER PRIMARY KEY,
        received_at REAL NOT NULL,
        project_id TEXT NOT NULL,
        release TEXT NOT NULL,
        environment TEXT NOT NULL,
        started TEXT NOT NULL,
        exited INTEGER NOT NULL,
        errored INTEGER NOT NULL,
        crashed INTEGER NOT NULL,
        abnormal INTEGER NOT NULL,
        payload TEXT NOT NULL
    )
    """,
    "CREATE INDEX IF NOT EXISTS session_aggregates_release ON session_aggregates (release)",
]
_STATUSES = ("ok", "exited", "crashed", "abnormal", "errored")


@dataclass(frozen=True)
class SessionUpdateRecord:
    project_id: str
    sid: str
    seq: int
    release: str
    environment: str
    status: str
    errors: int
    payload_json: str


@dataclass(frozen=True)
class AggregateRecord:
    project_id: str
    release: str
    environment: str
    started: str
    exited: int
    errored: int
    crashed: int
    abnormal: int
    payload_json: str


@dataclass(frozen=True)
class ReleaseHealth:
    release: str
    environment: str
    sessions: int
    exited: int
    errored: int
    crashed: int
    abnormal: int

    @property
    def crash_free_rate(self) -> float | None:
        return None if not self.sessions else 1.0 - self.crashed / self.sessions

    def as_json(self) -> dict[str, Any]:
        return {
            "release": self.release,
            "environment": self.environment,
            "sessions": self.sessions,
            "exited": self.exited,
            "errored": self.errored,
            "crashed": self.crashed,
            "abnormal": self.abnormal,
            "crash_free_rate": self.crash_free_rate,
        }


def create_tables(db: sqlite3.Connection) -> None:
    for statement in SCHEMA:
        db.execute(statement)


def session_record(payload: object, *, project_id: str, where: str) -> SessionUpdateRecord:
    if not isinstance(payload, dict):
        raise Rejected(400, f"{where} is not a JSON object")
    sid = payload.get("sid")
    if not isinstance(sid, str) or not sid or len(sid) > _MAX_TEXT:
        raise Rejected(400, f"{where} needs a string 'sid'")
    release, environment = _attrs(payload, where)
    status = payload.get("status", "ok")
    if status not in _STATUSES:
        raise Rejected(400, f"{where} status {status!r:.40} is not one of {', '.join(_STATUSES)}")
    return SessionUpdateRecord(
        project_id=project_id,
        sid=sid,
        seq=_count(payload.get("seq", 0), where, "seq"),
        release=release,
        environment=environment,
        status=status,
        errors=_count(payload.get("errors", 0), where, "errors"),
        payload_json=json.dumps(payload, ensure_ascii=False),
    )


def aggregate_records(payload: object, *, project_id: str, where: str) -> list[AggregateRecord]:
    if not isinstance(payload, dict):
        raise Rejected(400, f"{where} is not a JSON object")
    release, environment = _attrs(payload, where)
    aggregates = payload.get("aggregates")
    if not isinstance(aggregates, list):
        raise Rejected(400, f"{where} needs an 'aggregates' list")
    records = []
    for index, bucket in enumerate(aggregates):
        at = f"{where} aggregates[{index}]"
        if not isinstance(bucket, dict) or not isinstance(bucket.get("started"), str):
            raise Rejected(400, f"{at} needs a string 'started'")
        records.append(
            AggregateRecord(
                project_id=project_id,
                release=release,
                environment=environment,
                started=bucket["started"][:_MAX_TEXT],
                exited=_count(bucket.get("exited", 0), at, "exited"),
                errored=_count(bucket.get("errored", 0), at, "errored"),
                crashed=_count(bucket.get("crashed", 0), at, "crashed"),
                abnormal=_count(bucket.get("abnormal", 0), at, "abnormal"),
                payload_json=json.dumps(bucket, ensure_ascii=False),
            )
        )
    return records


def has_release(payload: object) -> bool:
    """Whether a session item names its release. Sentry drops one that does not (the SDKs send
    them when no release is configured), and so does the collector, counting it as ignored
    rather than refusing the envelope it came in."""
    attrs = payload.get("attrs") if isinstance(payload, dict) else None
    release = attrs.get("release") if isinstance(attrs, dict) else None
    return isinstance(release, str) and bool(release)


def _attrs(payload: dict[str, Any], where: str) -> tuple[str, str]:
    attrs = payload.get("attrs")
    release = attrs.get("release") if isinstance(attrs, dict) else None
    if not isinstance(release, str) or not release:
        raise Rejected(400, f"{where} needs attrs.release (sessions belong to a release)")
    environment = attrs.get("environment") if isinstance(attrs, dict) else None
    environment = environment if isinstance(environment, str) and environment else "production"
    return release[:_MAX_TEXT], environment[:_MAX_TEXT]


def _count(value: object, where: str, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < _MAX_COUNT:
        raise Rejected(400, f"{where} {name} must be a non-negative integer")
    return value


def insert(
    db: sqlite3.Connection,
    received_at: float,
    updates: list[SessionUpdateRecord],
    aggregates: list[AggregateRecord],
) -> None:
    db.executemany(
        "INSERT INTO session_updates (received_at, project_id, sid, seq, release, environment, "
        "status, errors, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                received_at,
                u.project_id,
                u.sid,
                u.seq,
                u.release,
                u.environment,
                u.status,
                u.errors,
                u.payload_json,
            )
            for u in updates
        ],
    )
    db.executemany(
        "INSERT INTO session_aggregates (received_at, project_id, release, environment, started, "
        "exited, errored, crashed, abnormal, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                received_at,
                a.project_id,
                a.release,
                a.environment,
                a.started,
                a.exited,
                a.errored,
                a.crashed,
                a.abnormal,
                a.payload_json,
            )
            for a in aggregates
        ],
    )


_LATEST_UPDATES = """
    SELECT release, environment, status, errors FROM session_updates AS u
    WHERE u.id = (
        SELECT id FROM session_updates WHERE sid = u.sid ORDER BY seq DESC, id DESC LIMIT 1
    )
"""


def releases(db: sqlite3.Connection) -> list[ReleaseHealth]:
    """Every release (and environment) that sent sessions, newest release first by arrival."""
    totals: dict[tuple[str, str], list[int]] = {}
    newest: dict[tuple[str, str], float] = {}
    for release, environment, exited, errored, crashed, abnormal, last in db.execute(
        "SELECT release, environment, sum(exited), sum(errored), sum(crashed), sum(abnormal), "
        "max(received_at) FROM session_aggregates GROUP BY release, environment"
    ):
        totals[(release, environment)] = [exited, errored, crashed, abnormal]
        newest[(release, environment)] = last
    for release, environment, status, errors in db.execute(_LATEST_UPDATES):
        counts = totals.setdefault((release, environment), [0, 0, 0, 0])
        if status == "crashed":
            counts[2] += 1
        elif status == "abnormal":
            counts[3] += 1
        elif errors or status == "errored":
            counts[1] += 1
        else:  # exited, or ok: still running without an error
            counts[0] += 1
    for release, environment, last in db.execute(
        "SELECT release, environment, max(received_at) FROM session_updates "
        "GROUP BY release, environment"
    ):
        newest[(release, environment)] = max(last, newest.get((release, environment), 0.0))
    ordered = sorted(totals, key=lambda key: newest.get(key, 0.0), reverse=True)
    return [
        ReleaseHealth(release, environment, sum(totals[key]), *totals[key])
        for key in ordered
        for release, environment in (key,)
    ]


def aggregates(db: sqlite3.Connection, *, limit: int) -> list[dict[str, Any]]:
    """The newest per-minute buckets as received, each with its release and environment."""
    rows = db.execute(
        "SELECT release, environment, payload FROM session_aggregates ORDER BY id DESC LIMIT ?",
        (limit,),
    ).fetchall()
    return [
        {"release": release, "environment": environment, **json.loads(payload)}
        for release, environment, payload in rows
    ]


def session_updates(db: sqlite3.Connection, *, limit: int) -> list[dict[str, Any]]:
    """The newest session updates as received (application-mode sessions)."""
    rows = db.execute(
        "SELECT payload FROM session_updates ORDER BY id DESC LIMIT ?", (limit,)
    ).fetchall()
    return [json.loads(payload) for (payload,) in rows]
