"""Module-level functions: `init()` and the process default client."""

from __future__ import annotations

import atexit
import logging
import sys
import threading
from collections.abc import Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from .._capture.binding import current_client, set_default_client
from .._capture.logs import hook_logging, level_number, unhook_logging
from ._bridge import stop_loop_thread
from ._client import Client, close_all

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .._options import ClientOptions
    from .._wire.dsn import Dsn

_default: Client | None = None
_previous_excepthook: Any = None
_previous_threading_excepthook: Any = None


class FrameworkHooks(Protocol):
    """What `init` asks of the integrations layer about the frameworks an application uses.

    That layer sits above this one, so it registers itself (`use_framework_hooks`) when
    errlink is imported, rather than being imported from here.
    """

    def chosen(
        self, integrations: Iterable[str] | None, default_integrations: bool
    ) -> tuple[str, ...]: ...

    def hook(self, names: Iterable[str], *, explicit: bool) -> list[str]: ...

    def unhook_all(self) -> None: ...


_frameworks: FrameworkHooks | None = None


def use_framework_hooks(hooks: FrameworkHooks) -> None:
    global _frameworks
    _frameworks = hooks


def init(
    dsn: str | Dsn | None = None,
    *,
    logging_event_level: int | str | None = logging.ERROR,
    logging_breadcrumb_level: int | str | None = logging.INFO,
    excepthook: bool = True,
    integrations: Iterable[str] | None = None,
    default_integrations: bool = True,
    **options: Unpack[ClientOptions],
) -> Client:
    """Create the process default client and return it.

    Besides the client options, `init` captures log records: those the application's logging
    configuration lets through at `logging_event_level` and above become events, those at
    `logging_breadcrumb_level` and above breadcrumbs (None turns either off); no handler is
    added and no level changed. It hooks `sys.excepthook`/`threading.excepthook` (uncaught
    exceptions are reported, then the previous hook runs), and the global hooks of the web
    frameworks and Celery the application has imported: `integrations` names the ones to use
    (default: all of them, none with ``default_integrations=False``). Events still queued at
    interpreter exit are flushed for at most `shutdown_timeout` seconds. Calling `init` again
    replaces the previous default client and what it hooked.
    """
    global _default
    event_level = level_number("logging_event_level", logging_event_level)
    breadcrumb_level = level_number("logging_breadcrumb_level", logging_breadcrumb_level)
    hooks = _frameworks
    frameworks = () if hooks is None else hooks.chosen(integrations, default_integrations)
    client = Client(dsn, **options)
    previous, _default = _default, client
    set_default_client(client.core)
    if previous is not None and previous is not client:
        previous.close()
    if hooks is not None:
        hooks.unhook_all()
    if client.enabled and (event_level is not None or breadcrumb_level is not None):
        hook_logging(event_level, breadcrumb_level)
        client.core.add_integration("logging")
    else:
        unhook_logging()
    if excepthook and client.enabled:
        _install_excepthooks()
        client.core.add_integration("excepthook")
    if client.enabled and hooks is not None:
        for name in hooks.hook(frameworks, explicit=integrations is not None):
            client.core.add_integration(name)
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
    unhook_logging()
    _uninstall_excepthooks()
    if _frameworks is not None:
        _frameworks.unhook_all()
    return client.close(timeout)


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
