"""Counting the collector's refusals by kind, and logging the first of each kind.

A flood of refused connections or requests must not become a flood of log lines: the first
refusal of each kind is logged as a warning (with its reason and, for a request, the client
that sent it), later ones are only counted. The counts, and the latest reason and client of
each kind, are shown on the stats page and in `/api/0/stats/`.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from ._auth import parse_sentry_auth

logger = logging.getLogger("errlink.collector")

# The kind of each status an ingestion request can be refused with. 5xx answers are the
# collector's own failures (or failures on purpose), not refusals, and are only counted as
# answers.
REQUEST_REFUSAL_KINDS = {
    400: "malformed",
    401: "auth",
    404: "project",
    408: "slow-body",
    413: "too-large",
    415: "encoding",
}
# What the guards in front of the endpoints answer (an idle connection is closed unanswered).
_GUARD_STATUSES = {"host": 421, "origin": 403, "connections": 503}
_MAX_CLIENT_NAME = 100
_MAX_REASON = 300


@dataclass(frozen=True)
class Refusal:
    """The latest refusal of one kind."""

    status: int | None  # None: the connection was closed without an answer
    reason: str
    client: str | None  # None: refused by a guard, before the endpoint read the request


class RefusalLog:
    """Counts refusals by kind; logs the first of each kind (on the collector's event loop)."""

    def __init__(self) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        self.latest: dict[str, Refusal] = {}

    def refused(
        self,
        kind: str,
        message: str,
        *args: object,
        status: int | None = None,
        client: str | None = None,
        reason: str | None = None,
    ) -> None:
        """Count a refusal of `kind`; the first is logged as `message % args`, which is also the
        reason shown in the stats unless `reason` is given."""
        self.counts[kind] += 1
        shown = reason if reason is not None else (message % args if args else message)
        if status is None:
            status = _GUARD_STATUSES.get(kind)
        self.latest[kind] = Refusal(status, shown, client)
        if self.counts[kind] == 1:
            logger.warning(message + " (logged once; later ones are only counted)", *args)

    def refused_request(self, status: int, reason: str, client: str) -> None:
        """A request answered `status` (a 4xx of REQUEST_REFUSAL_KINDS) for `reason`."""
        kind = REQUEST_REFUSAL_KINDS.get(status)
        if kind is None:
            return
        reason = _printable(reason, _MAX_REASON)  # it may quote what the client sent
        message = "refused a request from %s with %d: %s"
        self.refused(
            kind, message, client, status, reason, status=status, client=client, reason=reason
        )

    def disconnected(self, client: str) -> None:
        """The client closed its connection before sending its whole body; nothing answered."""
        self.refused(
            "disconnected",
            "a client (%s) closed its connection before sending its whole request body",
            client,
            client=client,
        )

    def summary(self) -> dict[str, dict[str, object]]:
        """Per kind: the count, and the status, reason and client of the latest one."""
        return {
            kind: {
                "count": self.counts[kind],
                "status": latest.status,
                "reason": latest.reason,
                "client": latest.client,
            }
            for kind, latest in sorted(self.latest.items())
        }


def client_name(headers: Mapping[str, str], query: Mapping[str, str]) -> str:
    """Who sent a request: the SDK named in `X-Sentry-Auth` (`sentry_client=`), else the
    User-Agent, as printable text of bounded length."""
    for header in ("X-Sentry-Auth", "Authorization"):
        value = headers.get(header)
        if value:
            name = parse_sentry_auth(value).get("sentry_client")
            if name:
                return _printable(name, _MAX_CLIENT_NAME)
    name = query.get("sentry_client") or headers.get("User-Agent")
    return _printable(name, _MAX_CLIENT_NAME) if name else "an unnamed client"


def _printable(text: str, limit: int) -> str:
    """One line of bounded length: a client must not be able to forge log lines."""
    shown = "".join(c if c.isprintable() else "?" for c in text[:limit])
    return shown + "..." if len(text) > limit else shown
