"""Module-level functions: `init()` and the process default client."""

from __future__ import annotations

import atexit
import logging
import sys
import threading
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .._capture.binding import current_client, set_default_client
from .._capture.logs import EventHandler, level_number
from ._bridge import stop_loop_thread
from ._client import Client, close_all

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .._options import ClientOptions
    from .._wire.dsn import Dsn

_default: Client | None = None
_installed_handler: logging.Handler | None = None
_previous_excepthook: Any = None
_previous_threading_excepthook: Any = None


def init(
    dsn: str | Dsn | None = None,
    *,
    logging_event_level: int | str | None = logging.ERROR,
    logging_breadcrumb_level: int | str | None = logging.INFO,
    excepthook: bool = True,
    **options: Unpack[ClientOptions],
) -> Client:
    """Create the process default client and return it.

    Besides the client options, `init` can hook logging (records at `logging_event_level` and
    above become events, those at `logging_breadcrumb_level` and above breadcrumbs; None turns
    either off) and `sys.excepthook`/`threading.excepthook` (uncaught exceptions are reported,
    then the previous hook runs). Events still queued at interpreter exit are flushed for at most
    `shutdown_timeout` seconds. Calling `init` again replaces the previous default client.
    """
    global _default

    event_level = level_number("logging_event_level", logging_event_level)
    breadcrumb_level = level_number("logging_breadcrumb_level", logging_breadcrumb_level)
    client = Client(dsn, **options)
    previous, _default = _default, client
    set_default_client(client.core)
    if previous is not None and previous is not client:
        previous.close()
    _install_logging(
        EventHandler(event_level=event_level, breadcrumb_level=breadcrumb_level)
        if client.enabled and (event_level is not None or breadcrumb_level is not None)
        else None
    )
    if client.enabled and (event_level is not None or breadcrumb_level is not None):
        client.core.add_integration("logging")
    if excepthook and client.enabled:
        _install_excepthooks()
        client.core.add_integration("excepthook")
    return client


def default_client() -> Client | None:
    return _default


def flush(timeout: float | None = None) -> bool:
    """Flush the process default client (see `Client.flush`)."""
    return True if _default is None else _default.flush(timeout)


def close(timeout: float | None = None) -> bool:
    """Close the process default client and undo what `init` hooked. Idempotent."""
    global _default
    client, _default = _default, None
    if client is None:
        return True
    set_default_client(None)
    _install_logging(None)
    _uninstall_excepthooks()
    return client.close(timeout)


def _install_logging(handler: logging.Handler | None) -> None:
    global _installed_handler
    root = logging.getLogger()
    if _installed_handler is not None:
        root.removeHandler(_installed_handler)
    _installed_handler = handler
    if handler is not None:
        root.addHandler(handler)
        if root.level > handler.level:
            # The root logger would filter records before our handler sees them.
            root.setLevel(handler.level)


def _report_uncaught(exc: BaseException) -> None:
    core = current_client()
    if core is not None and not isinstance(exc, KeyboardInterrupt | SystemExit):
        core.capture_exception(exc, handled=False, mechanism="excepthook", level="fatal")


def _excepthook(
    exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
) -> None:
    _report_uncaught(exc)
    (_previous_excepthook or sys.__excepthook__)(exc_type, exc, tb)


def _threading_excepthook(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is not None:
        _report_uncaught(args.exc_value)
    (_previous_threading_excepthook or threading.__excepthook__)(args)


def _install_excepthooks() -> None:
    global _previous_excepthook, _previous_threading_excepthook
    if sys.excepthook is not _excepthook:
        _previous_excepthook = sys.excepthook
        sys.excepthook = _excepthook
    if threading.excepthook is not _threading_excepthook:
        _previous_threading_excepthook = threading.excepthook
        threading.excepthook = _threading_excepthook


def _uninstall_excepthooks() -> None:
    if sys.excepthook is _excepthook:
        sys.excepthook = _previous_excepthook or sys.__excepthook__
    if threading.excepthook is _threading_excepthook:
        threading.excepthook = _previous_threading_excepthook or threading.__excepthook__


def _at_exit() -> None:
    close_all()
    stop_loop_thread()


atexit.register(_at_exit)
