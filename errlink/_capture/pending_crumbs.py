"""Breadcrumbs kept as raw facts until an event needs them (see `PendingBreadcrumb`)."""

from __future__ import annotations

from typing import Any

from .._log import INTERNAL, logger


class PendingBreadcrumb:
    """A breadcrumb recorded as raw facts and described only if an event carries it.

    An HTTP request or a query adds one on every call, while few of them ever reach an event:
    an integration keeps what it saw (a URL, a statement, a status) in a subclass and
    `describe()` builds the breadcrumb dict, scrubbed and bounded, when an event is built (or
    at once, for a `before_breadcrumb` hook to see). What it keeps must be immutable.
    """

    __slots__ = ()

    def describe(self) -> dict[str, Any] | None:
        raise NotImplementedError


def described(crumbs: list[Any]) -> list[dict[str, Any]]:
    """`crumbs` from a scope, with every pending one described (and dropped if it cannot be)."""
    out: list[dict[str, Any]] = []
    for crumb in crumbs:
        if type(crumb) is dict:
            out.append(crumb)
            continue
        value = _describe(crumb)
        if value is not None:
            out.append(value)
    return out


def _describe(pending: PendingBreadcrumb) -> dict[str, Any] | None:
    try:
        return pending.describe()
    except Exception:
        logger.warning("errlink: could not describe a breadcrumb", exc_info=True, extra=INTERNAL)
        return None
