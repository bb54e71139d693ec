"""How the exceptions of one event hang together, in words for the event page.

The protocol lists an event's exceptions oldest first, the one finally raised last. A plain
chain is read in that order. When the mechanisms carry `exception_id` and `parent_id` (errlink,
the JavaScript SDKs, sentry-python for exception groups), they are followed instead: members of
an exception group, or an `AggregateError`'s errors, may hang from an exception further down,
not from the one listed next.

A cause (or context) is always listed right before the exception it led to, whatever the ids
say: sentry-python gives a cause inside an exception group the group's id as its parent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The relation of an exception to the one it hangs from, keyed by `mechanism.source`.
_CHAIN_SENTENCES = {
    "__cause__": "The above exception was the direct cause of the following exception:",
    "cause": "The above exception was the direct cause of the following exception:",  # JS
    "__context__": "During handling of the above exception, another exception occurred:",
}
_GROUP_NEXT_SENTENCE = "The above exception is part of the following exception group:"
# sentry-python says nothing of how the exceptions of a plain chain are linked.
_UNKNOWN_NEXT_SENTENCE = "The above exception led to the following exception:"
_UNLINKED_SENTENCE = "Then:"


@dataclass(frozen=True)
class Link:
    parent: int | None  # index of the exception this one hangs from, if any
    source: str  # `mechanism.source`: "__cause__", "cause", "exceptions[0]", ... or ""


def links(exceptions: list[dict[str, Any]]) -> list[Link]:
    """Where each exception of the list hangs from."""
    ids = _exception_ids(exceptions)
    result = []
    for index, exception in enumerate(exceptions):
        mechanism = _mechanism(exception)
        source = mechanism.get("source")
        source = source if isinstance(source, str) else ""
        parent_id = _int(mechanism.get("parent_id"))
        parent: int | None
        if source in _CHAIN_SENTENCES:
            parent = index + 1 if index + 1 < len(exceptions) else None
        elif ids is not None and parent_id is not None and ids.get(parent_id, index) != index:
            parent = ids[parent_id]
        elif (
            ids is not None
            and _int(mechanism.get("exception_id")) is not None
            and mechanism.get("parent_id") is None
        ):
            parent = None  # a root
        elif _is_group_member(source):
            parent = None  # its group is not known without ids
        else:
            parent = index + 1 if index + 1 < len(exceptions) else None
        result.append(Link(parent, source))
    return result


def note_after(index: int, exceptions: list[dict[str, Any]], link: Link) -> str:
    """The sentence between exception `index` and the next one."""
    if link.parent is None:
        return _UNLINKED_SENTENCE
    if link.parent == index + 1:
        if _is_group_member(link.source):
            return _GROUP_NEXT_SENTENCE
        if link.source in _CHAIN_SENTENCES:
            return _CHAIN_SENTENCES[link.source]
        if link.source:
            return f"The above exception is the {link.source} of the following exception:"
        return _UNKNOWN_NEXT_SENTENCE
    # Only a group member, or a link of a kind not known here, hangs from farther away.
    kind = exceptions[link.parent].get("type")
    where = "further below" if link.parent > index else "further above"
    named = f"{kind if isinstance(kind, str) and kind else 'Error'} ({where})"
    if _is_group_member(link.source):
        return f"The above exception is part of the exception group {named}."
    if link.source:
        return f"The above exception is the {link.source} of {named}."
    return f"The above exception led to {named}."


def _exception_ids(exceptions: list[dict[str, Any]]) -> dict[int, int] | None:
    """`exception_id` -> index, or None when the ids are missing everywhere or not unique."""
    ids: dict[int, int] = {}
    for index, exception in enumerate(exceptions):
        exception_id = _int(_mechanism(exception).get("exception_id"))
        if exception_id is not None:
            if exception_id in ids:
                return None
            ids[exception_id] = index
    return ids or None


def _is_group_member(source: str) -> bool:
    # Python's ExceptionGroup.exceptions[i]; JavaScript's AggregateError.errors[i].
    return source.startswith(("exceptions[", "errors["))


def _mechanism(exception: dict[str, Any]) -> dict[str, Any]:
    mechanism = exception.get("mechanism")
    return mechanism if isinstance(mechanism, dict) else {}


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
