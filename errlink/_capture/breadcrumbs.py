"""Recording breadcrumbs: the client's `before_breadcrumb` and limits, then the scope."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from functools import lru_cache, partial
from typing import Any

from .._log import INTERNAL, logger
from .binding import current_client
from .core import ClientCore
from .event import normalize_breadcrumb
from .levels import normalize_level
from .misuse import ignore
from .pending_crumbs import PendingBreadcrumb
from .scope import push_breadcrumb
from .scrub import Scrubber
from .serialize import Serializer

_DEFAULT_LIMIT = 100


def add_breadcrumb(
    message: str | None = None,
    *,
    category: str | None = None,
    level: str = "info",
    type: str | None = None,
    data: Mapping[str, Any] | None = None,
    timestamp: float | None = None,
    hint: Mapping[str, Any] | None = None,
) -> None:
    """Record a breadcrumb on the current scope; it is sent with the next event.

    Never raises: a `level` that is not a level is logged once and read as ``info``; `data` or
    `hint` that is not a mapping is logged once and left out."""
    crumb: dict[str, Any] = {"timestamp": time.time() if timestamp is None else timestamp}
    if message is not None:
        crumb["message"] = message
    if category is not None:
        crumb["category"] = category
    if type is not None:
        crumb["type"] = type
    crumb["level"] = normalize_level(level, "add_breadcrumb", "info")
    if data:
        items = _mapping("add_breadcrumb", data)
        if items is not None:
            crumb["data"] = items
    try:
        add_breadcrumb_dict(crumb, (_mapping("add_breadcrumb", hint) or {}) if hint else {})
    except Exception:
        logger.warning("errlink internal error in add_breadcrumb", exc_info=True, extra=INTERNAL)


def _mapping(where: str, value: object) -> dict[str, Any] | None:
    if isinstance(value, Mapping):
        try:
            return dict(value)
        except Exception:
            pass
    ignore(where, "a mapping", value)
    return None


def add_breadcrumb_dict(crumb: dict[str, Any], hint: dict[str, Any] | None = None) -> None:
    """Add a breadcrumb, normalized and scrubbed now (once) rather than at every capture."""
    client = current_client()
    if client is not None:
        processed = client.process_breadcrumb(crumb, hint or {})
        limit = client.options.max_breadcrumbs
    else:
        processed = _default_breadcrumb_normalizer()(crumb)
        limit = _DEFAULT_LIMIT
    if processed is not None:
        push_breadcrumb(processed, limit)


def add_pending_breadcrumb(
    client: ClientCore, pending: PendingBreadcrumb, hint: dict[str, Any] | None = None
) -> None:
    """Add `pending` to the current scope for `client` (which an integration found current)."""
    options = client.options
    if options.before_breadcrumb is None:
        push_breadcrumb(pending, options.max_breadcrumbs)  # type: ignore[arg-type]
        return
    crumb = pending.describe()
    if crumb is not None:
        processed = client.process_breadcrumb(crumb, hint or {})
        if processed is not None:
            push_breadcrumb(processed, options.max_breadcrumbs)


@lru_cache(maxsize=1)
def _default_breadcrumb_normalizer() -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """Default limits and scrubbing for breadcrumbs recorded before any client exists."""
    scrubber = Scrubber()
    texts = Serializer(scrubber=scrubber.for_text())
    return partial(normalize_breadcrumb, Serializer(scrubber=scrubber), texts)
