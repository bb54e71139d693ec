"""Who may talk to the collector: the Host names it answers and the browser origins it takes.

The Host check defeats DNS rebinding: a web page whose name is made to resolve to 127.0.0.1
reaches the collector with its own name in `Host`, so only names of the bound address (and
names the user allows) are served. An IP address cannot be rebound, so when the collector
listens on every address (`0.0.0.0` or `::`) any IP literal is accepted too.

The origin check refuses ingestion that a browser sends (a request with `Origin` or
`Sec-Fetch-Site`) unless its origin is allowed: a page must not be able to plant events.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

ANY = "*"
_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
_UNSPECIFIED = frozenset({"", "0.0.0.0", "::"})


@dataclass(frozen=True)
class AccessPolicy:
    host_names: frozenset[str]  # lower case, without port or brackets; "*" accepts any
    any_ip_literal: bool  # listening on every address: any IP literal names it
    browser_origins: frozenset[str] = frozenset()  # "*" accepts any

    @classmethod
    def loopback(cls) -> AccessPolicy:
        return cls.for_address("127.0.0.1")

    @classmethod
    def for_address(
        cls, host: str, allowed_hosts: Iterable[str] = (), browser_origins: Iterable[str] = ()
    ) -> AccessPolicy:
        """The policy of a collector bound to `host`."""
        bound = _host_name(host)
        names = {bound, *(_host_name(name) for name in allowed_hosts)}
        if bound in _UNSPECIFIED or bound == "localhost" or _is_loopback(bound):
            names |= _LOOPBACK_NAMES
        return cls(
            host_names=frozenset(names - {""}),
            any_ip_literal=bound in _UNSPECIFIED,
            browser_origins=frozenset(origin.rstrip("/") for origin in browser_origins),
        )

    def host_allowed(self, host_header: str | None) -> bool:
        if host_header is None:  # HTTP/1.0 without Host: not a browser
            return True
        if ANY in self.host_names:
            return True
        name = _host_name(_without_port(host_header))
        if name in self.host_names:
            return True
        return self.any_ip_literal and _is_ip(name)

    def browser_origin(self, headers: Mapping[str, str]) -> str | None:
        """The origin of a request a browser sent (`null` when hidden), None for other clients."""
        origin = headers.get("Origin")
        if origin is not None:
            return origin
        site = headers.get("Sec-Fetch-Site")
        if site is not None and site != "none":  # "none": typed by the user, not a page
            return "null"
        return None

    def origin_allowed(self, origin: str) -> bool:
        return ANY in self.browser_origins or origin.rstrip("/") in self.browser_origins


def _without_port(host: str) -> str:
    host = host.strip()
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    name, _, _ = host.partition(":") if host.count(":") == 1 else (host, "", "")
    return name


def _host_name(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _is_loopback(name: str) -> bool:
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
