"""Per-context scope data: tags, user, contexts, extra, breadcrumbs. Data only.

A `Scope` is immutable; every setter installs a modified copy in a ContextVar. Because asyncio
tasks and `contextvars.copy_context()` copy the variable's *value* (the reference), copy-on-write
is what keeps a child task's changes from leaking into its parent, and concurrent requests on one
loop from seeing each other's data. Breadcrumbs are a persistent linked list so that adding one
is O(1) no matter how many are kept.

The setters never raise into the caller: a value that can be understood is taken (a bare user id,
a logging level name), anything else is logged once on the `errlink` logger and ignored.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from itertools import islice
from typing import Any

from .._delivery.attachment import Attachment
from .attachments import new_attachment
from .levels import normalize_level
from .misuse import ignore
from .trace import PropagationContext, TraceSource

_EMPTY: Mapping[str, Any] = {}
_MAX_FINGERPRINT_PARTS = 64
_new_object = object.__new__


# A node of the breadcrumb list, newest first: (breadcrumb, the node before, length). A plain
# tuple: one is made per breadcrumb, and a NamedTuple's constructor costs 10x more.
_Crumb = tuple[dict[str, Any], "_Crumb | None", int]


def _crumbs_from(values: list[dict[str, Any]]) -> _Crumb | None:
    node: _Crumb | None = None
    for length, value in enumerate(values, start=1):
        node = (value, node, length)
    return node


# A transaction named once the request is routed: integrations whose framework routes inside the
# app (Starlette, Litestar) give the scope this, called only if an event is captured.
TransactionName = Callable[[], "str | None"]


class Scope:
    __slots__ = (
        "_breadcrumbs",
        "attachments",
        "client",
        "contexts",
        "extra",
        "fingerprint",
        "level",
        "outcome",
        "request",
        "session_root",
        "tags",
        "trace",
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
        self.transaction: str | TransactionName | None = None
        self.request: Mapping[str, Any] | None = None
        self.trace: TraceSource | None = None  # None: the process's own trace
        self.attachments: tuple[Attachment, ...] = ()
        self._breadcrumbs: _Crumb | None = None
        # The `ClientCore` captures in this context reach (None: the process default), kept in
        # the scope so that a request binds its client and its scope with one variable. `Any`:
        # this module sits below the client's (`binding` reads it as a ClientCore).
        self.client: Any = None
        # Release health: a request's scope is its session. The one mutable part of a scope:
        # `outcome` (-1: no session; else an index of `_sessions.OUTCOMES`) of the request's
        # first scope, which its copies reach through `session_root`.
        self.outcome = -1
        self.session_root: Scope | None = None

    def copy(self) -> Scope:
        # Slot by slot rather than in a loop: a copy is made per breadcrumb, and this is 3x
        # faster (a test checks that no slot is left out).
        clone = _new_object(Scope)
        clone.tags = self.tags
        clone.user = self.user
        clone.contexts = self.contexts
        clone.extra = self.extra
        clone.level = self.level
        clone.fingerprint = self.fingerprint
        clone.transaction = self.transaction
        clone.request = self.request
        clone.trace = self.trace
        clone.attachments = self.attachments
        clone._breadcrumbs = self._breadcrumbs
        clone.client = self.client
        clone.outcome = self.outcome
        root = self.session_root
        clone.session_root = self if root is None and self.outcome >= 0 else root
        return clone

    def breadcrumbs(self, limit: int) -> list[dict[str, Any]]:
        """The newest `limit` breadcrumbs, oldest first."""
        out: list[dict[str, Any]] = []
        node = self._breadcrumbs
        while node is not None and len(out) < limit:
            out.append(node[0])
            node = node[1]
        out.reverse()
        return out

    def without_breadcrumbs(self) -> Scope:
        clone = self.copy()
        clone._breadcrumbs = None
        return clone

    def _with_crumbs(self, crumbs: _Crumb | None) -> Scope:
        clone = self.copy()
        clone._breadcrumbs = crumbs
        return clone


def _appended(previous: _Crumb | None, crumb: dict[str, Any], limit: int) -> _Crumb:
    length = previous[2] + 1 if previous else 1
    if length > 2 * limit:
        # Compact now and then so the list stays bounded: amortised O(1) per breadcrumb.
        out: list[dict[str, Any]] = []
        node = previous
        while node is not None and len(out) < limit - 1:
            out.append(node[0])
            node = node[1]
        out.reverse()
        out.append(crumb)
        return _crumbs_from(out)  # type: ignore[return-value]
    return (crumb, previous, length)


# Scopes are never mutated in place (setters install copies), so one shared default is safe.
_scope: ContextVar[Scope] = ContextVar("errlink.scope", default=Scope())  # noqa: B039

# The installed scope as it is, without folding in what was pushed since (see `_pushed`): enough
# to read its client, and no Python frame for code that runs for every task or request.
installed_scope = _scope.get


# Breadcrumbs pushed onto the current scope since it was installed: [that scope, its breadcrumb
# list, the scope with that list once made]. A push sets this rather than installing a copy of
# the scope (that copy per breadcrumb was most of the cost of an HTTP client's or a query's
# breadcrumb); `current_scope()` makes the copy when the scope is read or replaced. A child
# task copies both variables, so it sees what was pushed before it started, and its own pushes
# (a new list) stay its own.
_pushed: ContextVar[list[Any] | None] = ContextVar("errlink.pushed", default=None)


def current_scope() -> Scope:
    scope = _scope.get()
    pushed = _pushed.get()
    if pushed is None or pushed[0] is not scope:
        return scope
    made = pushed[2]
    if made is None:
        made = pushed[2] = scope._with_crumbs(pushed[1])  # the same for every context sharing it
    _scope.set(made)
    return made  # type: ignore[no-any-return]


def _update(**changes: Any) -> None:
    scope = current_scope().copy()
    for name, value in changes.items():
        setattr(scope, name, value)
    _scope.set(scope)


def set_tag(key: str, value: object) -> None:
    """Set a tag on the current scope (this task or thread, and tasks it starts later)."""
    set_tags({_tag_text(key): value})


def set_tags(tags: Mapping[str, object]) -> None:
    items = _items("set_tags", tags)
    if items is None:
        return
    merged = dict(current_scope().tags)
    merged.update((_tag_text(key), _tag_text(value)) for key, value in items)
    _update(tags=merged)


def _tag_text(value: object) -> str:
    """Tags are text; a value whose __str__ raises must not raise into the caller."""
    if type(value) is str:
        return value
    try:
        text = str(value)
    except Exception:
        text = f"<unprintable {type(value).__name__}>"
    return text if type(text) is str else f"<unprintable {type(value).__name__}>"


def _items(where: str, mapping: object) -> list[tuple[Any, Any]] | None:
    """The items of a mapping a caller passed, or None (logged once) if it is not one."""
    if isinstance(mapping, Mapping):
        try:
            return list(mapping.items())
        except Exception:
            pass
    ignore(where, "a mapping", mapping)
    return None


def remove_tag(key: str) -> None:
    tags = dict(current_scope().tags)
    tags.pop(_tag_text(key), None)
    _update(tags=tags)


def set_user(user: Mapping[str, Any] | str | int | None) -> None:
    """Set the user (`id`, `username`, `email`, `ip_address`, ...); None clears it.

    A bare str or int is taken as the user's `id`."""
    if user is None:
        _update(user=None)
    elif isinstance(user, str | int) and not isinstance(user, bool):
        _update(user={"id": _tag_text(user)})
    else:
        items = _items("set_user", user)
        if items is not None:
            _update(user={_tag_text(key): value for key, value in items})


def set_context(name: str, value: Mapping[str, Any] | object | None) -> None:
    """Set a named context (shown as `contexts.<name>`); None removes it.

    A context is a mapping; any other value is kept as ``{"value": value}``."""
    contexts = dict(current_scope().contexts)
    key = _tag_text(name)
    if value is None:
        contexts.pop(key, None)
    elif isinstance(value, Mapping):
        items = _items("set_context", value)
        if items is None:
            return
        contexts[key] = {_tag_text(item_key): item for item_key, item in items}
    else:
        contexts[key] = {"value": value}
    _update(contexts=contexts)


def set_extra(key: str, value: object) -> None:
    extra = dict(current_scope().extra)
    extra[_tag_text(key)] = value
    _update(extra=extra)


def set_level(level: str | int | None) -> None:
    """Override the level of events from here on (a level, a logging level name or number);
    None clears it. Anything else is logged once and ignored."""
    if level is None:
        _update(level=None)
        return
    name = normalize_level(level, "set_level", None)
    if name is not None:
        _update(level=name)


def set_fingerprint(fingerprint: list[str] | tuple[str, ...] | str | None) -> None:
    """Set how events group: a list of parts (a single str or number is one part). None or an
    empty list clears it; a value whose parts cannot be made text is logged once and ignored."""
    if fingerprint is None:
        _update(fingerprint=None)
        return
    try:
        if isinstance(fingerprint, str | bytes | int | float):
            parts = [_strict_text(fingerprint)]
        else:
            parts = [_strict_text(part) for part in islice(fingerprint, _MAX_FINGERPRINT_PARTS)]
    except Exception:
        ignore("set_fingerprint", "a list of str", fingerprint)
        return
    _update(fingerprint=tuple(parts) or None)


def _strict_text(value: object) -> str:
    """str(value) for a name or a grouping part: it raises rather than invent a placeholder."""
    if type(value) is str:
        return value
    text = str(value)
    if type(text) is not str:
        text = str.__str__(text)
    return text


def set_transaction(name: str | None) -> None:
    if name is None:
        _update(transaction=None)
        return
    try:
        text = _strict_text(name)
    except Exception:
        ignore("set_transaction", "a str", name)
        return
    _update(transaction=text)


def set_request(request: Mapping[str, Any] | None) -> None:
    """Attach a request (the protocol's `request` interface); used by integrations."""
    _update(request=request)


def add_attachment(
    bytes: bytes | bytearray | memoryview | str | None = None,
    *,
    path: str | os.PathLike[str] | None = None,
    filename: str | None = None,
    content_type: str | None = None,
    attachment_type: str = "event.attachment",
) -> None:
    """Send a file (`path`, read when the event is sent) or a blob (`bytes`) with every event
    captured from here on in this scope. Bad arguments are logged once and ignored."""
    attachment = new_attachment(
        bytes=bytes,
        path=path,
        filename=filename,
        content_type=content_type,
        attachment_type=attachment_type,
    )
    if attachment is not None:
        _update(attachments=(*current_scope().attachments, attachment))


def clear_attachments() -> None:
    _update(attachments=())


def clear_breadcrumbs() -> None:
    _scope.set(current_scope().without_breadcrumbs())


@contextmanager
def new_scope(*, new_trace: bool = False) -> Iterator[Scope]:
    """A scope whose changes are undone when the block exits; with `new_trace`, events and
    outgoing requests inside it belong to a trace of their own."""
    scope = current_scope().copy()
    if new_trace:
        scope.trace = PropagationContext()
    token = _scope.set(scope)
    try:
        yield _scope.get()
    finally:
        _scope.reset(token)


@contextmanager
def isolated_scope() -> Iterator[Scope]:
    """A fresh, empty scope for the block (integrations use it per request or task)."""
    fresh = Scope()
    fresh.client = current_scope().client  # what was pushed is kept for when the block ends
    token = _scope.set(fresh)
    try:
        yield _scope.get()
    finally:
        _scope.reset(token)


def push_breadcrumb(crumb: dict[str, Any], limit: int) -> None:
    """Add an already processed breadcrumb to the current scope, keeping the newest `limit`."""
    if limit:
        scope = _scope.get()
        pushed = _pushed.get()
        crumbs = pushed[1] if pushed is not None and pushed[0] is scope else scope._breadcrumbs
        length = crumbs[2] + 1 if crumbs else 1
        # `_appended`'s common case spelled out: an HTTP client's or a query's every call.
        node = (crumb, crumbs, length) if length <= 2 * limit else _appended(crumbs, crumb, limit)
        _pushed.set([scope, node, None])


def enter_request_scope(
    client: Any,
    request: Mapping[str, Any] | None,
    transaction: str | TransactionName | None,
    trace: TraceSource | None,
    user: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] = _EMPTY,
    contexts: Mapping[str, Any] = _EMPTY,
    extra: Mapping[str, Any] = _EMPTY,
) -> Token[Scope]:
    """Install a new scope holding exactly these fields, bound to `client` (a `ClientCore`),
    until `restore_scope` is called with what this returns (`request_scope()` then counts the
    request's session). Built without a copy: it runs on every request. If the client counts
    sessions, the request is one (`outcome` starts as exited)."""
    scope = _new_object(Scope)
    scope.transaction = transaction
    scope.request = request
    scope.trace = trace
    fill_request_scope(scope, client, user, tags, contexts, extra)
    if _pushed.get() is not None:
        current_scope()  # what was pushed is kept for `restore_scope`
    return _scope.set(scope)


def fill_request_scope(
    scope: Scope,
    client: Any,
    user: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] = _EMPTY,
    contexts: Mapping[str, Any] = _EMPTY,
    extra: Mapping[str, Any] = _EMPTY,
) -> None:
    """Set every field of a new request scope but `request`, `trace` and `transaction`."""
    # Slot by slot rather than through Scope() (a test checks that no slot is left out).
    scope.tags = tags
    scope.user = user
    scope.contexts = contexts
    scope.extra = extra
    scope.level = None
    scope.fingerprint = None
    scope.attachments = ()
    scope._breadcrumbs = None
    scope.client = client
    scope.outcome = -1 if client is None or client.sessions is None else 0
    scope.session_root = None


class RequestScope(Scope):
    """A request's first scope that is also the request's own object: its `request`, `trace`
    and `transaction` are the object itself, which a subclass makes a request mapping, gives a
    `resolve()` (the trace) and makes callable (the transaction, named once routed).

    One object per request where a scope and the request's object would be two: a busy server
    makes one for every request. Its fields are set with `fill_request_scope`; copies of it are
    plain scopes that point at it. (Those three fields are not kept in it as values: an object
    pointing at itself would live until the garbage collector's next pass.)
    """

    __slots__ = ()

    @property
    def request(self) -> Mapping[str, Any]:  # type: ignore[override]
        return self  # type: ignore[return-value]

    @property
    def trace(self) -> TraceSource:  # type: ignore[override]
        return self  # type: ignore[return-value]

    @property
    def transaction(self) -> TransactionName:  # type: ignore[override]
        return self  # type: ignore[return-value]


def enter_own_scope(scope: RequestScope, client: Any) -> Token[Scope]:
    """Fill a new `RequestScope` and install it bound to `client`, until `restore_scope` is
    called with what this returns (then `binding.request_ended`, for the request's session)."""
    fill_request_scope(scope, client)
    if _pushed.get() is not None:
        current_scope()  # what was pushed is kept for `restore_scope`
    return _scope.set(scope)


def install_scope(scope: Scope) -> Token[Scope]:
    """Make `scope` current until `restore_scope` is called with what this returns."""
    if _pushed.get() is not None:
        current_scope()  # what was pushed is kept for `restore_scope`
    return _scope.set(scope)


# Without a Python frame: it runs at the end of every request.
restore_scope = _scope.reset


def scope_with_client(client: Any) -> Scope | None:
    """The current scope bound to `client` instead, or None if it is bound to it already."""
    scope = current_scope()
    if scope.client is client:
        return None
    clone = scope.copy()
    clone.client = client
    return clone
