"""Django integration: add the app, configure with a settings dict.

::

    INSTALLED_APPS = [..., "errlink.integrations.django"]
    ERRLINK = {"dsn": "https://key@sentry.example.com/1", "environment": "prod"}

At start-up (`AppConfig.ready`) the app validates ``ERRLINK`` (a bad value fails with
`ImproperlyConfigured` naming the key), creates the process default client (`errlink.init`
semantics: module-level `errlink.capture_exception()` works anywhere, logging is hooked,
uncaught exceptions such as a crashing management command are reported), puts
`ErrlinkMiddleware` first in ``MIDDLEWARE`` unless it is listed already, and hooks Django's
`got_request_exception` signal and its database connections (SQL queries as breadcrumbs).
"""

from .._framework import require

require("django", distribution="django", extra="django", minimum=(4, 2))

from ._middleware import ErrlinkMiddleware  # noqa: E402

__all__ = ["ErrlinkMiddleware"]
