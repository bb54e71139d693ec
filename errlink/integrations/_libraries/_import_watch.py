"""Run a callback right after a module is first imported, without importing it ourselves.

A finder at the front of `sys.meta_path` answers for the watched names only: it asks the other
finders for the real spec and wraps its loader, so the callback runs once the module has
executed. It removes itself when nothing is left to watch.
"""

from __future__ import annotations

import importlib.machinery
import sys
import threading
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from importlib.abc import Loader as _LoaderBase
    from importlib.abc import MetaPathFinder as _FinderBase
else:  # the import system only calls methods; importlib.abc costs start-up time for nothing
    _LoaderBase = _FinderBase = object

from .._sdk import INTERNAL, logger

Callback = Callable[[ModuleType], None]

_lock = threading.Lock()
_callbacks: dict[str, list[Callback]] = {}


def when_imported(name: str, callback: Callback) -> None:
    """Call `callback(module)` once `name` is imported (now, if it already is)."""
    module = sys.modules.get(name)
    if module is None:
        with _lock:
            module = sys.modules.get(name)
            if module is None:
                _callbacks.setdefault(name, []).append(callback)
                if _FINDER not in sys.meta_path:
                    sys.meta_path.insert(0, _FINDER)
                return
    _run(callback, module)


def forget_all() -> None:
    with _lock:
        _callbacks.clear()
        if _FINDER in sys.meta_path:
            sys.meta_path.remove(_FINDER)


def _run(callback: Callback, module: ModuleType) -> None:
    try:
        callback(module)
    except Exception:
        logger.warning(
            "errlink: could not instrument %s", module.__name__, exc_info=True, extra=INTERNAL
        )


class _Finder(_FinderBase):
    def __init__(self) -> None:
        self._busy = threading.local()

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in _callbacks or getattr(self._busy, "name", None) == fullname:
            return None
        self._busy.name = fullname  # the real finders run next, without us
        try:
            spec = _real_spec(self, fullname, path, target)
        finally:
            self._busy.name = None
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _Loader(spec.loader, fullname)
        return spec


def _real_spec(
    watcher: _Finder, fullname: str, path: Sequence[str] | None, target: ModuleType | None
) -> importlib.machinery.ModuleSpec | None:
    for finder in sys.meta_path:
        if finder is watcher:
            continue
        find = getattr(finder, "find_spec", None)
        spec = find(fullname, path, target) if find is not None else None
        if isinstance(spec, importlib.machinery.ModuleSpec):
            return spec
    return None


class _Loader(_LoaderBase):
    def __init__(self, loader: Any, name: str) -> None:
        self._loader = loader
        self._name = name

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)  # type: ignore[no-any-return]

    def exec_module(self, module: ModuleType) -> None:
        module.__loader__ = self._loader  # the module sees its own loader (resources, reload)
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        with _lock:
            callbacks = _callbacks.pop(self._name, [])
            if not _callbacks and _FINDER in sys.meta_path:
                sys.meta_path.remove(_FINDER)
        for callback in callbacks:
            _run(callback, module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


_FINDER = _Finder()
