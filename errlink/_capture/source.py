"""Source lines around a frame's line, cached per file and revalidated cheaply."""

from __future__ import annotations

import io
import linecache
import os
import threading
import time
import tokenize
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, NamedTuple

from .._log import INTERNAL, logger

_MAX_SOURCE_BYTES = 5 * 1024 * 1024


class _CachedSource(NamedTuple):
    signature: tuple[int, int] | None  # (mtime_ns, size); None when read through a loader
    checked_at: float
    lines: list[str] | None


class SourceCache:
    """Thread-safe cache of source lines per file, invalidated when its (mtime, size) changes.

    Falls back to the module's loader (``module_globals['__loader__'].get_source``) for zip
    imports and the like, and to :mod:`linecache` entries for pseudo files such as IPython cells.
    Bounded: beyond ``max_files``, the files least recently (re)validated are forgotten.

    A file is stat()ed again only when its entry is older than ``revalidate_after`` seconds: a
    burst of errors then costs no system call per frame, and an edited file is picked up within
    that window.
    """

    def __init__(
        self, *, max_files: int = 256, max_line_length: int = 200, revalidate_after: float = 1.0
    ) -> None:
        self._max_files = max(1, max_files)
        self._max_line_length = max(4, max_line_length)
        self._revalidate_after = revalidate_after
        self._files: OrderedDict[str, _CachedSource] = OrderedDict()
        self._lock = threading.Lock()

    def context(
        self,
        abs_path: str,
        lineno: int,
        module_globals: Mapping[str, Any] | None = None,
        lines: int = 5,
    ) -> tuple[list[str], str | None, list[str]]:
        """Return (pre_context, context_line, post_context) around the 1-based ``lineno``.

        Missing or unreadable source gives ``([], None, [])``; this never raises.
        """
        cached = self._files.get(abs_path)  # a lone read needs no lock; changes take it
        if cached is not None and time.monotonic() - cached.checked_at < self._revalidate_after:
            source = cached.lines
        else:
            try:
                source = self._load(abs_path, module_globals, cached)
            except Exception:
                logger.debug(
                    "errlink: could not read source of %r", abs_path, exc_info=True, extra=INTERNAL
                )
                return [], None, []
        if source is None or not 0 < lineno <= len(source):
            return [], None, []
        index = lineno - 1
        return (
            source[max(0, index - lines) : index],
            source[index],
            source[index + 1 : index + 1 + lines],
        )

    def _load(
        self,
        abs_path: str,
        module_globals: Mapping[str, Any] | None,
        cached: _CachedSource | None,
    ) -> list[str] | None:
        if is_pseudo_filename(abs_path):
            return self._from_linecache(abs_path) or self._from_loader(abs_path, module_globals)

        now = time.monotonic()
        signature = _file_signature(abs_path)
        if cached is not None and cached.signature == signature:
            self._store(abs_path, cached._replace(checked_at=now))
            return cached.lines

        lines = None
        if signature is not None and signature[1] <= _MAX_SOURCE_BYTES:
            lines = self._read_file(abs_path)
        if lines is None:
            lines = self._from_loader(abs_path, module_globals)
        self._store(abs_path, _CachedSource(signature, now, lines))
        return lines

    def _store(self, abs_path: str, entry: _CachedSource) -> None:
        with self._lock:
            self._files[abs_path] = entry
            self._files.move_to_end(abs_path)
            while len(self._files) > self._max_files:
                self._files.popitem(last=False)

    def _read_file(self, abs_path: str) -> list[str] | None:
        try:
            with open(abs_path, "rb") as file:
                data = file.read(_MAX_SOURCE_BYTES + 1)
        except (OSError, ValueError):
            return None
        if len(data) > _MAX_SOURCE_BYTES:
            return None
        try:
            encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
            text = data.decode(encoding, errors="replace")
        except (SyntaxError, LookupError):
            text = data.decode("utf-8", errors="replace")
        return self._split(text)

    def _from_loader(
        self, abs_path: str, module_globals: Mapping[str, Any] | None
    ) -> list[str] | None:
        if not module_globals:
            return None
        try:
            module_file = module_globals.get("__file__")
            # The frame's globals may belong to another module than the code's file (exec'd or
            # generated code); only trust the loader when it describes this very file.
            if isinstance(module_file, str) and os.path.abspath(module_file) != abs_path:
                return None
            loader = module_globals.get("__loader__")
            name = module_globals.get("__name__")
            get_source = getattr(loader, "get_source", None)
            if get_source is None or not isinstance(name, str):
                return None
            text = get_source(name)
        except Exception:
            logger.debug(
                "errlink: loader could not provide source of %r",
                abs_path,
                exc_info=True,
                extra=INTERNAL,
            )
            return None
        return self._split(text) if isinstance(text, str) else None

    def _from_linecache(self, abs_path: str) -> list[str] | None:
        entry = linecache.cache.get(abs_path)
        if entry is None or len(entry) < 3 or not isinstance(entry[2], list):
            return None
        return self._split("".join(line for line in entry[2] if isinstance(line, str)))

    def _split(self, text: str) -> list[str]:
        # Not str.splitlines(): it also breaks on form feeds and other characters that do not end
        # a line for Python, which would shift every line number after them.
        lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        limit = self._max_line_length
        return [line if len(line) <= limit else line[: limit - 3] + "..." for line in lines]


def _file_signature(abs_path: str) -> tuple[int, int] | None:
    try:
        stat = os.stat(abs_path)
    except (OSError, ValueError):
        return None
    return stat.st_mtime_ns, stat.st_size


def is_pseudo_filename(filename: str) -> bool:
    return filename.startswith("<") and filename.endswith(">")
