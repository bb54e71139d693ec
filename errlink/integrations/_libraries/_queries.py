"""What the database and cache hooks share: whether to record, the breadcrumb, parameters.

A hook asks `client_for()` before a query runs: None, after one context-variable read, when no
client is current (the query then runs untouched), also inside errlink's own sends and for a
client that did not enable the library. After the query it calls `record()`, which never
raises.

SQL parameters are recorded only with ``send_default_pii``, and even then each one is checked
(`parameters`): a value whose name looks secret (``password``, ``token``...) or that looks like
a card number is filtered. Redis hooks record no values at all.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from .._sdk import (
    FILTERED,
    INTERNAL,
    ClientCore,
    PendingBreadcrumb,
    add_breadcrumb_dict,
    add_pending_breadcrumb,
    current_client,
    logger,
)
from ._gate import client_for as client_for

Undo = Callable[[], None]


def record(
    kind: str,
    message: str,
    data: dict[str, Any],
    started: float,
    error: BaseException | None = None,
    hint: dict[str, Any] | None = None,
) -> None:
    """Add the breadcrumb of a query or command of `kind` ("query", "redis") that began at
    `started` (`time.perf_counter()`) and failed with `error`, if given. Never raises.

    `message` and `data` are kept as they are and normalized (bounded, scrubbed) only if an
    event carries the breadcrumb; parameter values (``send_default_pii``), which may be
    mutable objects of the application, are normalized at once."""
    try:
        core = current_client()
        if core is None:
            return
        query = _Query(core, kind, message, data, time.perf_counter() - started, error)
        if "db.params" in data:
            crumb = query.describe()
            add_breadcrumb_dict(crumb, hint)
        else:
            add_pending_breadcrumb(core, query, hint)
    except Exception:
        logger.warning(
            "errlink: could not record a %s breadcrumb", kind, exc_info=True, extra=INTERNAL
        )


class _Query(PendingBreadcrumb):
    __slots__ = ("core", "data", "failure", "kind", "level", "message", "seconds", "timestamp")

    def __init__(
        self,
        core: ClientCore,
        kind: str,
        message: str,
        data: dict[str, Any],
        seconds: float,
        error: BaseException | None,
    ) -> None:
        self.core = core
        self.kind = kind
        self.message = message
        self.data = data
        self.seconds = seconds
        self.timestamp = time.time()
        # The class, not the message: drivers put row values in theirs (Postgres' DETAIL,
        # SQLAlchemy's "[parameters: ...]"). Not the exception: it holds frames alive.
        self.failure = None if error is None else type(error).__name__
        if error is None:
            self.level = "info"
        else:
            self.level = "error" if isinstance(error, Exception) else "warning"  # cancelled

    def describe(self) -> dict[str, Any]:
        data = dict(self.data)
        data["duration_ms"] = round(self.seconds * 1000.0, 3)
        if self.failure is not None:
            data["reason"] = self.failure
        crumb = {
            "timestamp": self.timestamp,
            "type": self.kind,
            "category": self.kind,
            "level": self.level,
            "message": self.message,
            "data": data,
        }
        return self.core.builder.breadcrumb(crumb)


# -- SQL parameters (send_default_pii only) ---------------------------------------------------


def parameters(core: ClientCore, statement: str, values: object) -> dict[str, Any] | None:
    """`values` (a mapping by name, or a sequence in placeholder order) as a mapping safe to
    send: secret-looking names and card-number-looking values filtered. None when `values` is
    empty or of an unknown shape. Positional values are named after the column they are
    compared with or inserted into, where the statement says (``email = $1``, ``INSERT ...
    (email) VALUES (?)``); the others are keyed by position."""
    scrubber = core.builder.scrubber
    named: list[tuple[str, Any]]
    if isinstance(values, Mapping):
        named = [(str(name), value) for name, value in values.items()]
    elif isinstance(values, list | tuple):
        columns = _positional_names(statement, len(values))
        named = [(columns[i] or f"${i + 1}", value) for i, value in enumerate(values)]
    else:
        return None
    if not named:
        return None
    safe: dict[str, Any] = {}
    for name, value in named:
        if scrubber.is_sensitive_key(name):
            safe[name] = FILTERED
        else:
            safe[name] = _safe_value(core, value)
    return safe


def _safe_value(core: ClientCore, value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [_safe_value(core, item) for item in value]
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(value)} bytes>"
    if isinstance(value, str | int) and not isinstance(value, bool):
        text = str(value)
        if core.builder.scrubber.scrub_text(text) != text:
            return FILTERED  # a card number, whole: its digits say nothing useful
    return value


# Placeholders outside quoted text: $1 (asyncpg), ? (qmark), %s (format).
_PLACEHOLDERS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\$(\d+)|(\?)|(%s)")
_COMPARED = re.compile(
    r"\"?(\w+)\"?\s*(?:=|<>|!=|<=|>=|<|>|\s(?:NOT\s+)?I?LIKE|\sIN\s*\()\s*$", re.IGNORECASE
)
_INSERT = re.compile(r"INSERT\s+INTO\s+[\w.\"]+\s*\(([^()]*)\)\s*VALUES\s*", re.IGNORECASE)
_ROW = re.compile(r"\s*,?\s*\(([^()]*)\)")  # one row of VALUES (a, b), (c, d)
_LOOKBACK = 80


@functools.lru_cache(maxsize=256)
def _positional_names(statement: str, count: int) -> tuple[str | None, ...]:
    """For each of `count` positional placeholders of `statement`, the column it stands for,
    when the statement says (None otherwise)."""
    names: list[str | None] = [None] * count
    inserted = _INSERT.search(statement)
    if inserted is not None:
        columns = [column.strip().strip('"') for column in inserted.group(1).split(",")]
        sequence, position = 0, inserted.end()
        while (row := _ROW.match(statement, position)) is not None:
            position = row.end()
            items = [item.strip() for item in row.group(1).split(",")]
            for column, item in zip(columns, items, strict=False):
                index = _index_of(item, sequence)
                if item in ("?", "%s"):
                    sequence += 1
                if index is not None and 0 <= index < count:
                    names[index] = column
    sequence = 0
    for match in _PLACEHOLDERS.finditer(statement):
        dollar, qmark, fmt = match.groups()
        if dollar is not None:
            index = int(dollar) - 1
        elif qmark is not None or fmt is not None:
            index = sequence
            sequence += 1
        else:
            continue  # quoted text
        if not 0 <= index < count or names[index] is not None:
            continue
        compared = _COMPARED.search(statement, max(0, match.start() - _LOOKBACK), match.start())
        if compared is not None:
            names[index] = compared.group(1)
    return tuple(names)


def _index_of(item: str, sequence: int) -> int | None:
    if item.startswith("$") and item[1:].isdigit():
        return int(item[1:]) - 1
    if item in ("?", "%s"):
        return sequence
    return None


# -- patching (for libraries without an extension point that fits) ------------------------------


def patch(owner: type, name: str, wrap: Callable[[Any, Switch], Any]) -> Undo:
    """Replace `owner.name` by `wrap(original, switch)`. The undo turns the switch off (the
    wrapper then passes straight through) and puts the original back, unless something else
    has wrapped ours since: then the chain is left as it is."""
    original = owner.__dict__[name]
    switch = Switch()
    wrapper = wrap(original, switch)
    setattr(owner, name, wrapper)

    def undo() -> None:
        switch.on = False
        if owner.__dict__.get(name) is wrapper:
            setattr(owner, name, original)

    return undo


class Switch:
    """Whether a patched wrapper records: off once its patch is undone."""

    __slots__ = ("on",)

    def __init__(self) -> None:
        self.on = True


def statement_text(statement: object) -> str:
    if isinstance(statement, str):
        return statement.strip()
    if isinstance(statement, bytes):
        return statement.decode("utf-8", "replace").strip()
    return repr(statement)
