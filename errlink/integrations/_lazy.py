"""Request context built only when an event needs it.

Every web integration gives each request a scope whose `request` (and, with send_default_pii,
`user`) is one of these: a request pays for a small object, and the protocol's dict is built
from the framework's request only if an event is captured while it runs. Building runs on the
capture path, so a fault in it is logged on the `errlink` logger and yields an empty mapping:
an event without request data beats a lost event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ._sdk import (
    INTERNAL,
    IncomingTrace,
    PropagationContext,
    RequestScope,
    current_scope,
    logger,
)

_new_object = object.__new__

# (framework request, body size limit in bytes or None) -> the protocol's `request` dict
RequestBuilder = Callable[[Any, "int | None"], Mapping[str, Any]]


class ResolvedMapping(Mapping[str, Any]):
    """A read-only mapping over the dict that `_resolved()` makes on first use (no slots of its
    own, so a class with another slotted base can mix it in)."""

    __slots__ = ()

    def _resolved(self) -> dict[str, Any]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"

    def __getitem__(self, key: str) -> Any:
        return self._resolved()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._resolved())

    def __len__(self) -> int:
        return len(self._resolved())


class LazyMapping(ResolvedMapping):
    """A read-only mapping computed by `factory` on first use, then kept."""

    __slots__ = ("_data", "_factory")
    # In a frame's locals (an integration's own frame), shown by its repr, not walked: what it
    # holds is scrubbed as a request only when it becomes the event's `request`.
    __errlink_repr_only__ = True

    def __init__(self, factory: Callable[[], Mapping[str, Any]] | None = None) -> None:
        self._factory = factory
        self._data: dict[str, Any] | None = None

    def _compute(self) -> Mapping[str, Any]:
        factory, self._factory = self._factory, None  # let go of what the factory holds
        return factory() if factory is not None else {}

    def _resolved(self) -> dict[str, Any]:
        data = self._data
        if data is None:
            try:
                computed = self._compute()
                data = computed if type(computed) is dict else dict(computed)
            except Exception:
                logger.warning(
                    "errlink: could not read the request's context", exc_info=True, extra=INTERNAL
                )
                data = {}
            self._data = data
        return data


class LazyRequest(LazyMapping):
    """The protocol `request` of the framework request `source`: `builder(source, max_bytes)`."""

    __slots__ = ("_builder", "_max_bytes", "source")

    def __init__(self, source: object, builder: RequestBuilder, max_bytes: int | None) -> None:
        super().__init__()
        self.source = source
        self._builder = builder
        self._max_bytes = max_bytes

    def _compute(self) -> Mapping[str, Any]:
        return self._builder(self.source, self._max_bytes)


def scope_is_for(source: object) -> bool:
    """Whether the current scope is the one an integration opened for framework request `source`."""
    request = current_scope().request
    return isinstance(request, LazyRequest | FrameworkRequest) and request.source is source


def build_request(builder: RequestBuilder, source: object, max_bytes: int | None) -> dict[str, Any]:
    """`builder(source, max_bytes)` right away, or `{}` (logged) if reading the request failed."""
    return LazyRequest(source, builder, max_bytes)._resolved()


class OwnRequest(RequestScope, ResolvedMapping):
    """A request that is its own first scope (see `RequestScope`): the protocol's `request`
    (built by `_resolved()` only if an event is captured), its trace (continued from the
    headers `trace_header` looks up, when first needed) and its transaction (calling it).
    A busy server makes one per request, where a scope, a request mapping and a trace would be
    three; `enter_own_scope` installs it."""

    # Left unset until needed (reading them goes through `getattr`): a request that captures
    # nothing and continues no trace never stores them.
    __slots__ = ("_context", "_data")
    _context: PropagationContext  # the trace, once resolved
    _data: dict[str, Any]  # the request mapping, once built
    # In a frame's locals (an integration's own frame), shown by its repr, not walked: what it
    # holds is scrubbed as a request only when it becomes the event's `request`.
    __errlink_repr_only__ = True
    # A scope: compared and hashed by identity, and true, without building the request mapping.
    __eq__ = object.__eq__
    __hash__ = object.__hash__

    def __bool__(self) -> bool:
        return True

    def __call__(self) -> str | None:
        """The transaction: the route the framework matched, once it has."""
        raise NotImplementedError

    def _resolved(self) -> dict[str, Any]:
        data: dict[str, Any] | None = getattr(self, "_data", None)
        if data is None:
            data = self._data = self._build_request()
        return data

    def _build_request(self) -> dict[str, Any]:
        """The protocol's `request` (`build_request` of the framework's request)."""
        raise NotImplementedError

    def trace_header(self, name: str) -> Any:
        """The request's header `name` (lower case), for its trace; None when absent."""
        raise NotImplementedError

    def resolve(self) -> PropagationContext:
        context: PropagationContext | None = getattr(self, "_context", None)
        if context is None:
            context = self._context = IncomingTrace(self.trace_header).resolve()
        return context


class FrameworkRequest(OwnRequest):
    """An `OwnRequest` over a framework's request object (`source`): its mapping is
    `builder(source, max_bytes)`, its trace headers come from ``source.headers.get`` (a
    case-insensitive lookup), its transaction is given when it starts."""

    __slots__ = ("_builder", "_name", "max_bytes", "source")
    source: Any
    max_bytes: int | None
    _builder: RequestBuilder
    _name: str | None

    def __call__(self) -> str | None:
        return self._name

    def trace_header(self, name: str) -> Any:
        return self.source.headers.get(name)

    def _build_request(self) -> dict[str, Any]:
        return build_request(self._builder, self.source, self.max_bytes)


def framework_request(
    source: Any, builder: RequestBuilder, max_bytes: int | None, transaction: str | None = None
) -> FrameworkRequest:
    """A new `FrameworkRequest` for framework request `source`, for `enter_own_scope`."""
    own = _new_object(FrameworkRequest)
    own.source = source
    own._builder = builder
    own.max_bytes = max_bytes
    own._name = transaction
    return own
