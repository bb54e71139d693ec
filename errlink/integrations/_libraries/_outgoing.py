"""What the HTTP client hooks share: whether to record a request, its breadcrumb, its headers.

A hook asks `client_for()` as a request goes out: None, after one context-variable read, when
no client is current; also inside errlink's own sends (`SENDING`) and for a client that did not
enable the library. Then `start()` (None for a request to the client's own DSN host: errlink
never reports on itself), and `Outgoing.finish()` when the response (or failure) comes back.

The breadcrumb never carries URL credentials, and the query string's secret-looking values are
filtered by the client's scrubber before `before_breadcrumb` sees it. Trace headers go only to
URLs matching one of the client's `trace_propagation_targets` (none by default), and never
replace a header the caller set.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from .._sdk import (
    INTERNAL,
    ClientCore,
    Options,
    PendingBreadcrumb,
    add_pending_breadcrumb,
    current_trace,
    logger,
    trace_headers,
)
from ._gate import client_for as client_for

_MAX_DECIDED = 1024
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def start(
    core: ClientCore, category: str, method: str, url: object, host: str | None = None
) -> Outgoing | None:
    """The request to `url` to record for `core` (from `client_for`), or None when it goes to
    errlink's own server. Never raises.

    `url` is the absolute URL as text, or an object (a yarl or httpx URL, a function of no
    arguments) that gives it: it is made text only when needed (a request to the DSN's host,
    propagation targets to search, an event to describe the request in). `host`, when the
    caller knows it, spares that for requests to other hosts."""
    try:
        plan = _plan(core.options)
        text = url if type(url) is str else None
        if plan.own and (host is None or host.lower().strip("[]") in plan.own_hosts):
            text = text or url_text(url)
            if _netloc(text).lower() in plan.own:
                return None
        propagate = False
        if plan.targets:
            text = text or url_text(url)
            propagate = _is_target(plan, text)
        return Outgoing(core, category, method, text or url, propagate)
    except Exception:
        logger.warning(
            "errlink: could not record an outgoing request", exc_info=True, extra=INTERNAL
        )
        return None


def url_text(url: object) -> str:
    return url() if callable(url) else str(url)


def _netloc(url: str) -> str:
    """``host:port`` of an absolute URL, without credentials."""
    netloc = url.split("/", 3)[2] if "://" in url else ""
    return netloc.rpartition("@")[2] if "@" in netloc else netloc


def _is_target(plan: _Plan, url: str) -> bool:
    known = plan.decided.get(url)
    if known is None:
        known = _matches(plan, url)
        if len(plan.decided) >= _MAX_DECIDED:
            plan.decided.clear()
        plan.decided[url] = known
    return known


def _matches(plan: _Plan, url: str) -> bool:
    scheme, netloc, path, query, _ = urlsplit(url)
    target = f"{scheme}://{netloc.rpartition('@')[2]}{path}"  # credentials are never matched
    if query:
        target = f"{target}?{query}"
    return any(pattern.search(target) for pattern in plan.targets)


class Outgoing(PendingBreadcrumb):
    """One outgoing request, recorded as it happens and described only if an event needs it:
    the URL is split and scrubbed then, not on every request."""

    __slots__ = (
        "category",
        "core",
        "error",
        "method",
        "propagate",
        "seconds",
        "started",
        "status",
        "timestamp",
        "url",
    )

    def __init__(
        self, core: ClientCore, category: str, method: str, url: object, propagate: bool
    ) -> None:
        self.core = core
        self.category = category
        self.method = method
        self.url = url
        self.propagate = propagate
        self.status: int | None = None
        self.error: str | None = None
        self.seconds = 0.0
        self.timestamp = 0.0
        self.started = time.perf_counter()

    def headers(self, present: Callable[[str], bool]) -> dict[str, str]:
        """The trace headers to add, for a URL that is a propagation target: those that
        `present` (a case-insensitive lookup of the caller's headers) says are not set yet."""
        if not self.propagate:
            return {}
        try:
            return {
                name: value
                for name, value in _trace_headers(self.core).items()
                if not present(name)
            }
        except Exception:
            logger.warning("errlink: could not make trace headers", exc_info=True, extra=INTERNAL)
            return {}

    def finish(
        self,
        status: int | None = None,
        error: BaseException | None = None,
        hint: dict[str, Any] | None = None,
    ) -> None:
        """Record the breadcrumb: the response's `status`, or the `error` the request failed
        with. Never raises."""
        try:
            self.seconds = time.perf_counter() - self.started
            self.timestamp = time.time()
            self.status = status
            if error is not None:
                text = str(error)
                self.error = f"{type(error).__name__}: {text}" if text else type(error).__name__
            add_pending_breadcrumb(self.core, self, hint)
        except Exception:
            logger.warning(
                "errlink: could not record an outgoing request", exc_info=True, extra=INTERNAL
            )

    def describe(self) -> dict[str, Any]:
        scrubber = self.core.builder.scrubber
        bound = self.core.options.max_value_length
        raw = url_text(self.url)
        scheme, netloc, path, query, fragment = urlsplit(raw)
        if "@" in netloc:
            netloc = netloc.rpartition("@")[2]  # credentials never leave the process
        url = scrubber.scrub_text(f"{scheme}://{netloc}{path}"[:bound])  # a card in a path
        data: dict[str, Any] = {"method": self.method.upper()[:bound], "url": url}
        status = self.status
        if status is not None:
            data["status_code"] = status
        data["duration_ms"] = round(self.seconds * 1000.0, 3)
        if query:
            query = scrubber.scrub_query_string(query)
            data["http.query"] = query[:bound]
        if fragment:
            data["http.fragment"] = scrubber.scrub_text(fragment[:bound])
        if self.error is not None:
            reason = self.error
            if raw in reason:  # the URL as sent may carry secrets
                reason = reason.replace(raw, f"{url}?{query}" if query else url)
            data["reason"] = scrubber.scrub_text(reason[:bound])
        if self.error is not None or (status is not None and status >= 500):
            level = "error"
        elif status is not None and status >= 400:
            level = "warning"
        else:
            level = "info"
        return {
            "timestamp": self.timestamp,
            "type": "http",
            "category": self.category,
            "level": level,
            "data": data,
        }


# The last headers made, by trace and client: the requests of one scope share them.
_last_headers: tuple[object, ClientCore, dict[str, str]] | None = None


def _trace_headers(core: ClientCore) -> dict[str, str]:
    global _last_headers
    context = current_trace()
    last = _last_headers
    if last is not None and last[0] is context and last[1] is core:
        return last[2]
    headers = trace_headers()
    _last_headers = (context, core, headers)
    return headers


class _Plan:
    """What a client's options say about outgoing requests, worked out once: the DSN's
    ``host:port`` spellings (requests there are errlink's business) and the targets."""

    __slots__ = ("decided", "own", "own_hosts", "targets")

    def __init__(self, options: Options) -> None:
        dsn = options.dsn
        own: set[str] = set()
        if dsn is not None:
            host = dsn.host.lower()
            hosts = {host, f"[{host}]"} if ":" in host else {host}
            default = _DEFAULT_PORTS.get(dsn.scheme)
            port = dsn.port or default
            for name in hosts:
                own.add(f"{name}:{port}")
                if port == default:
                    own.add(name)
        self.own = frozenset(own)
        self.own_hosts = frozenset() if dsn is None else frozenset({dsn.host.lower().strip("[]")})
        self.targets = tuple(re.compile(pattern) for pattern in options.trace_propagation_targets)
        self.decided: dict[str, bool] = {}  # by URL: most programs call a few URLs again and again


_plans: dict[int, tuple[Options, _Plan]] = {}
_plans_lock = threading.Lock()
_MAX_PLANS = 64


def _plan(options: Options) -> _Plan:
    entry = _plans.get(id(options))
    if entry is not None and entry[0] is options:
        return entry[1]
    plan = _Plan(options)
    with _plans_lock:
        if len(_plans) >= _MAX_PLANS:
            _plans.clear()  # clients come and go rarely; a full table is stale ones
        _plans[id(options)] = (options, plan)  # holding `options` keeps its id unique
    return plan
