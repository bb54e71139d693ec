"""Keeping a whole encoded event under the server's size limit.

This runs in the sender, off the capture path, on events that are already bounded value by value
(see `_serialize`), but whose sum can still be too large: many frames with locals, a hundred
breadcrumbs, a big request body. Parts are dropped from the least to the most useful until the
encoded event fits, and each drop is recorded in ``event["_meta"]`` the way Relay records its own:

* a removed value becomes ``null`` with ``{"": {"rem": [["!limit", "x"]]}}`` at its place in
  ``_meta`` (Relay keeps annotations of null values, not of absent keys);
* a list shortened from the front (breadcrumbs) gets ``{"": {"len": ORIGINAL_LEN}}``.

The exception type and value, and the position of every frame (filename, function, line number),
are never touched. If they alone exceed the limit, the oversize encoding is returned as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

DEFAULT_MAX_EVENT_BYTES = 1_000_000

Path = tuple[str | int, ...]
Encoder = Callable[[Any], bytes]

_NULL_BYTES = 4  # what a removed value still costs: `null`
_META_BYTES = 40  # rough cost of one `{"": {"rem": [["!limit", "x"]]}}` entry with its path


def fit_event(
    event: dict[str, Any], encode: Encoder, max_bytes: int = DEFAULT_MAX_EVENT_BYTES
) -> bytes:
    """Encode the event; if over ``max_bytes``, trim (in order) frame ``vars`` (biggest first),
    breadcrumbs (oldest first), request ``data``, ``extra``, then other bulky optional parts,
    re-encoding until it fits. Returns the encoded bytes.

    ``event`` is changed in place where it is trimmed; nested containers on the way to a trimmed
    part are copied first, so data shared with a scope or another event is left alone.
    """
    encoded = encode(event)
    if len(encoded) <= max_bytes:
        return encoded
    trimmer = _Trimmer(event, encode, max_bytes, encoded)
    for trim in (
        _trim_frame_vars,
        _trim_breadcrumbs,
        _trim_request_data,
        _trim_extra,
        _trim_other_parts,
    ):
        if trim(trimmer):
            break
    return trimmer.encoded


class _Trimmer:
    """The event being trimmed, its current size (estimated between encodings) and its meta."""

    def __init__(self, event: dict[str, Any], encode: Encoder, max_bytes: int, encoded: bytes):
        self.event = event
        self.encode = encode
        self.max_bytes = max_bytes
        self.encoded = encoded
        self.size = len(encoded)
        self._owned: set[int] = {id(event)}  # containers already copied (or the caller's own)
        self._stale = False  # `encoded` no longer matches `event`

    # -- measuring ------------------------------------------------------------------------------

    def size_of(self, value: Any) -> int:
        return len(self.encode(value))

    def fits(self) -> bool:
        """True once the event really fits; encodes only when the estimate says it may."""
        if self.size > self.max_bytes:
            return False
        return self.settle()

    def settle(self) -> bool:
        if self._stale:
            self.encoded = self.encode(self.event)
            self.size = len(self.encoded)
            self._stale = False
        return self.size <= self.max_bytes

    # -- changing -------------------------------------------------------------------------------

    def remove(self, path: Path, size: int) -> None:
        """Replace the value at ``path`` by null and say so in ``_meta``."""
        parent = self._writable(path[:-1])
        parent[path[-1]] = None
        node = self._meta_parent(path)
        node[str(path[-1])] = {"": {"rem": [["!limit", "x"]]}}
        self._changed(size - _NULL_BYTES - _META_BYTES)

    def drop_oldest(self, path: Path, count: int, size: int) -> None:
        """Remove the first ``count`` items of the list at ``path``."""
        items: list[Any] = self._writable(path)
        original = len(items)
        del items[:count]
        node = self._meta_parent(path).setdefault(str(path[-1]), {})
        # Annotations of the items that stay move down with them; the others go.
        for key in [key for key in node if key]:
            annotations = node.pop(key)
            if key.isdigit() and int(key) >= count:
                node[str(int(key) - count)] = annotations
        node.setdefault("", {}).setdefault("len", original)
        self._changed(size - _META_BYTES)

    def _changed(self, saved: int) -> None:
        self.size -= max(saved, 0)
        self._stale = True

    def _writable(self, path: Path) -> Any:
        """The container at ``path``, after copying every container on the way that is not
        known to be ours."""
        node: Any = self.event
        for key in path:
            child = node[key]
            if id(child) not in self._owned:
                child = dict(child) if isinstance(child, dict) else list(child)
                node[key] = child
                self._owned.add(id(child))
            node = child
        return node

    def _meta_parent(self, path: Path) -> dict[str, Any]:
        node: dict[str, Any] = self.event.setdefault("_meta", {})
        for key in path[:-1]:
            child = node.get(str(key))
            if not isinstance(child, dict):
                child = node[str(key)] = {}
            node = child
        return node


# -- what to trim, in order -----------------------------------------------------------------------


def _remove_biggest_first(trimmer: _Trimmer, paths: list[Path]) -> bool:
    """Remove the values at ``paths``, biggest first, until the event fits."""
    sized = sorted(
        ((trimmer.size_of(_get(trimmer.event, path)), path) for path in paths),
        key=lambda entry: entry[0],
        reverse=True,
    )
    for size, path in sized:
        if trimmer.fits():
            return True
        if size <= _NULL_BYTES + _META_BYTES:
            break  # the rest are so small that removing them would add bytes, not save them
        trimmer.remove(path, size)
    return trimmer.settle()


def _trim_frame_vars(trimmer: _Trimmer) -> bool:
    paths = [
        (*frame, "vars")
        for frame in _frames(trimmer.event)
        if _get(trimmer.event, (*frame, "vars"))
    ]
    return _remove_biggest_first(trimmer, paths)


def _trim_breadcrumbs(trimmer: _Trimmer) -> bool:
    event = trimmer.event
    crumbs = event.get("breadcrumbs")
    if isinstance(crumbs, dict) and isinstance(crumbs.get("values"), list):
        path: Path = ("breadcrumbs", "values")
    elif isinstance(crumbs, list):
        path = ("breadcrumbs",)
    else:
        return trimmer.settle()
    while not trimmer.fits():
        items = _get(event, path)
        if not items:
            return False
        excess = trimmer.size - trimmer.max_bytes
        count = 0
        saved = 0
        while count < len(items) and saved < excess:
            saved += trimmer.size_of(items[count]) + 1  # the comma
            count += 1
        trimmer.drop_oldest(path, max(count, 1), saved)
        trimmer.settle()
    return True


def _trim_request_data(trimmer: _Trimmer) -> bool:
    request = trimmer.event.get("request")
    if isinstance(request, dict) and request.get("data") is not None:
        return _remove_biggest_first(trimmer, [("request", "data")])
    return trimmer.settle()


def _trim_extra(trimmer: _Trimmer) -> bool:
    extra = trimmer.event.get("extra")
    if not isinstance(extra, dict):
        return trimmer.settle()
    paths: list[Path] = [("extra", key) for key, value in extra.items() if value is not None]
    return _remove_biggest_first(trimmer, paths)


def _trim_other_parts(trimmer: _Trimmer) -> bool:
    event = trimmer.event
    paths: list[Path] = []
    contexts = event.get("contexts")
    if isinstance(contexts, dict):
        paths.extend(("contexts", name) for name, value in contexts.items() if value is not None)
    paths.extend((name,) for name in ("modules", "extra") if event.get(name) is not None)
    request = event.get("request")
    if isinstance(request, dict):
        paths.extend(
            ("request", name)
            for name in ("headers", "cookies", "env", "query_string")
            if request.get(name) is not None
        )
    paths.extend(
        (*frame, name)
        for frame in _frames(event)
        for name in ("pre_context", "post_context", "context_line")
        if _get(event, (*frame, name)) is not None
    )
    return _remove_biggest_first(trimmer, paths)


# -- finding parts --------------------------------------------------------------------------------


def _get(data: Any, path: Path) -> Any:
    try:
        for key in path:
            data = data[key]
    except (KeyError, IndexError, TypeError):
        return None
    return data


def _frames(event: dict[str, Any]) -> Iterator[Path]:
    """Paths of every frame dict: in exceptions, in threads and in a top-level stacktrace."""
    stacktraces: list[Path] = [("stacktrace",)]
    for interface in ("exception", "threads"):
        values = _get(event, (interface, "values"))
        if isinstance(values, list):
            stacktraces.extend(
                (interface, "values", index, "stacktrace") for index in range(len(values))
            )
    for stacktrace in stacktraces:
        frames = _get(event, (*stacktrace, "frames"))
        if isinstance(frames, list):
            for index, frame in enumerate(frames):
                if isinstance(frame, dict):
                    yield (*stacktrace, "frames", index)
