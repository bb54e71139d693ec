"""The one seam through which integrations reach errlink's core.

Integrations import the core's names from here and nowhere else, so the core can be reshaped
without touching them, and what they rely on is listed in one place.
"""

from __future__ import annotations

from typing import Any

from .._async_client import AsyncClient
from .._capture.binding import bind_client, bind_client_here, current_client, request_scope
from .._capture.breadcrumbs import add_breadcrumb_dict
from .._capture.core import ClientCore
from .._capture.logs import EventHandler, level_number
from .._capture.scope import (
    current_scope,
    isolated_scope,
    set_context,
    set_extra,
    set_request,
    set_tag,
    set_transaction,
)
from .._log import INTERNAL, logger
from .._mistakes import name_hint
from .._mistakes import warn as warn_configuration
from .._options import INIT_ONLY_OPTIONS, OPTION_NAMES, ClientOptions, Options, build_options
from .._wire.dsn import Dsn
from ..sync import Client, default_client, init
from ..sync._api import FrameworkHooks, use_framework_hooks

__all__ = [
    "INIT_ONLY_OPTIONS",
    "INTERNAL",
    "OPTION_NAMES",
    "AsyncClient",
    "Client",
    "ClientCore",
    "ClientOptions",
    "Dsn",
    "EventHandler",
    "FrameworkHooks",
    "Options",
    "add_breadcrumb_dict",
    "bind_client",
    "bind_client_here",
    "build_options",
    "current_client",
    "current_scope",
    "default_client",
    "ensure_default_client",
    "init",
    "isolated_scope",
    "level_number",
    "logger",
    "name_hint",
    "request_scope",
    "set_context",
    "set_extra",
    "set_request",
    "set_tag",
    "set_transaction",
    "use_framework_hooks",
    "warn_configuration",
]


def ensure_default_client(
    integration: str, dsn: Any = None, *, replace: bool, **init_args: Any
) -> Client:
    """The process default client, made by ``init(dsn, **init_args)`` when there is none yet or
    when `replace` is true (the integration was given a DSN or options of its own).

    Records `integration` in the `sdk` info of the client's events when it is enabled. The
    explicit extensions hook what they say and no other framework: ``default_integrations``
    is off unless `init_args` say otherwise.
    """
    client = default_client()
    if replace or client is None:
        client = init(dsn, **{"default_integrations": False, **init_args})
    if client.enabled:
        client.core.add_integration(integration)
    return client
