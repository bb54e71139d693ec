"""The logging integration: records become events and breadcrumbs.

``errlink.init()`` captures the records the application's logging lets through without adding a
handler (see `errlink._capture.logs`); add `EventHandler` yourself (for example in Django's
``LOGGING``) to route records from chosen loggers or at other levels.
"""

from ._sdk import EventHandler, level_number

__all__ = ["EventHandler", "level_number"]
