"""The logging integration: records become events and breadcrumbs.

``errlink.init()`` installs `EventHandler` on the root logger; add it yourself (for example in
Django's ``LOGGING``) to route records from other loggers or at other levels.
"""

from ._sdk import EventHandler, level_number

__all__ = ["EventHandler", "level_number"]
