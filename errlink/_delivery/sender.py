"""Sending one envelope: attach the pending client report, post it, read the answer.

`Sender.send` returns a `Verdict` and settles nothing: what to do with the items it carried
(count them sent, retry, spill, drop) is the pipeline's decision. It keeps the books of the
client report (taken out before the send, put back when the report did not get through) and
feeds the server's answers to the rate limits and to the server's health.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
from datetime import datetime, timezone
from typing import Any

from .._log import INTERNAL, logger
from .._wire.dsn import Dsn
from .._wire.envelope import Envelope, Item
from .._wire.transport import Transport, TransportError, TransportResponse
from .health import ServerHealth
from .kinds import CLIENT_REPORT
from .ratelimit import RateLimits
from .sending import SENDING
from .stats import Stats


class Verdict(enum.Enum):
    DELIVERED = enum.auto()
    RATE_LIMITED = enum.auto()
    REFUSED = enum.auto()
    TRANSIENT = enum.auto()


class Sender:
    def __init__(
        self,
        transport: Transport,
        *,
        stats: Stats,
        rate_limits: RateLimits,
        health: ServerHealth,
        sdk_info: dict[str, Any],
        dsn: Dsn | None,
    ) -> None:
        self.transport = transport
        self._stats = stats
        self._rate_limits = rate_limits
        self._health = health
        self._sdk_info = sdk_info
        self._dsn_text = str(dsn) if dsn is not None else None
        self._secret = dsn.secret_key if dsn is not None else None
        self._logged_refusals: set[object] = set()

    def envelope(
        self,
        event_id: str | None,
        items: list[Item],
        extra_headers: dict[str, Any] | None = None,
    ) -> Envelope:
        headers: dict[str, Any] = {}
        if event_id:
            headers["event_id"] = event_id
        headers["sent_at"] = _rfc3339_now()
        if self._dsn_text is not None:
            headers["dsn"] = self._dsn_text
        headers["sdk"] = self._sdk_info
        if extra_headers:
            headers.update(extra_headers)
        return Envelope(headers, items)

    async def send(self, envelope: Envelope, *, carries_event: bool = False) -> Verdict:
        """Send `envelope` with the pending client report attached; classify the answer."""
        report = None
        if not self._rate_limits.is_limited(CLIENT_REPORT.category):
            report = self._stats.take_client_report()
        if report is not None:
            envelope.add_json(CLIENT_REPORT.item_type, report)
        elif not envelope.items:
            return Verdict.DELIVERED
        started = asyncio.get_running_loop().time()
        try:
            response = await self.transport.send(envelope)
        except TransportError as exc:
            self._restore_report(report)
            self._health.note_failure(str(exc))
            return Verdict.TRANSIENT
        except asyncio.CancelledError:
            self._restore_report(report)
            raise
        except Exception as exc:
            self._restore_report(report)
            self._log_refusal_once(type(exc), "the transport raised %r", exc)
            return Verdict.REFUSED
        status = response.status
        try:
            self._rate_limits.update(status, response.headers)
        except Exception as exc:  # headers from a custom transport may be anything
            logger.debug("errlink: unreadable rate limit headers: %r", exc, extra=INTERNAL)
        if status >= 500:
            self._restore_report(report)
            self._health.note_failure(self._describe_answer(response))
            return Verdict.TRANSIENT
        self._health.note_up()
        if 200 <= status < 300:
            _log_sent(envelope, status, asyncio.get_running_loop().time() - started)
            return Verdict.DELIVERED
        if status == 429:
            self._restore_report(report)
            return Verdict.RATE_LIMITED
        if carries_event:  # the event was likely the problem: the report goes with the next one
            self._restore_report(report)
        self._log_refusal_once(
            status, "the server refused an envelope with %s", self._describe_answer(response)
        )
        return Verdict.REFUSED

    async def send_report_within(self, deadline: float | None) -> None:
        """Send the pending client report in an envelope of its own, by `deadline` (loop time),
        once the server seems up."""
        if not self._stats.has_unreported_drops():
            return
        timeout = None if deadline is None else deadline - asyncio.get_running_loop().time()
        if timeout is not None and timeout <= 0:
            return
        token = SENDING.set(True)  # the send runs in a task that copies this context
        try:
            await asyncio.wait_for(self._send_report_when_up(), timeout)
        except asyncio.TimeoutError:
            pass
        finally:
            SENDING.reset(token)

    async def _send_report_when_up(self) -> None:
        await self._health.wait_while_down()
        await self.send(self.envelope(None, []))

    def _restore_report(self, report: dict[str, Any] | None) -> None:
        if report is not None:
            self._stats.restore_client_report(report)

    def _describe_answer(self, response: TransportResponse) -> str:
        """`HTTP 401: invalid public key`: the status and the server's own reason, if any."""
        reason = server_reason(getattr(response, "body", b""), secret=self._secret)
        return f"HTTP {response.status}: {reason}" if reason else f"HTTP {response.status}"

    def _log_refusal_once(self, key: object, message: str, *args: object) -> None:
        if key in self._logged_refusals:
            return
        self._logged_refusals.add(key)
        logger.warning(
            "errlink: " + message + "; events like it are dropped (logged once)",
            *args,
            extra=INTERNAL,
        )


def server_reason(body: object, *, secret: str | None = None, limit: int = 200) -> str:
    """The reason a server gave in its answer: the `detail` of Sentry's `{"detail": ...}`,
    else the body's text, on one line and shortened ("" when there is none)."""
    if not isinstance(body, bytes):  # a custom transport's answer may carry anything
        return ""
    text = body[: limit * 4].decode("utf-8", "replace")
    try:
        answer = json.loads(body)
    except (ValueError, RecursionError):
        pass
    else:
        if isinstance(answer, dict) and isinstance(answer.get("detail"), str):
            text = answer["detail"]
    text = " ".join(text.split())
    if secret:
        text = text.replace(secret, "***")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _log_sent(envelope: Envelope, status: int, seconds: float) -> None:
    if not logger.isEnabledFor(logging.DEBUG):
        return
    event_id = envelope.headers.get("event_id")
    logger.debug(
        "errlink: sent %s%s (%d bytes): HTTP %s in %.0f ms",
        "+".join(item.type for item in envelope.items),
        f" {event_id}" if event_id else "",
        sum(len(item.payload) for item in envelope.items),
        status,
        seconds * 1000,
        extra=INTERNAL,
    )


def _rfc3339_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
