"""What `AppConfig.ready()` does; safe to run again (settings changed, tests)."""

from __future__ import annotations

import sys
from collections.abc import Mapping

from django.conf import settings  # type: ignore[import-untyped]
from django.core.exceptions import ImproperlyConfigured  # type: ignore[import-untyped]
from django.core.signals import got_request_exception  # type: ignore[import-untyped]
from django.db import connections  # type: ignore[import-untyped]
from django.db.backends.signals import connection_created  # type: ignore[import-untyped]
from django.utils.module_loading import import_string  # type: ignore[import-untyped]

from ..logging import EventHandler
from . import _config
from ._management import tag_command
from ._middleware import on_request_exception
from ._sql import attach, on_connection_created

MIDDLEWARE_PATH = "errlink.integrations.django.ErrlinkMiddleware"


def install() -> None:
    try:
        client, _ = _config.configure(
            getattr(settings, "ERRLINK", None), logging_configured=_logging_has_errlink_handler()
        )
    except _config.SettingsError as exc:
        raise ImproperlyConfigured(str(exc)) from exc
    client.core.add_integration("django")
    got_request_exception.connect(on_request_exception, dispatch_uid="errlink.request_exception")
    connection_created.connect(on_connection_created, dispatch_uid="errlink.sql")
    for connection in connections.all(initialized_only=True):
        attach(connection)
    middleware = list(settings.MIDDLEWARE)
    if MIDDLEWARE_PATH not in middleware:
        # First, so the scope covers every other middleware and what they log.
        settings.MIDDLEWARE = [MIDDLEWARE_PATH, *middleware]
    tag_command(sys.argv)


def _logging_has_errlink_handler() -> bool:
    """Whether ``LOGGING`` already sends records to an errlink `EventHandler`."""
    config = getattr(settings, "LOGGING", None)
    handlers = config.get("handlers") if isinstance(config, Mapping) else None
    if not isinstance(handlers, Mapping):
        return False
    for handler in handlers.values():
        target = handler.get("class") if isinstance(handler, Mapping) else None
        if isinstance(target, str):
            try:
                target = import_string(target)
            except ImportError:
                continue
        if isinstance(target, type) and issubclass(target, EventHandler):
            return True
    return False
