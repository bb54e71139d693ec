"""errlink: an asyncio-first error-reporting client for the Sentry ingestion protocol."""

from ._client import AsyncClient
from ._dsn import Dsn
from ._scope import (
    add_breadcrumb,
    clear_breadcrumbs,
    new_scope,
    remove_tag,
    set_context,
    set_extra,
    set_fingerprint,
    set_level,
    set_tag,
    set_tags,
    set_transaction,
    set_user,
)
from ._stats import StatsSnapshot
from ._transport import Transport, TransportError, TransportResponse
from ._version import __version__
from .sync import (
    Client,
    capture_event,
    capture_exception,
    capture_message,
    close,
    flush,
    init,
)

__all__ = [
    # clients
    "AsyncClient",
    "Client",
    "Dsn",
    "StatsSnapshot",
    # custom transports
    "Transport",
    "TransportError",
    "TransportResponse",
    "__version__",
    # scope
    "add_breadcrumb",
    # capture through the current client (sync facade; safe inside coroutines too)
    "capture_event",
    "capture_exception",
    "capture_message",
    "close",
    "flush",
    "init",
    "clear_breadcrumbs",
    "new_scope",
    "remove_tag",
    "set_context",
    "set_extra",
    "set_fingerprint",
    "set_level",
    "set_tag",
    "set_tags",
    "set_transaction",
    "set_user",
]
