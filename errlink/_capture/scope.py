"""Per-context scope data: tags, user, contexts, extra, breadcrumbs. Data only.

A `Scope` is immutable; every setter installs a modified copy in a ContextVar. Because asyncio
tasks and `contextvars.copy_context()` copy the variable's *value* (the reference), copy-on-write
is what keeps a child task's changes from leaking into its parent, and concurrent requests on one
loop from seeing each other's data. Breadcrumbs are a persistent linked list so that adding one
is O(1) no matter how many are kept.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Any, NamedTuple

from .._options import LEVELS

_EMPTY: Mapping[str, Any] = {}
_new_object = object.__new__


class _Crumb(NamedTuple):
    value: dict[str, Any]
    previous: _Crumb | None
    length: int


def _crumbs_from(values: list[dict[str, Any]]) -> _Crumb | None:
    node: _Crumb | None = None
    for length, value in enumerate(values, start=1):
        node = _Crumb(value, node, length)
    return node


class Scope:
    __slots__ = (
        "_breadcrumbs",
        "contexts",
        "extra",
        "fingerprint",
        "level",
        "request",
        "tags",
        "transaction",
        "user",
    )

    def __init__(self) -> None:
        self.tags: Mapping[str, str] = _EMPTY
        self.user: Mapping[str, Any] | None = None
        self.contexts: Mapping[str, Any] = _EMPTY
        self.extra: Mapping[str, Any] = _EMPTY
        self.level: str | None = None
        self.fingerprint: tuple[str, ...] | None = None
        self.transaction: str | None = None
        self.request: Mapping[str, Any] | None = None
        self._breadcrumbs: _Crumb | None = None

    def copy(self) -> Scope:
        clone = Scope.__new__(Scope)
        for name in Scope.__slots__:
            setattr(clone, name, getattr(self, name))
        return clone

    def breadcrumbs(self, limit: int) -> list[dict[str, Any]]:
        """The newest `limit` breadcrumbs, oldest first."""
        out: list[dict[str, Any]] = []
        node = self._breadcrumbs
        while node is not None and len(out) < limit:
            out.append(node.value)
            node = node.previous
        out.reverse()
        return out

    def with_breadcrumb(self, crumb: dict[str, Any], limit: int) -> Scope:
        clone = self.copy()
        previous = self._breadcrumbs
        length = previous.length + 1 if previous else 1
        if length > 2 * limit:
            # Compact now and then so the list stays bounded: amortised O(1) per breadcrumb.
            clone._breadcrumbs = _crumbs_from([*self.breadcrumbs(limit - 1), crumb])
        else:
            clone._breadcrumbs = _Crumb(crumb, previous, length)
        return clone

    def without_breadcrumbs(self) -> Scope:
        clone = self.copy()
        clone._breadcrumbs = None
        return clone


# Scopes are never mutated in place (setters install copies), so one shared default is safe.
_scope: ContextVar[Scope] = ContextVar("errlink.scope", default=Scope())  # noqa: B039


def current_scope() -> Scope:
    return _scope.get()


def _update(**changes: Any) -> None:
    scope = _scope.get().copy()
    for name, value in changes.items():
        setattr(scope, name, value)
    _scope.set(scope)


def set_tag(key: str, value: object) -> None:
    """Set a tag on the current scope (this task or thread, and tasks it starts later)."""
    set_tags({key: value})


def set_tags(tags: Mapping[str, object]) -> None:
    merged = dict(_scope.get().tags)
    merged.update((_tag_text(key), _tag_text(value)) for key, value in tags.items())
    _update(tags=merged)


def _tag_text(value: object) -> str:
    """Tags are text; a value whose __str__ raises must not raise into the caller."""
    try:
        text = str(value)
    except Exception:
        text = f"<unprintable {type(value).__name__}>"
    return text if type(text) is str else f"<unprintable {type(value).__name__}>"


def remove_tag(key: str) -> None:
    tags = dict(_scope.get().tags)
    tags.pop(key, None)
    _update(tags=tags)


def set_user(user: Mapping[str, Any] | None) -> None:
    """Set the user (`id`, `username`, `email`, `ip_address`, ...); None clears it."""
    _update(user=dict(user) if user is not None else None)


def set_context(name: str, value: Mapping[str, Any] | None) -> None:
    """Set a named context (shown as `contexts.<name>`); None removes it."""
    contexts = dict(_scope.get().contexts)
    if value is None:
        contexts.pop(name, None)
    else:
        contexts[name] = dict(value)
    _update(contexts=contexts)


def set_extra(key: str, value: object) -> None:
    extra = dict(_scope.get().extra)
    extra[key] = value
    _update(extra=extra)


def set_level(level: str | None) -> None:
    if level is not None and level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}, not {level!r}")
    _update(level=level)


def set_fingerprint(fingerprint: list[str] | tuple[str, ...] | None) -> None:
    _update(fingerprint=tuple(str(part) for part in fingerprint) if fingerprint else None)


def set_transaction(name: str | None) -> None:
    _update(transaction=name)


def set_request(request: Mapping[str, Any] | None) -> None:
    """Attach a request (the protocol's `request` interface); used by integrations."""
    _update(request=request)


def clear_breadcrumbs() -> None:
    _scope.set(_scope.get().without_breadcrumbs())


@contextmanager
def new_scope() -> Iterator[Scope]:
    """A scope whose changes are undone when the block exits."""
    token = _scope.set(_scope.get().copy())
    try:
        yield _scope.get()
    finally:
        _scope.reset(token)


@contextmanager
def isolated_scope() -> Iterator[Scope]:
    """A fresh, empty scope for the block (integrations use it per request or task)."""
    token = _scope.set(Scope())
    try:
        yield _scope.get()
    finally:
        _scope.reset(token)


def push_breadcrumb(crumb: dict[str, Any], limit: int) -> None:
    """Add an already processed breadcrumb to the current scope, keeping the newest `limit`."""
    if limit:
        _scope.set(_scope.get().with_breadcrumb(crumb, limit))


def new_request_scope(
    request: Mapping[str, Any] | None,
    user: Mapping[str, Any] | None,
    transaction: str | None,
    tags: Mapping[str, str],
    contexts: Mapping[str, Any],
    extra: Mapping[str, Any],
) -> Scope:
    """A scope holding exactly these fields, built without a copy (it runs on every request)."""
    # Filled slot by slot rather than through Scope() (a test checks that no slot is left out).
    scope = _new_object(Scope)
    scope.tags = tags
    scope.user = user
    scope.contexts = contexts
    scope.extra = extra
    scope.level = None
    scope.fingerprint = None
    scope.transaction = transaction
    scope.request = request
    scope._breadcrumbs = None
    return scope


def install_scope(scope: Scope) -> Token[Scope]:
    return _scope.set(scope)


def restore_scope(token: Token[Scope]) -> None:
    _scope.reset(token)
