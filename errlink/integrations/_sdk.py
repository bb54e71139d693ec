"""The one seam through which integrations reach errlink's core.

Integrations import the core's names from here and nowhere else, so the core can be reshaped
without touching them, and what they rely on is listed in one place.
"""

from __future__ import annotations

from typing import Any

from .._async_client import AsyncClient, LibraryHooks, library_hooks, use_library_hooks
from .._capture.binding import (
    bind_client,
    bind_client_here,
    current_client,
    leave_own_scope,
    request_ended,
    request_scope,
)
from .._capture.breadcrumbs import add_breadcrumb_dict, add_pending_breadcrumb
from .._capture.checkins import (
    check_slug,
    interval_schedule,
    monitor_config,
    new_check_in_id,
    send_checkin,
    slugify,
)
from .._capture.core import ClientCore
from .._capture.logs import EventHandler, level_number
from .._capture.pending_crumbs import PendingBreadcrumb
from .._capture.scope import (
    RequestScope,
    Scope,
    current_scope,
    enter_own_scope,
    fill_own_scope,
    install_scope,
    isolated_scope,
    new_scope,
    push_breadcrumb,
    restore_scope,
    set_context,
    set_extra,
    set_request,
    set_tag,
    set_transaction,
)
from .._capture.sensitive import FILTERED
from .._capture.trace import IncomingTrace, PropagationContext, TraceSource
from .._delivery.sending import SENDING
from .._log import INTERNAL, logger
from .._mistakes import name_hint
from .._mistakes import warn as warn_configuration
from .._options import INIT_ONLY_OPTIONS, OPTION_NAMES, ClientOptions, Options, build_options
from .._trace_api import current_trace, trace_headers
from .._wire.dsn import Dsn
from ..sync import Client, default_client, init
from ..sync._api import FrameworkHooks, use_framework_hooks

__all__ = [
    "FILTERED",
    "INIT_ONLY_OPTIONS",
    "INTERNAL",
    "OPTION_NAMES",
    "SENDING",
    "AsyncClient",
    "Client",
    "ClientCore",
    "ClientOptions",
    "Dsn",
    "EventHandler",
    "FrameworkHooks",
    "IncomingTrace",
    "LibraryHooks",
    "Options",
    "PendingBreadcrumb",
    "PropagationContext",
    "RequestScope",
    "Scope",
    "TraceSource",
    "add_breadcrumb_dict",
    "add_pending_breadcrumb",
    "bind_client",
    "bind_client_here",
    "build_options",
    "check_slug",
    "current_client",
    "current_scope",
    "current_trace",
    "default_client",
    "ensure_default_client",
    "enter_own_scope",
    "fill_own_scope",
    "init",
    "install_scope",
    "interval_schedule",
    "isolated_scope",
    "leave_own_scope",
    "level_number",
    "logger",
    "monitor_config",
    "name_hint",
    "new_check_in_id",
    "new_scope",
    "push_breadcrumb",
    "request_ended",
    "request_scope",
    "restore_scope",
    "send_checkin",
    "set_context",
    "set_extra",
    "set_request",
    "set_tag",
    "set_transaction",
    "slugify",
    "trace_headers",
    "use_framework_hooks",
    "use_library_hooks",
    "uses_integration",
    "warn_configuration",
]


def uses_integration(core: ClientCore, name: str) -> bool:
    """Whether `core` enabled the integration `name` (it is in its events' `sdk` info)."""
    return name in core.integrations


def ensure_default_client(
    integration: str, dsn: Any = None, *, replace: bool, **init_args: Any
) -> Client:
    """The process default client, made by ``init(dsn, **init_args)`` when there is none yet or
    when `replace` is true (the integration was given a DSN or options of its own).

    Records `integration` in the `sdk` info of the client's events when it is enabled. The
    explicit extensions hook what they say and no other framework: ``default_integrations``
    is off unless `init_args` say otherwise. The client libraries (HTTP clients, databases)
    stay on, as with `init()` and `AsyncClient`.
    """
    client = default_client()
    if replace or client is None:
        client = init(dsn, **{"default_integrations": False, **init_args})
        libraries = library_hooks()
        if (
            client.enabled
            and libraries is not None
            and "integrations" not in init_args
            and not init_args.get("default_integrations")
        ):
            chosen = libraries.chosen_libraries(init_args.get("disabled_integrations"), "errlink")
            libraries.enable_libraries(client.core, chosen)
    if client.enabled:
        client.core.add_integration(integration)
    return client
