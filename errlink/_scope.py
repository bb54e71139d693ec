"""Per-context scope data: tags, user, contexts, extra, breadcrumbs, and the bound client.

A `Scope` is immutable; every setter installs a modified copy in a ContextVar. Because asyncio
tasks and `contextvars.copy_context()` copy the variable's *value* (the reference), copy-on-write
is what keeps a child task's changes from leaking into its parent, and concurrent requests on one
loop from seeing each other's data. Breadcrumbs are a persistent linked list so that adding one
is O(1) no matter how many are kept.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from functools import lru_cache
from types import TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple

from ._options import LEVELS
from ._scrub import Scrubber
from ._serialize import Serializer

if TYPE_CHECKING:
    from ._core import ClientCore

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
_client: ContextVar[ClientCore | None] = ContextVar("errlink.client", default=None)


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


def add_breadcrumb(
    message: str | None = None,
    *,
    category: str | None = None,
    level: str = "info",
    type: str | None = None,
    data: Mapping[str, Any] | None = None,
    timestamp: float | None = None,
    hint: Mapping[str, Any] | None = None,
) -> None:
    """Record a breadcrumb on the current scope; it is sent with the next event."""
    crumb: dict[str, Any] = {"timestamp": time.time() if timestamp is None else timestamp}
    if message is not None:
        crumb["message"] = message
    if category is not None:
        crumb["category"] = category
    if type is not None:
        crumb["type"] = type
    crumb["level"] = level
    if data:
        crumb["data"] = dict(data)
    add_breadcrumb_dict(crumb, dict(hint) if hint else {})


def add_breadcrumb_dict(crumb: dict[str, Any], hint: dict[str, Any] | None = None) -> None:
    """Add a breadcrumb, normalized and scrubbed now (once) rather than at every capture."""
    client = current_client()
    if client is not None:
        processed = client.process_breadcrumb(crumb, hint or {})
        limit = client.options.max_breadcrumbs
    else:
        processed = _default_breadcrumb_normalizer()(crumb)
        limit = 100
    if processed is not None and limit:
        _scope.set(_scope.get().with_breadcrumb(processed, limit))


@lru_cache(maxsize=1)
def _default_breadcrumb_normalizer() -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """Default limits and scrubbing for breadcrumbs recorded before any client exists."""
    return Serializer(scrubber=Scrubber()).normalize_mapping


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


def current_client() -> ClientCore | None:
    """The client bound to this context, else the process default set by `errlink.init()`."""
    client = _client.get()
    if client is not None:
        return client
    return _default_client


_default_client: ClientCore | None = None


def set_default_client(client: ClientCore | None) -> None:
    global _default_client
    _default_client = client


@contextmanager
def bind_client(client: ClientCore | None) -> Iterator[None]:
    """Make `client` the one module-level capture calls reach inside the block."""
    token = _client.set(client)
    try:
        yield
    finally:
        _client.reset(token)


def bind_client_here(client: ClientCore | None) -> None:
    """Bind without a block (for a task or request that ends with its context)."""
    _client.set(client)


def request_scope(
    client: ClientCore | None,
    /,
    *,
    request: Mapping[str, Any] | None = None,
    user: Mapping[str, Any] | None = None,
    transaction: str | None = None,
    tags: Mapping[str, str] = _EMPTY,
    contexts: Mapping[str, Any] = _EMPTY,
    extra: Mapping[str, Any] = _EMPTY,
) -> _RequestScope:
    """A fresh scope, filled in and bound to `client`, for one request or task.

    ::

        with request_scope(client.core, request=lazy_request, transaction="orders.show"):
            ...  # captures here reach `client` and carry the request

    What `isolated_scope()`, `bind_client(client)` and the setters do together, in one step
    cheap enough to run on every request. The fields are stored as given, not copied: a lazy
    Mapping passed as `request` or `user` is read only if an event is captured. Setters used
    inside the block change this scope only (copy-on-write, as anywhere), and leaving the block
    restores the previous scope and client, exception or not. Enter it once.

    ``request_scope(...).enter_here()`` installs the scope and binds the client without a
    block, for a context that ends with the request (a task per request), or one that serves
    requests in turn, each starting with its own `request_scope`.
    """
    # Filled slot by slot rather than through Scope(), as this runs on every request (a test
    # checks that no slot is left out).
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
    handle = _new_object(_RequestScope)
    handle._client = client
    handle._scope = scope
    return handle


class _RequestScope:
    """What `request_scope()` returns: a context manager, or `enter_here()` without a block."""

    __slots__ = ("_client", "_client_token", "_scope", "_scope_token")
    _client: ClientCore | None
    _scope: Scope
    _scope_token: Token[Scope]
    _client_token: Token[ClientCore | None]

    def __enter__(self) -> Scope:
        self._scope_token = _scope.set(self._scope)
        self._client_token = _client.set(self._client)
        return self._scope

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _client.reset(self._client_token)
        _scope.reset(self._scope_token)

    def enter_here(self) -> Scope:
        """Install the scope and bind the client in the current context, with nothing to undo."""
        _scope.set(self._scope)
        _client.set(self._client)
        return self._scope
