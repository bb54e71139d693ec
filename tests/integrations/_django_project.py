"""Django for the tests: configured once per process, SQLite in a temporary file, migrated.

A file rather than ``:memory:`` because a real server's threads and the async views' worker
threads each get their own connection, and they must all see the same tables.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import _django_settings
import django
from django.apps import apps
from django.conf import settings
from django.core.management import call_command
from django.test.utils import override_settings

import errlink
from errlink.sync import Client

ERRLINK_MIDDLEWARE = "errlink.integrations.django.ErrlinkMiddleware"


def setup_django() -> None:
    if settings.configured:
        return
    db_dir = tempfile.mkdtemp(prefix="errlink-django-tests-")
    atexit.register(shutil.rmtree, db_dir, ignore_errors=True)
    values = {
        name: getattr(_django_settings, name) for name in dir(_django_settings) if name.isupper()
    }
    values["DATABASES"] = {
        "default": {**values["DATABASES"]["default"], "NAME": os.path.join(db_dir, "db.sqlite3")}
    }
    settings.configure(**values)
    django.setup()
    call_command("migrate", verbosity=0)


@contextmanager
def errlink_configured(**setting: Any) -> Iterator[Client]:
    """Run the app's start-up again with ``ERRLINK = setting``; close the client afterwards."""
    with override_settings(ERRLINK=setting):
        apps.get_app_config("errlink").ready()
        client = errlink.sync.default_client()
        assert client is not None
        try:
            yield client
        finally:
            errlink.close(timeout=5)


@contextmanager
def errlink_off() -> Iterator[None]:
    """The same project without errlink: no client, and the middleware left out."""
    errlink.close(timeout=5)
    without = [entry for entry in settings.MIDDLEWARE if entry != ERRLINK_MIDDLEWARE]
    with override_settings(MIDDLEWARE=without):
        yield
