"""Client libraries errlink instruments: HTTP clients, databases, Redis.

Each library has a module here whose ``hook()`` connects errlink to the library's own extension
point (or, where it has none, patches one place) and returns what undoes it. What a hook records
(breadcrumbs, trace headers) goes to the client current where the library is used: a hook
costs a context-variable read when no client is, and nothing at all before the library is
used.

`enable` never imports a library: one already imported is hooked at once, any other the moment
the application imports it (`_import_watch`). The hooks are process-wide and idempotent, so
several clients share them.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .._sdk import INTERNAL, logger
from . import _import_watch

Undo = Callable[[], None]


@dataclass(frozen=True)
class Library:
    label: str
    module: str  # hooked once this is in `sys.modules`
    hook: str  # the module here whose `hook()` connects errlink


LIBRARIES: dict[str, Library] = {
    "aiohttp_client": Library("aiohttp client", "aiohttp", "aiohttp_client"),
    "httpx": Library("httpx", "httpx", "httpx"),
    "http_client": Library("http.client (requests, urllib3)", "http.client", "http_client"),
    "sqlalchemy": Library("SQLAlchemy", "sqlalchemy", "sqlalchemy"),
    "asyncpg": Library("asyncpg", "asyncpg", "asyncpg"),
    "redis": Library("redis-py", "redis", "redis"),
}
NAMES = tuple(LIBRARIES)

_lock = threading.Lock()
_hooked: dict[str, Undo] = {}
_watching: set[str] = set()


def enable(names: Iterable[str]) -> list[str]:
    """Hook the libraries among `names` already imported, and watch for the others that are
    installed. Returns the names enabled (hooked or watched); unknown names and libraries that
    are not installed are left out."""
    enabled: list[str] = []
    for name in names:
        library = LIBRARIES.get(name)
        if library is None:
            continue
        if library.module in sys.modules:
            enabled.append(name)
            _hook(name)
        elif _installed(library.module):
            enabled.append(name)
            with _lock:
                if name in _hooked or name in _watching:
                    continue
                _watching.add(name)
            _import_watch.when_imported(library.module, _hook_on_import(name))
    return enabled


def _installed(module: str) -> bool:
    """Whether `module` can be imported, found without importing it (only its parent
    package, for a dotted name)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _hook_on_import(name: str) -> _import_watch.Callback:
    return lambda _module: _hook(name)


def _hook(name: str) -> None:
    with _lock:
        if name in _hooked:
            return
        _watching.discard(name)
        library = LIBRARIES[name]
        try:
            module = importlib.import_module(f"{__name__}.{library.hook}")
            _hooked[name] = module.hook()
        except Exception:
            logger.warning(
                "errlink: could not instrument %s", library.label, exc_info=True, extra=INTERNAL
            )


def hooked() -> list[str]:
    with _lock:
        return sorted(_hooked)


def disable_all() -> None:
    """Undo every hook and stop watching imports (tests; a library stays hooked otherwise)."""
    with _lock:
        undos = list(_hooked.values())
        _hooked.clear()
        _watching.clear()
    _import_watch.forget_all()
    for undo in undos:
        _undo_quietly(undo)


def _undo_quietly(undo: Undo) -> None:
    try:
        undo()
    except Exception:
        logger.warning("errlink: could not unhook a library", exc_info=True, extra=INTERNAL)
