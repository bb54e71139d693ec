"""errlink: an asyncio-first error-reporting client for the Sentry ingestion protocol.

Async applications use `AsyncClient`; everything else uses `init()` and the module-level
capture functions, which reach the client bound to the current context (an integration's
request, an `async with AsyncClient(...)` block) or else the process default from `init()`.
"""

import logging as _logging

from ._api import capture_event, capture_exception, capture_feedback, capture_message
from ._async_client import AsyncClient
from ._capture.breadcrumbs import add_breadcrumb
from ._capture.scope import (
    add_attachment,
    clear_attachments,
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
from ._capture.structured_logs import logger_api as logger
from ._delivery.attachment import Attachment
from ._delivery.stats import StatsSnapshot
from ._mistakes import ConfigurationWarning
from ._monitors import capture_checkin, monitor
from ._trace_api import continue_trace, current_trace, trace_headers
from ._version import __version__
from ._wire.dsn import Dsn
from ._wire.transport import Transport, TransportError, TransportResponse

# Importing it also registers with init() what it hooks in the frameworks an app imported.
from .integrations._auto import IntegrationWarning
from .sync import Client, close, flush, init

# A library leaves output to the application: without logging configured (or debug=True),
# errlink's warnings go nowhere rather than to Python's last-resort stderr handler.
_logging.getLogger("errlink").addHandler(_logging.NullHandler())

__all__ = [
    "AsyncClient",
    "Attachment",
    "Client",
    "ConfigurationWarning",
    "Dsn",
    "IntegrationWarning",
    "StatsSnapshot",
    "Transport",
    "TransportError",
    "TransportResponse",
    "__version__",
    "add_attachment",
    "add_breadcrumb",
    "capture_checkin",
    "capture_event",
    "capture_exception",
    "capture_feedback",
    "capture_message",
    "clear_attachments",
    "clear_breadcrumbs",
    "close",
    "continue_trace",
    "current_trace",
    "flush",
    "init",
    "logger",
    "monitor",
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
    "trace_headers",
]
