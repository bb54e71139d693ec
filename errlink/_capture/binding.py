"""Which client a capture reaches: the one bound to this context, else the process default.

The bound client is part of the current scope (`Scope.client`), so that a request binds its
client and its scope by installing one scope: one context variable set on the way in and reset
on the way out.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import Token
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .._log import INTERNAL, logger
from .scope import (
    Scope,
    TransactionName,
    current_scope,
    enter_request_scope,
    install_scope,
    restore_scope,
    scope_with_client,
)
from .sessions import end_request
from .trace import TraceSource

if TYPE_CHECKING:
    from .core import ClientCore

_EMPTY: Mapping[str, Any] = {}
_new_object = object.__new__


def current_client() -> ClientCore | None:
    """The client bound to this context, else the process default set by `errlink.init()`."""
    client: ClientCore | None = current_scope().client
    if client is not None:
        return client
    return _default_client


_default_client: ClientCore | None = None


def set_default_client(client: ClientCore | None) -> None:
    global _default_client
    _default_client = client


@contextmanager
def bind_client(client: ClientCore | None) -> Iterator[None]:
    """Make `client` the one module-level capture calls reach inside the block.

    Only the binding is undone when the block ends: scope changes made inside it stay, as they
    would without the block."""
    binding = enter_client(client)
    try:
        yield
    finally:
        leave_client(binding)


def bind_client_here(client: ClientCore | None) -> None:
    """Bind without a block (for a task or request that ends with its context)."""
    scope = scope_with_client(client)
    if scope is not None:
        install_scope(scope)


# What `enter_client` bound, and what was bound before it.
ClientBinding = tuple["ClientCore | None", "ClientCore | None"]


def enter_client(client: ClientCore | None) -> ClientBinding:
    """Bind `client` until `leave_client` is called with what this returns."""
    previous: ClientCore | None = current_scope().client
    bind_client_here(client)
    return (client, previous)


def leave_client(binding: ClientBinding) -> None:
    """Bind again the client that `enter_client` replaced, keeping the scope's other changes.
    Nothing happens where `binding`'s client is no longer the bound one (another context, or
    a binding made since)."""
    client, previous = binding
    if current_scope().client is client:
        bind_client_here(previous)


def request_scope(
    client: ClientCore | None,
    /,
    *,
    request: Mapping[str, Any] | None = None,
    user: Mapping[str, Any] | None = None,
    transaction: str | TransactionName | None = None,
    tags: Mapping[str, str] = _EMPTY,
    contexts: Mapping[str, Any] = _EMPTY,
    extra: Mapping[str, Any] = _EMPTY,
    trace: TraceSource | None = None,
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

    `trace` is the request's place in a trace: an `IncomingTrace` over its headers (resolved
    only if an event is captured or a request goes out), or None for the process's own trace.

    ``request_scope(...).enter_here()`` installs the scope and binds the client without a
    block, for a context that ends with the request (a task per request), or one that serves
    requests in turn, each starting with its own `request_scope`.
    """
    handle = _new_object(_RequestScope)
    handle._fields = (client, request, transaction, trace, user, tags, contexts, extra)
    return handle


class _RequestScope:
    """What `request_scope()` returns: a context manager, or `enter_here()` without a block."""

    __slots__ = ("_fields", "_scope", "_token")
    _fields: tuple[Any, ...]
    _scope: Scope
    _token: Token[Scope]

    def __enter__(self) -> Scope:
        self._token = self._install()
        return self._scope

    def _install(self) -> Token[Scope]:
        token = enter_request_scope(*self._fields)
        self._scope = current_scope()
        return token

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        restore_scope(self._token)
        scope = self._scope
        if scope.outcome >= 0:
            request_ended(scope.client, scope, abandoned=_abandoned(exc_type))

    def enter_here(self) -> Scope:
        """Install the scope and bind the client in the current context, with nothing to undo."""
        self._install()
        return self._scope


def request_ended(client: ClientCore | None, scope: Scope, *, abandoned: bool = False) -> None:
    """The request `scope` was made for has ended: count its session (release health).

    For a request scope entered with `enter_here()`; leaving a `with request_scope()` block
    does this itself. `abandoned`: cancelled before it finished. Never raises."""
    if client is not None and client.sessions is not None:
        try:
            end_request(client.sessions, scope, abandoned=abandoned)
        except Exception:  # counting a session must not fail a request
            logger.warning("errlink: could not count a session", exc_info=True, extra=INTERNAL)


def leave_own_scope(token: Token[Scope], scope: Scope, abandoned: bool = False) -> None:
    """End the request whose scope `enter_own_scope` installed (`token`): restore the scope
    before it and count the request's session (`abandoned`: cancelled). Never raises."""
    restore_scope(token)
    if scope.outcome >= 0:
        request_ended(scope.client, scope, abandoned=abandoned)


def _abandoned(exc_type: type[BaseException] | None) -> bool:
    return exc_type is not None and not issubclass(exc_type, Exception)
