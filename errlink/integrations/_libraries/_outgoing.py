"""What the HTTP client hooks share: whether to record a request, its breadcrumb, its headers.

A hook calls `begin()` as a request goes out, and `Outgoing.finish()` when the response (or
failure) comes back. `begin()` is None, after two context-variable reads, when no client is
current; also inside errlink's own sends (`SENDING`) and for a client that did not enable the
library. A request to the client's own DSN host carries no trace headers and its breadcrumb
is dropped when described: errlink never reports on itself. `finish()` pushes the breadcrumb
with `push_breadcrumb` (an append to the unit of work's trail); they run on every request.

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
    SENDING,
    ClientCore,
    Options,
    PendingBreadcrumb,
    add_pending_breadcrumb,
    current_client,
    current_scope,
    current_trace,
    logger,
    push_breadcrumb,
    trace_headers,
)

_MAX_DECIDED = 1024
_new_object = object.__new__
_perf_counter = time.perf_counter
_sending = SENDING.get
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def begin(integration: str, kind: type[Outgoing], method: str, url: object) -> Outgoing | None:
    """The request to `url` to record as a `kind` for the client current here, if it enabled
    `integration`; None otherwise. Never raises.

    `url` is the absolute URL as text, or what `kind.text` makes it from (a yarl or httpx URL,
    a function of no arguments): it is made text only when needed (propagation targets to
    search, an event to describe the request in). A request to the DSN's host and port is
    errlink's business: it never carries trace headers, and its breadcrumb is dropped when
    described (the check needs the URL's text, which most requests never need)."""
    # `client_for()` spelled out, as is the rest: this runs on every request.
    core = current_scope().client or current_client()
    if core is None or _sending() or integration not in core.integrations:
        return None
    try:
        propagate = False
        if core.options.trace_propagation_targets:
            plan = _plan(core.options)
            url = url if type(url) is str else kind.text(url)
            propagate = not _is_own(plan, url) and _is_target(plan, url)
        # Filled here rather than through `kind(...)`: a class call with an `__init__` takes
        # CPython's slow path.
        outgoing = _new_object(kind)
        outgoing.core = core
        outgoing.method = method
        outgoing.url = url
        outgoing.propagate = propagate
        outgoing.started = _perf_counter()
        return outgoing
    except Exception:
        logger.warning(
            "errlink: could not record an outgoing request", exc_info=True, extra=INTERNAL
        )
        return None


def _is_own(plan: _Plan, url: str) -> bool:
    """Whether `url` (absolute) goes to the DSN's host and port."""
    return _netloc(url).lower() in plan.own


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
    the URL is split and scrubbed then, not on every request. A subclass per library names
    the breadcrumb's category and what `before_breadcrumb`'s hint calls `finish`'s
    `subject`."""

    __slots__ = ("core", "ended", "error", "method", "propagate", "started", "status", "url")
    category = "http"
    subject_key: str | None = None
    # Made by `begin()`, which fills core, method, url, propagate and started (the request's
    # `perf_counter`). status, error and ended are set by finish(), before the breadcrumb
    # exists anywhere describe() could reach it.
    core: ClientCore
    method: str
    url: object
    propagate: bool
    started: float
    ended: float
    status: int | None
    error: str | None

    @staticmethod
    def text(url: object) -> str:
        """`url` (as given to `begin`) as text."""
        return url_text(url)

    def headers(self, present: Callable[[str], bool]) -> dict[str, str]:
        """The trace headers to add, for a URL that is a propagation target: those that
        `present` (a case-insensitive lookup of the caller's headers) says are not set yet."""
        if not self.propagate:
            return {}
        try:
            return {name: value for name, value in self.header_items() if not present(name)}
        except Exception:
            logger.warning("errlink: could not make trace headers", exc_info=True, extra=INTERNAL)
            return {}

    def header_items(self) -> tuple[tuple[str, str], ...]:
        """The trace headers (lower-case names) for a request to a propagation target."""
        return _trace_headers(self.core)[0]

    def encoded_headers(self) -> tuple[tuple[bytes, bytes], ...]:
        """`header_items()` in bytes (ASCII)."""
        return _trace_headers(self.core)[1]

    def finish(
        self,
        status: int | None = None,
        error: BaseException | None = None,
        subject: object = None,
        response: object = None,
    ) -> None:
        """Record the breadcrumb: the response's `status`, or the `error` the request failed
        with. `subject` (the request or connection) and `response` are for the hint of a
        `before_breadcrumb` hook only. Never raises."""
        try:
            self.ended = _perf_counter()
            self.status = status
            if error is None:
                self.error = None
            else:
                text = str(error)
                self.error = f"{type(error).__name__}: {text}" if text else type(error).__name__
            core = self.core
            options = core.options
            if options.before_breadcrumb is None:
                push_breadcrumb(self, options.max_breadcrumbs)  # type: ignore[arg-type]
                return
            hint = {}
            if self.subject_key is not None and subject is not None:
                hint[self.subject_key] = subject
            if response is not None:
                hint["response"] = response
            add_pending_breadcrumb(core, self, hint)
        except Exception:
            logger.warning(
                "errlink: could not record an outgoing request", exc_info=True, extra=INTERNAL
            )

    def describe(self) -> dict[str, Any] | None:
        raw = self.text(self.url)
        if _is_own(_plan(self.core.options), raw):
            return None
        scrubber = self.core.builder.scrubber
        bound = self.core.options.max_value_length
        scheme, netloc, path, query, fragment = urlsplit(raw)
        if "@" in netloc:
            netloc = netloc.rpartition("@")[2]  # credentials never leave the process
        url = scrubber.scrub_text(f"{scheme}://{netloc}{path}"[:bound])  # a card in a path
        data: dict[str, Any] = {"method": self.method.upper()[:bound], "url": url}
        status = self.status
        if status is not None:
            data["status_code"] = status
        data["duration_ms"] = round((self.ended - self.started) * 1000.0, 3)
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
        # The wall clock when the request ended, from the monotonic one read then: one clock
        # read per request instead of two.
        timestamp = time.time() - (_perf_counter() - self.ended)
        return {
            "timestamp": timestamp,
            "type": "http",
            "category": self.category,
            "level": level,
            "data": data,
        }


# The last headers made, by trace and client: the requests of one scope share them.
_Headers = tuple[tuple[tuple[str, str], ...], tuple[tuple[bytes, bytes], ...]]
_last_headers: tuple[object, ClientCore, _Headers] | None = None


def _trace_headers(core: ClientCore) -> _Headers:
    global _last_headers
    context = current_trace()
    last = _last_headers
    if last is not None and last[0] is context and last[1] is core:
        return last[2]
    headers: list[tuple[str, str]] = []
    encoded: list[tuple[bytes, bytes]] = []
    for name, value in trace_headers().items():
        # Third-party baggage passes through from an incoming request: a value that is not
        # one ASCII line would break (or inject into) the request, so it is left out.
        if value.isascii() and "\r" not in value and "\n" not in value and "\0" not in value:
            headers.append((name, value))
            encoded.append((name.encode("ascii"), value.encode("ascii")))
    made = (tuple(headers), tuple(encoded))
    _last_headers = (context, core, made)
    return made


class _Plan:
    """What a client's options say about outgoing requests, worked out once: the DSN's
    ``host:port`` spellings (requests there are errlink's business) and the targets."""

    __slots__ = ("decided", "own", "targets")

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
        self.targets = tuple(re.compile(pattern) for pattern in options.trace_propagation_targets)
        self.decided: dict[str, bool] = {}  # by URL: most programs call a few URLs again and again


_plans: dict[int, tuple[Options, _Plan]] = {}
_plans_lock = threading.Lock()
_MAX_PLANS = 64


def _plan(options: Options) -> _Plan:
    entry = _plans.get(id(options))
    if entry is None or entry[0] is not options:
        entry = (options, _Plan(options))
        with _plans_lock:
            if len(_plans) >= _MAX_PLANS:
                _plans.clear()  # clients come and go rarely; a full table is stale ones
            _plans[id(options)] = entry  # holding `options` keeps its id unique
    return entry[1]
