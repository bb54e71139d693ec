"""Per-context scope data: tags, user, contexts, extra, breadcrumbs. Data only.

A `Scope` is immutable but for its breadcrumbs; every setter installs a modified copy in a
ContextVar. Because asyncio tasks and `contextvars.copy_context()` copy the variable's *value*
(the reference), copy-on-write is what keeps a child task's tags or user from leaking into its
parent, and concurrent requests on one loop from seeing each other's data.

Breadcrumbs are a record of what happened in one unit of work: a request, a task run, a
`new_scope()` block. They are kept on that unit's trail, a list shared by its scopes and by the
tasks it starts (an HTTP call made in a child task of `asyncio.gather` shows in the request's
events). Adding one appends to it: the cost of an HTTP call's or a query's breadcrumb.

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


# A unit of work's breadcrumbs, oldest first: processed dicts and `PendingBreadcrumb`s. It is
# trimmed to the newest `max_breadcrumbs` whenever it holds twice that (amortised O(1) a push).
# Appends, slices and trims are each atomic under the GIL, so the threads a unit's context is
# run in (`asyncio.to_thread`) may share it.
Trail = list[Any]


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
        # None: no trail yet (the process default); the first push in a context makes one.
        self._breadcrumbs: Trail | None = None
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
        # Slot by slot rather than in a loop: a copy is made per setter call, and this is 3x
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

    def breadcrumbs(self, limit: int) -> list[Any]:
        """The newest `limit` breadcrumbs, oldest first."""
        trail = self._breadcrumbs
        return trail[-limit:] if trail and limit > 0 else []


# Scopes are never mutated in place (setters install copies) and the default has no trail to add
# to (the first push makes one, in a copy), so one shared default is safe.
_scope: ContextVar[Scope] = ContextVar("errlink.scope", default=Scope())  # noqa: B039

# Without a Python frame: code that runs for every task, request or HTTP call reads it.
current_scope = _scope.get


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
    """Forget the breadcrumbs of the current unit of work (its request, task or block)."""
    trail = current_scope()._breadcrumbs
    if trail is not None:
        trail.clear()


@contextmanager
def new_scope(*, new_trace: bool = False) -> Iterator[Scope]:
    """A scope whose changes are undone when the block exits; with `new_trace`, events and
    outgoing requests inside it belong to a trace of their own. The block is a unit of work of
    its own: it starts with the breadcrumbs recorded so far, and those recorded inside it
    (by tasks it starts too) stay inside it."""
    scope = current_scope().copy()
    trail = scope._breadcrumbs
    scope._breadcrumbs = [] if trail is None else trail.copy()
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
    fresh._breadcrumbs = []
    fresh.client = current_scope().client
    token = _scope.set(fresh)
    try:
        yield _scope.get()
    finally:
        _scope.reset(token)


def push_breadcrumb(crumb: dict[str, Any], limit: int) -> None:
    """Add an already processed breadcrumb to the current unit of work's trail, keeping the
    newest `limit`."""
    if limit:
        trail = _scope.get()._breadcrumbs
        if trail is None:
            start_trail(crumb)
            return
        trail.append(crumb)
        if len(trail) > 2 * limit:
            del trail[:-limit]


def start_trail(crumb: object) -> None:
    """Give this context a trail of its own, holding `crumb`: its first breadcrumb outside any
    request, task or block (each thread, and each task started before one, gets its own)."""
    scope = _scope.get().copy()
    scope._breadcrumbs = [crumb]
    _scope.set(scope)


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
    scope._breadcrumbs = []
    scope.client = client
    scope.outcome = -1 if client is None or client.sessions is None else 0
    scope.session_root = None


class RequestScope(Scope):
    """A request's first scope that is also the request's own object: its `request`, `trace`
    and `transaction` are the object itself, which a subclass makes a request mapping, gives a
    `resolve()` (the trace) and makes callable (the transaction, named once routed).

    One object per request where a scope and the request's object would be two: a busy server
    makes one for every request. `fill_own_scope` sets its fields; copies of it are plain
    scopes that point at it. (Those three fields are not kept in it as values: an object
    pointing at itself would live until the garbage collector's next pass.)

    Nothing is ever set on it but its breadcrumbs, client and session outcome: setters install
    copies. So its tags, user, contexts, extra, level, fingerprint and attachments are the empty
    defaults, as class constants, and a request stores three fields rather than eleven.
    """

    __slots__ = ()

    tags: Mapping[str, str] = _EMPTY
    user: Mapping[str, Any] | None = None
    contexts: Mapping[str, Any] = _EMPTY
    extra: Mapping[str, Any] = _EMPTY
    level: str | None = None
    fingerprint: tuple[str, ...] | None = None
    attachments: tuple[Attachment, ...] = ()
    session_root: Scope | None = None

    @property
    def request(self) -> Mapping[str, Any]:  # type: ignore[override]
        return self  # type: ignore[return-value]

    @property
    def trace(self) -> TraceSource:  # type: ignore[override]
        return self  # type: ignore[return-value]

    @property
    def transaction(self) -> TransactionName:  # type: ignore[override]
        return self  # type: ignore[return-value]


def fill_own_scope(scope: RequestScope, client: Any) -> None:
    """Set the fields of a new `RequestScope`, bound to `client` (a `ClientCore`, or None)."""
    scope._breadcrumbs = []
    scope.client = client
    scope.outcome = -1 if client is None or client.sessions is None else 0


def enter_own_scope(scope: RequestScope, client: Any) -> Token[Scope]:
    """Fill a new `RequestScope` and install it bound to `client`, until `restore_scope` is
    called with what this returns (then `binding.request_ended`, for the request's session)."""
    scope._breadcrumbs = []  # `fill_own_scope`, spelled out: it runs for every request
    scope.client = client
    scope.outcome = -1 if client is None or client.sessions is None else 0
    return _scope.set(scope)


# `install_scope(scope)` makes `scope` current until `restore_scope` is called with what it
# returns. Without Python frames: they run at the start and the end of every request.
install_scope = _scope.set
restore_scope = _scope.reset


def scope_with_client(client: Any) -> Scope | None:
    """The current scope bound to `client` instead, or None if it is bound to it already."""
    scope = current_scope()
    if scope.client is client:
        return None
    clone = scope.copy()
    clone.client = client
    return clone
