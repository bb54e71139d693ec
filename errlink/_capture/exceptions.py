"""An exception and everything attached to it, as the protocol's ``exception.values`` list.

The exceptions form a tree: the captured exception is the root, its ``__cause__`` (or unsuppressed
``__context__``) is a child, and so is every member of an exception group. The tree is numbered
depth-first from the root (``exception_id`` 0, children in order) and sent reversed, so that the
root comes last and a chain reads oldest first, as the protocol wants.
"""

from __future__ import annotations

import builtins
from typing import Any, NamedTuple

from .._log import INTERNAL, logger
from .repr_guard import SlowReprs
from .stacktrace import FrameExtractor, Meta

__all__ = ["exception_summary_type", "exception_values"]


_BaseExceptionGroup: type[BaseException] | None = getattr(builtins, "BaseExceptionGroup", None)


class _Node(NamedTuple):
    exc: BaseException
    parent_id: int | None
    source: str | None


def exception_values(
    exc: BaseException,
    *,
    frames: FrameExtractor,
    mechanism_type: str = "generic",
    handled: bool = True,
    meta: Meta | None = None,
    max_exceptions: int = 50,
    slow_reprs: SlowReprs | None = None,
) -> list[dict[str, Any]]:
    """Sentry ``exception.values``, oldest in the chain first (the one passed in is last).

    ``meta``, when given, is the ``_meta`` node for ``exception.values``, filled as
    ``{'<index>': {'stacktrace': {'frames': {'<i>': {'vars': {...}}}}}}``.

    Only the exception passed in carries ``mechanism_type`` and ``handled``; every other one has
    mechanism type ``chained`` and a ``source`` naming the attribute it hangs from on its parent
    (``__cause__``, ``__context__``, ``exceptions[i]``). All carry ``exception_id`` and, but for
    the root, ``parent_id``; exception groups carry ``is_exception_group: true``.

    ``slow_reprs``, when given, times each exception's text: an exception type whose ``__str__``
    has been slow is described as ``<TypeName object>`` from then on (see `repr_guard`).
    """
    try:
        nodes = _tree(exc, max(1, max_exceptions))
        last = len(nodes) - 1
        values = [
            _value(
                node,
                exception_id,
                mechanism_type,
                handled,
                frames,
                meta,
                last - exception_id,
                slow_reprs,
            )
            for exception_id, node in enumerate(nodes)
        ]
        values.reverse()
        return values
    except Exception:
        logger.debug("errlink: could not describe an exception", exc_info=True, extra=INTERNAL)
        return [
            {
                "type": _type_name(type(exc)),
                "value": _safe_str(exc),
                "mechanism": {"type": mechanism_type, "handled": handled},
            }
        ]


def exception_summary_type(exc: BaseException) -> str:
    """Qualified type name used for ignore_errors matching, e.g. ``'myapp.errors.PaymentError'``
    (and plain ``'ValueError'`` for builtins)."""
    cls = type(exc)
    name = getattr(cls, "__qualname__", None)
    if not isinstance(name, str):
        name = _type_name(cls)
    module = getattr(cls, "__module__", None)
    if not isinstance(module, str) or module == "builtins":
        return name
    return f"{module}.{name}"


def _tree(root: BaseException, limit: int) -> list[_Node]:
    """The exceptions reachable from ``root`` in depth-first pre-order, each visited once."""
    ordered: list[_Node] = []
    seen: set[int] = set()
    pending = [_Node(root, None, None)]
    while pending and len(ordered) < limit:
        node = pending.pop()
        if id(node.exc) in seen:
            continue
        seen.add(id(node.exc))
        exception_id = len(ordered)
        ordered.append(node)
        children = _children(node.exc, exception_id)
        pending.extend(reversed(children))
    return ordered


def _children(exc: BaseException, exception_id: int) -> list[_Node]:
    children = []
    if exc.__cause__ is not None:
        children.append(_Node(exc.__cause__, exception_id, "__cause__"))
    elif exc.__context__ is not None and not exc.__suppress_context__:
        children.append(_Node(exc.__context__, exception_id, "__context__"))
    if _is_group(exc):
        try:
            members = exc.exceptions  # type: ignore[attr-defined]
        except Exception:  # a subclass may override the property
            members = ()
        if isinstance(members, tuple | list):
            children.extend(
                _Node(member, exception_id, f"exceptions[{index}]")
                for index, member in enumerate(members)
                if isinstance(member, BaseException)
            )
    return children


def _is_group(exc: BaseException) -> bool:
    if _BaseExceptionGroup is not None:
        return isinstance(exc, _BaseExceptionGroup)
    # Python 3.10 with the `exceptiongroup` backport, which has its own class of that name.
    return any(cls.__name__ == "BaseExceptionGroup" for cls in type(exc).__mro__)


def _value(
    node: _Node,
    exception_id: int,
    mechanism_type: str,
    handled: bool,
    frames: FrameExtractor,
    meta: Meta | None,
    index: int,
    slow_reprs: SlowReprs | None,
) -> dict[str, Any]:
    exc = node.exc
    cls = type(exc)
    text = _safe_str(exc) if slow_reprs is None else slow_reprs.guarded(_safe_str, exc)  # type: ignore[arg-type]
    value: dict[str, Any] = {"type": _type_name(cls), "value": text}
    module = getattr(cls, "__module__", None)
    if isinstance(module, str):
        value["module"] = module

    tb = exc.__traceback__
    if tb is not None:
        stacktrace_meta: Meta = {}
        stacktrace = frames.from_traceback(tb, stacktrace_meta)
        if stacktrace.get("frames"):
            value["stacktrace"] = stacktrace
            if stacktrace_meta and meta is not None:
                meta[str(index)] = {"stacktrace": stacktrace_meta}

    mechanism: dict[str, Any]
    if node.parent_id is None:
        mechanism = {"type": mechanism_type, "handled": handled}
    else:
        mechanism = {"type": "chained", "source": node.source}
    mechanism["exception_id"] = exception_id
    if node.parent_id is not None:
        mechanism["parent_id"] = node.parent_id
    if _is_group(exc):
        mechanism["is_exception_group"] = True
    value["mechanism"] = mechanism
    return value


def _type_name(cls: type) -> str:
    name = getattr(cls, "__name__", None)
    return name if isinstance(name, str) else "<unknown>"


def _safe_str(exc: BaseException) -> str:
    """str(exc), else repr(exc), else a placeholder: user ``__str__`` may raise or lie."""
    for render in (str, repr):
        try:
            text = render(exc)
        except Exception:
            continue
        if isinstance(text, str):
            return str.__str__(text)
    return f"<unprintable {_type_name(type(exc))} object>"
