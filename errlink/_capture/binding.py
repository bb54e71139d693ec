"""Which client a capture reaches: the one bound to this context, else the process default."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .._log import INTERNAL, logger
from .scope import Scope, TransactionName, install_scope, new_request_scope, restore_scope
from .sessions import end_request
from .trace import TraceSource

if TYPE_CHECKING:
    from .core import ClientCore

_EMPTY: Mapping[str, Any] = {}
_new_object = object.__new__
_client: ContextVar[ClientCore | None] = ContextVar("errlink.client", default=None)


def bound_client() -> ClientCore | None:
    """The client bound to this context, without the process default."""
    return _client.get()


# `bound_client` without its Python frame, for code that runs for every task a loop creates.
read_bound_client = _client.get


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
    scope = new_request_scope(
        request,
        user,
        transaction,
        tags,
        contexts,
        extra,
        trace,
        client is not None and client.sessions is not None,
    )
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
        self._scope_token = install_scope(self._scope)
        self._client_token = _client.set(self._client)
        return self._scope

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _client.reset(self._client_token)
        restore_scope(self._scope_token)
        if self._scope.outcome >= 0:
            request_ended(self._client, self._scope, abandoned=_abandoned(exc_type))

    def enter_here(self) -> Scope:
        """Install the scope and bind the client in the current context, with nothing to undo."""
        install_scope(self._scope)
        _client.set(self._client)
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


def _abandoned(exc_type: type[BaseException] | None) -> bool:
    return exc_type is not None and not issubclass(exc_type, Exception)


def enter_client(client: ClientCore | None) -> Token[ClientCore | None]:
    """Bind `client` until `leave_client` is called with what this returns."""
    return _client.set(client)


def leave_client(token: Token[ClientCore | None]) -> None:
    _client.reset(token)
