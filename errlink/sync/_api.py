"""Module-level functions: `init()` and the process default client."""

from __future__ import annotations

import atexit
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from .._capture.binding import current_client, set_default_client
from .._capture.logs import hook_logging, level_number, unhook_logging
from .._capture.scope import current_scope
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
        self,
        integrations: Iterable[str] | None,
        default_integrations: bool,
        disabled: Iterable[str] | None = None,
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
    logging_log_level: int | str | None = None,
    excepthook: bool = True,
    integrations: Iterable[str] | None = None,
    default_integrations: bool = True,
    disabled_integrations: Iterable[str] | None = None,
    **options: Unpack[ClientOptions],
) -> Client:
    """Create the process default client and return it.

    Besides the client options, `init` captures log records: those the application's logging
    configuration lets through at `logging_event_level` and above become events, those at
    `logging_breadcrumb_level` and above breadcrumbs (None turns either off), and those at
    `logging_log_level` and above are also sent as structured logs (default None: none); no
    handler is added and no level changed. It hooks `sys.excepthook`/`threading.excepthook`
    (uncaught exceptions are reported, then the previous hook runs), and the global hooks of
    the web frameworks and Celery the application has imported, and the client libraries it uses
    (HTTP clients, databases, Redis; hooked when imported, never imported by errlink):
    `integrations` names the ones to use (default: all of them, none with
    ``default_integrations=False``), `disabled_integrations` those to leave out. Events still
    queued at interpreter exit are flushed for at most `shutdown_timeout` seconds. Calling
    `init` again replaces the previous default client and what it hooked.
    """
    global _default
    event_level = level_number("logging_event_level", logging_event_level)
    breadcrumb_level = level_number("logging_breadcrumb_level", logging_breadcrumb_level)
    log_level = level_number("logging_log_level", logging_log_level)
    hooks = _frameworks
    frameworks = (
        ()
        if hooks is None
        else hooks.chosen(integrations, default_integrations, disabled_integrations)
    )
    client = Client(dsn, **options)
    previous, _default = _default, client
    set_default_client(client.core)
    if previous is not None and previous is not client:
        _end_session(previous, "exited")
        previous.close()
    if hooks is not None:
        hooks.unhook_all()
    levels = (event_level, breadcrumb_level, log_level)
    if client.enabled and any(level is not None for level in levels):
        hook_logging(*levels)
        client.core.add_integration("logging")
    else:
        unhook_logging()
    if excepthook and client.enabled:
        _install_excepthooks()
        client.core.add_integration("excepthook")
    if client.enabled and hooks is not None:
        for name in hooks.hook(frameworks, explicit=integrations is not None):
            client.core.add_integration(name)
    sessions = client.core.sessions
    if sessions is not None:
        sessions.start_process(current_scope())
        _install_sigterm_handler()
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
    _uninstall_sigterm_handler()
    _end_session(client, "exited")
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


def _end_session(client: Client, status: str) -> None:
    sessions = client.core.sessions
    if sessions is not None:
        sessions.end_process(status)


def _on_sigterm(signum: int, frame: object) -> None:
    """Killed: the process session ends abnormal and is sent, then the default action (the
    process dies of SIGTERM, as it would have without errlink)."""
    try:
        client = _default
        if client is not None:
            _end_session(client, "abnormal")
            client.flush()
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)


def _install_sigterm_handler() -> None:
    # Only where SIGTERM would kill the process outright: an application's own handler (a
    # graceful shutdown) is left alone, and its process session ends at exit as usual.
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGTERM"):
        return
    try:
        if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, _on_sigterm):
            signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError):  # pragma: no cover - no signals here (embedded interpreter)
        pass


def _uninstall_sigterm_handler() -> None:
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGTERM"):
        return
    try:
        if signal.getsignal(signal.SIGTERM) is _on_sigterm:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
    except (ValueError, OSError):  # pragma: no cover
        pass


def _at_exit() -> None:
    client = _default
    if client is not None:
        _end_session(client, "exited")
    close_all()
    stop_loop_thread()


atexit.register(_at_exit)
