"""What `errlink.init()` hooks in the frameworks an application imported: the sentry-sdk habit.

``errlink.init(dsn)`` in an app that already imported Flask, Django, Celery or Quart connects
receivers to the framework's process-wide signals, so an unhandled error is reported with its
request (or task), transaction, ``handled: false`` and the framework's mechanism, without the
explicit extension. A framework counts as used when its module is in `sys.modules`: errlink
never imports a framework on its own, except one named in ``init(integrations=[...])``.

Sanic, Tornado, aiohttp.web, Starlette, FastAPI and Litestar turn errors into responses inside
each app, where no global hook reaches, and their `AsyncClient` belongs on the server's loop:
for them `init()` warns once (`IntegrationWarning`), naming the line to add.

It also enables the client libraries errlink instruments (`.._libraries`: HTTP clients,
databases, Redis), named alongside the frameworks: hooked once imported, never imported here.

The explicit extensions stay the best path; an app served by one is left to it (the receivers
skip its requests, or the client's dedupe drops the second report of the same exception).

`init()` lives in a lower layer (`errlink.sync`), which must not import this one: this module
registers itself there (`use_framework_hooks`) when ``errlink`` is imported.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .._libraries import LIBRARIES
from .._libraries import NAMES as LIBRARY_NAMES
from .._libraries import enable as enable_libraries
from .._sdk import (
    INTERNAL,
    ClientCore,
    FrameworkHooks,
    LibraryHooks,
    logger,
    use_framework_hooks,
    use_library_hooks,
)

__all__ = ["NAMES", "IntegrationWarning", "chosen", "hook", "unhook_all"]


class IntegrationWarning(UserWarning):
    """errlink.init() cannot report a framework's errors with their request by itself."""


Undo = Callable[[], None]


@dataclass(frozen=True)
class _Framework:
    label: str
    module: str  # in `sys.modules` once the application uses the framework
    hook: str | None = None  # the module here whose `hook()` connects the receivers
    line: str = ""  # without a hook: the line the application adds instead
    source: str = ""  # ... and where it comes from


_ADD_APP = "Errlink(app, dsn=...)"
FRAMEWORKS = {
    "flask": _Framework("Flask", "flask", hook="_flask"),
    "django": _Framework("Django", "django", hook="_django"),
    "celery": _Framework("Celery", "celery", hook="_celery"),
    "quart": _Framework("Quart", "quart", hook="_quart"),
    "sanic": _Framework("Sanic", "sanic", line=_ADD_APP, source="errlink.integrations.sanic"),
    "tornado": _Framework(
        "Tornado", "tornado.web", line=_ADD_APP, source="errlink.integrations.tornado"
    ),
    "aiohttp": _Framework(
        "aiohttp.web", "aiohttp.web", line=_ADD_APP, source="errlink.integrations.aiohttp"
    ),
    "starlette": _Framework(
        "Starlette", "starlette", line=_ADD_APP, source="errlink.integrations.starlette"
    ),
    "fastapi": _Framework(
        "FastAPI", "fastapi", line=_ADD_APP, source="errlink.integrations.fastapi"
    ),
    "litestar": _Framework(
        "Litestar",
        "litestar",
        line="Litestar(..., plugins=[ErrlinkPlugin(dsn=...)])",
        source="errlink.integrations.litestar",
    ),
}
NAMES = tuple(FRAMEWORKS)
ALL_NAMES = NAMES + LIBRARY_NAMES
# Controlled by init()'s own keyword arguments rather than by name.
_OTHER_SWITCHES = {
    "logging": "logging_event_level=None, logging_breadcrumb_level=None",
    "excepthook": "excepthook=False",
}

_undo: list[Undo] = []
_advised: set[str] = set()


def chosen(
    integrations: Iterable[str] | None,
    default_integrations: bool,
    disabled: Iterable[str] | None = None,
) -> tuple[str, ...]:
    """The frameworks and libraries `init()` may hook, validated: `integrations` if given, else
    all of them (none with ``default_integrations=False``), less the `disabled` ones."""
    if not isinstance(default_integrations, bool):
        raise TypeError(
            f"errlink.init(): default_integrations must be True or False, "
            f"not {default_integrations!r}"
        )
    off = _names(disabled, "disabled_integrations", "errlink.init()") if disabled else ()
    if integrations is None:
        names = list(ALL_NAMES if default_integrations else ())
    else:
        names = _names(integrations, "integrations", "errlink.init()")
        for name in names:
            framework = FRAMEWORKS.get(name)
            if (
                framework is not None
                and framework.hook is not None
                and framework.module not in sys.modules
                and name not in off
            ):
                _import_named(name, framework)
    return tuple(name for name in dict.fromkeys(names) if name not in off)


def _names(names: Iterable[str], option: str, where: str) -> list[str]:
    if isinstance(names, str | bytes) or not isinstance(names, Iterable):
        raise TypeError(
            f"{where}: {option} must be a list of names such as ['flask', 'httpx'], not {names!r}"
        )
    listed = list(names)
    for name in listed:
        if name not in FRAMEWORKS and name not in LIBRARIES:
            raise ValueError(_unknown(name, option, where))
    return listed


def hook(names: Iterable[str], *, explicit: bool) -> list[str]:
    """Connect the receivers of the frameworks among `names` the application uses; warn once
    about those that need their extension (named in `explicit` ones even if not imported yet).
    Returns the names hooked, with the libraries enabled (hooked now or when imported)."""
    hooked: list[str] = []
    libraries = [name for name in names if name in LIBRARIES]
    for name in names:
        framework = FRAMEWORKS.get(name)
        if framework is None:
            continue
        used = framework.module in sys.modules
        if framework.hook is None:
            # FastAPI's advice covers the Starlette it is built on.
            if explicit or (used and not (name == "starlette" and "fastapi" in sys.modules)):
                _advise(name, framework)
        elif used and _connected(framework):
            hooked.append(name)
    if libraries:
        hooked.extend(enable_libraries(libraries))
    return hooked


def _connected(framework: _Framework) -> bool:
    try:
        module = importlib.import_module(f"{__name__}.{framework.hook}")
        _undo.append(module.hook())
    except Exception:
        logger.warning("errlink: could not hook %s", framework.label, exc_info=True, extra=INTERNAL)
        return False
    return True


def unhook_all() -> None:
    """Disconnect every receiver `hook` connected."""
    while _undo:
        undo = _undo.pop()
        try:
            undo()
        except Exception:
            logger.warning("errlink: could not unhook a framework", exc_info=True, extra=INTERNAL)


def _unknown(name: object, option: str = "integrations", where: str = "errlink.init()") -> str:
    switch = _OTHER_SWITCHES.get(name) if isinstance(name, str) else None
    if switch is not None:
        return (
            f"{where}: {option} names frameworks and libraries; {name} is always on, "
            f"turn it off with errlink.init(..., {switch})"
        )
    return (
        f"{where}: unknown integration {name!r} in {option}; "
        f"allowed: {', '.join(map(repr, ALL_NAMES))}"
    )


def _import_named(name: str, framework: _Framework) -> None:
    try:
        importlib.import_module(framework.module)
    except ImportError as exc:
        raise ImportError(
            f"errlink.init(): integrations names {name!r}, but {framework.label} cannot be "
            f"imported: {exc}"
        ) from exc


def _advise(name: str, framework: _Framework) -> None:
    if name in _advised:
        return
    _advised.add(name)
    warnings.warn(
        f"errlink.init() cannot report {framework.label} errors with their request: "
        f"{framework.label} handles them inside the app, where no global hook reaches. "
        f"Add `{framework.line}` from {framework.source} where the app is created. "
        f"(Done already? Leave {name!r} out of errlink.init(integrations=[...]) "
        "or pass default_integrations=False.)",
        IntegrationWarning,
        stacklevel=_outside_errlink(),
    )


def _outside_errlink() -> int:
    """The `stacklevel` of the first caller outside errlink (the application's init() line)."""
    level = 2  # the caller of `_advise`
    frame = sys._getframe(2)
    while frame.f_back is not None and _is_errlink(frame.f_globals.get("__name__", "")):
        frame = frame.f_back
        level += 1
    return level


def _is_errlink(module: str) -> bool:
    return module == "errlink" or module.startswith("errlink.")


class _Hooks:
    chosen = staticmethod(chosen)
    hook = staticmethod(hook)
    unhook_all = staticmethod(unhook_all)


class _LibraryHooks:
    @staticmethod
    def chosen_libraries(disabled: Iterable[str] | None, where: str) -> tuple[str, ...]:
        off = _names(disabled, "disabled_integrations", where) if disabled else ()
        return tuple(name for name in LIBRARY_NAMES if name not in off)

    @staticmethod
    def enable_libraries(core: ClientCore, names: Iterable[str]) -> None:
        for name in enable_libraries(names):
            core.add_integration(name)


HOOKS: FrameworkHooks = _Hooks()
use_framework_hooks(HOOKS)
LIBRARY_HOOKS: LibraryHooks = _LibraryHooks()
use_library_hooks(LIBRARY_HOOKS)
