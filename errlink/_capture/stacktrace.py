"""Stack frames for events: from a traceback or from the live call stack.

Each frame carries its source context (read through a shared, bounded cache), an ``in_app``
verdict and, optionally, its local variables passed through the caller's normalizer.
Everything here runs in the application's thread for every captured error, so the per-frame
work that never changes (path relativisation, ``in_app``) is cached, and nothing raises.

Locals are normalized within a time budget (`LocalsBudget`), newest frame first so that the
frames nearest the error are served first. Past the budget, the remaining frames keep their
place but get ``vars: null`` with ``{"vars": {"": {"rem": [["!limit", "x"]]}}}`` in ``_meta``.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar, Token
from time import perf_counter
from types import CodeType, FrameType, TracebackType
from typing import Any, NamedTuple

from .._log import INTERNAL, logger
from .source import SourceCache, is_pseudo_filename

__all__ = [
    "DEFAULT_MAX_LOCALS_TIME",
    "FrameExtractor",
    "LocalsBudget",
    "Meta",
    "VarsNormalizer",
    "VarsNormalizers",
]

Meta = dict[str, Any]
VarsNormalizer = Callable[[Mapping[str, object], Meta], dict[str, Any]]
# Called once per stack trace: the normalizer it returns serves all of the trace's frames, so that
# they share one set of limits (such as the budget for scanning text for card numbers).
VarsNormalizers = Callable[[], VarsNormalizer]

_LIBRARY_DIR_NAMES = ("site-packages", "dist-packages")

# Seconds one event may spend normalizing frame locals: far above what ordinary stacks take
# (well under a millisecond for ten frames), low enough that a pathological one cannot hold an
# event loop for long.
DEFAULT_MAX_LOCALS_TIME = 0.05


_default_source_cache = SourceCache()


class _Location(NamedTuple):
    """What a frame's (code file, module) pair resolves to; computed once and cached."""

    filename: str
    abs_path: str
    in_app: bool


class LocalsBudget:
    """Seconds left for normalizing locals; one budget serves every stack trace of an event."""

    __slots__ = ("_token", "left")

    def __init__(self, seconds: float) -> None:
        self.left = seconds

    def __enter__(self) -> LocalsBudget:
        self._token: Token[LocalsBudget | None] = _event_budget.set(self)
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        _event_budget.reset(self._token)


# The budget of the event being built in this thread or task, if its builder opened one.
_event_budget: ContextVar[LocalsBudget | None] = ContextVar("errlink_locals_budget", default=None)


class _Cut(NamedTuple):
    frames: list[tuple[FrameType, int | None]]
    total: int
    omitted_start: int  # index (in the full list) of the first dropped frame; == total if none


def _module_matches(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def _library_prefixes() -> tuple[str, ...]:
    prefixes: set[str] = set()
    paths = sysconfig.get_paths()
    for key in ("stdlib", "platstdlib"):
        path = paths.get(key)
        if path:
            for variant in (os.path.abspath(path), os.path.realpath(path)):
                prefixes.add(variant.rstrip(os.sep) + os.sep)
    return tuple(prefixes)


_LIBRARY_PREFIXES = _library_prefixes()
_LIBRARY_DIR_MARKERS = tuple(f"{os.sep}{name}{os.sep}" for name in _LIBRARY_DIR_NAMES)


def _is_library_path(abs_path: str) -> bool:
    if abs_path.startswith("<frozen "):
        return True
    if any(marker in abs_path for marker in _LIBRARY_DIR_MARKERS):
        return True
    return abs_path.startswith(_LIBRARY_PREFIXES)


if sys.version_info >= (3, 11):

    def _function_name(code: CodeType) -> str:
        return code.co_qualname

else:  # pragma: no cover - exercised on 3.10 only

    def _function_name(code: CodeType) -> str:
        return code.co_name


class FrameExtractor:
    """Turns tracebacks and live stacks into the protocol's ``stacktrace`` dicts.

    ``in_app``: a frame whose module matches an ``in_app_include`` or ``in_app_exclude`` prefix
    (on dotted boundaries) gets that verdict; the longest matching prefix wins, and a prefix listed
    in both lists counts as included. Other frames are library code (``in_app: False``) when they
    come from the standard library or a ``site-packages``/``dist-packages`` directory.

    Local variables of module-level frames are never sent: they are the module's globals.
    """

    def __init__(
        self,
        *,
        vars_normalizers: VarsNormalizers | None,
        include_locals: bool = True,
        in_app_include: Sequence[str] = (),
        in_app_exclude: Sequence[str] = (),
        max_frames: int = 100,
        source_cache: SourceCache | None = None,
        max_locals_time: float = DEFAULT_MAX_LOCALS_TIME,
    ) -> None:
        self._vars_normalizers = vars_normalizers if include_locals else None
        self._max_locals_time = max_locals_time
        rules = [(prefix, True) for prefix in in_app_include if prefix]
        rules += [(prefix, False) for prefix in in_app_exclude if prefix]
        # Longest prefix first; for an equal prefix the include rule (True) sorts first.
        rules.sort(key=lambda rule: (-len(rule[0]), not rule[1]))
        self._in_app_rules = tuple(rules)
        self._max_frames = max(2, max_frames)
        self._source = _default_source_cache if source_cache is None else source_cache
        self._locations: dict[tuple[str, str | None], _Location] = {}
        self._sys_path: list[str] = []
        self._import_roots: tuple[str, ...] = ()

    def locals_budget(self) -> LocalsBudget:
        """A budget to share among the stack traces made inside ``with`` (one event's exception
        chain); outside one, each stack trace has a budget of its own."""
        return LocalsBudget(self._max_locals_time)

    def from_traceback(self, tb: TracebackType | None, meta: Meta) -> dict[str, Any]:
        """Sentry ``stacktrace`` dict: ``{'frames': [...oldest call first...]}``.

        When the traceback is longer than ``max_frames``, only the oldest and newest halves are
        kept; ``frames_omitted: [start, end]`` (indexes into the full list, end exclusive) and the
        ``_meta`` original length ``{'frames': {'': {'len': total}}}`` say what was cut.
        """
        try:
            return self._stacktrace(self._cut(_walk_traceback(tb)), meta)
        except Exception:
            logger.debug(
                "errlink: could not extract frames from a traceback", exc_info=True, extra=INTERNAL
            )
            return {"frames": []}

    def from_stack(
        self,
        frame: FrameType | None = None,
        meta: Meta | None = None,
        skip_modules: tuple[str, ...] = ("errlink",),
    ) -> dict[str, Any]:
        """Stacktrace of the live call stack (for attach_stacktrace on messages), oldest first,
        without errlink's own frames (any frame whose module is under one of ``skip_modules``).
        """
        try:
            start = sys._getframe() if frame is None else frame
            newest_first = _walk_stack(start, skip_modules)
            return self._stacktrace(self._cut(reversed(newest_first)), {} if meta is None else meta)
        except Exception:
            logger.debug(
                "errlink: could not extract frames from the stack", exc_info=True, extra=INTERNAL
            )
            return {"frames": []}

    def _cut(self, frames: Iterable[tuple[FrameType, int | None]]) -> _Cut:
        """Keep the oldest and newest halves of ``frames`` without materialising the middle."""
        keep_head = self._max_frames // 2
        head: list[tuple[FrameType, int | None]] = []
        tail: deque[tuple[FrameType, int | None]] = deque(maxlen=self._max_frames - keep_head)
        total = 0
        for item in frames:
            if total < keep_head:
                head.append(item)
            else:
                tail.append(item)
            total += 1
        head.extend(tail)
        omitted_start = keep_head if total > self._max_frames else total
        return _Cut(head, total, omitted_start)

    def _stacktrace(self, cut: _Cut, meta: Meta) -> dict[str, Any]:
        self._check_sys_path()
        frames_meta: Meta = {}
        frames = [self._frame(frame, lineno) for frame, lineno in cut.frames]
        new_normalizer = self._vars_normalizers
        if new_normalizer is not None:
            self._add_vars(cut.frames, frames, frames_meta, new_normalizer())
        stacktrace: dict[str, Any] = {"frames": frames}
        if cut.total > len(frames):
            omitted_end = cut.omitted_start + cut.total - len(frames)
            stacktrace["frames_omitted"] = [cut.omitted_start, omitted_end]
            frames_meta[""] = {"len": cut.total}
        if frames_meta:
            meta["frames"] = frames_meta
        return stacktrace

    def _frame(self, frame: FrameType, lineno: int | None) -> dict[str, Any]:
        code = frame.f_code
        f_globals = frame.f_globals
        module = f_globals.get("__name__")
        if not isinstance(module, str):
            module = None
        location = self._locations.get((code.co_filename, module))
        if location is None:
            location = self._locate(code.co_filename, module)

        result: dict[str, Any] = {
            "filename": location.filename,
            "abs_path": location.abs_path,
            "function": _function_name(code),
        }
        if module is not None:
            result["module"] = module
        if lineno is not None and lineno > 0:
            result["lineno"] = lineno
            pre, line, post = self._source.context(location.abs_path, lineno, f_globals)
            if line is not None:
                result["pre_context"] = pre
                result["context_line"] = line
                result["post_context"] = post
        result["in_app"] = location.in_app
        return result

    def _add_vars(
        self,
        raw: list[tuple[FrameType, int | None]],
        frames: list[dict[str, Any]],
        frames_meta: Meta,
        normalizer: VarsNormalizer,
    ) -> None:
        """Each frame's ``vars``, newest frame first, within the event's locals budget."""
        budget = _event_budget.get()
        deadline = perf_counter() + (self._max_locals_time if budget is None else budget.left)
        over = False
        for index in range(len(frames) - 1, -1, -1):
            frame = raw[index][0]
            try:
                f_locals = frame.f_locals
                if f_locals is frame.f_globals:
                    continue  # module level: its locals are the module's globals
                if over or perf_counter() >= deadline:
                    over = True
                    frames[index]["vars"] = None  # Relay keeps the remark of a null, not a gap
                    frames_meta[str(index)] = {"vars": {"": {"rem": [["!limit", "x"]]}}}
                    continue
                vars_meta: Meta = {}
                frames[index]["vars"] = normalizer(f_locals, vars_meta)
                if vars_meta:
                    frames_meta[str(index)] = {"vars": vars_meta}
            except Exception:
                logger.debug(
                    "errlink: could not normalize the locals of a frame",
                    exc_info=True,
                    extra=INTERNAL,
                )
        if budget is not None:
            budget.left = deadline - perf_counter()

    def _check_sys_path(self) -> None:
        if sys.path != self._sys_path:
            self._sys_path = list(sys.path)
            roots = {_import_root(entry) for entry in self._sys_path if isinstance(entry, str)}
            self._import_roots = tuple(sorted(roots, key=len, reverse=True))
            self._locations = {}

    def _locate(self, co_filename: str, module: str | None) -> _Location:
        if is_pseudo_filename(co_filename):
            abs_path = filename = co_filename
        else:
            abs_path = os.path.abspath(co_filename)
            filename = self._relative_filename(abs_path, module)
        location = _Location(filename, abs_path, self._in_app(module, abs_path))
        if len(self._locations) >= 4096:  # code with ever-new file names must not grow this forever
            self._locations = {}
        self._locations[(co_filename, module)] = location
        return location

    def _relative_filename(self, abs_path: str, module: str | None) -> str:
        for root in self._import_roots:  # longest first
            if abs_path.startswith(root):
                return abs_path[len(root) :]
        parts = abs_path.split(os.sep)
        depth = 1
        if module and module != "__main__":
            depth = module.count(".") + 1
            if parts[-1].startswith("__init__."):
                depth += 1
        return os.sep.join(parts[-depth:]) if len(parts) > depth else abs_path

    def _in_app(self, module: str | None, abs_path: str) -> bool:
        if module is not None:
            if _module_matches(module, "errlink"):
                return False  # errlink's own frames, even from an editable install
            for prefix, verdict in self._in_app_rules:
                if _module_matches(module, prefix):
                    return verdict
        return not _is_library_path(abs_path)


def _import_root(sys_path_entry: str) -> str:
    root = os.path.abspath(sys_path_entry or os.curdir)
    return root.rstrip(os.sep) + os.sep


def _walk_traceback(tb: TracebackType | None) -> Iterator[tuple[FrameType, int | None]]:
    while tb is not None:
        yield tb.tb_frame, tb.tb_lineno
        tb = tb.tb_next


def _walk_stack(
    frame: FrameType | None, skip_modules: tuple[str, ...]
) -> list[tuple[FrameType, int | None]]:
    newest_first: list[tuple[FrameType, int | None]] = []
    while frame is not None:
        module = frame.f_globals.get("__name__")
        skipped = isinstance(module, str) and any(
            _module_matches(module, prefix) for prefix in skip_modules
        )
        if not skipped:
            newest_first.append((frame, frame.f_lineno))
        frame = frame.f_back
    return newest_first
