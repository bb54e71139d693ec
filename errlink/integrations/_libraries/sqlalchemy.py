"""SQLAlchemy statements as breadcrumbs, through its engine events.

The listeners are set on the `Engine` class, so every engine has them, the ones made before
errlink was set up and the synchronous engine inside each ``AsyncEngine`` included. A
statement's breadcrumb is the SQL the driver ran, which holds placeholders where the values
go; the values themselves are recorded only with ``send_default_pii``, filtered
(`_queries.parameters`).
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from .._sdk import INTERNAL, ClientCore, logger
from . import _queries

_STARTED = "_errlink_query"  # on the execution context: (client, perf_counter at the start)


def hook() -> _queries.Undo:
    listeners = (
        ("before_cursor_execute", _before),
        ("after_cursor_execute", _after),
        ("handle_error", _failed),
    )
    for name, listener in listeners:
        event.listen(Engine, name, listener)

    def undo() -> None:
        for name, listener in listeners:
            if event.contains(Engine, name, listener):
                event.remove(Engine, name, listener)

    return undo


def _before(
    conn: Any, cursor: Any, statement: Any, parameters: Any, context: Any, executemany: bool
) -> None:
    if context is None:
        return
    core = _queries.client_for("sqlalchemy")
    if core is None:
        return
    try:
        setattr(context, _STARTED, (core, time.perf_counter()))
    except Exception:
        return  # an execution context that takes no attributes: nothing recorded


def _after(
    conn: Any, cursor: Any, statement: Any, parameters: Any, context: Any, executemany: bool
) -> None:
    started = getattr(context, _STARTED, None)
    if started is not None:
        setattr(context, _STARTED, None)
        _record(conn, statement, parameters, context, executemany, started, None)


def _failed(exception_context: Any) -> None:
    context = exception_context.execution_context
    started = getattr(context, _STARTED, None)
    if started is None:
        return  # not a statement (a connect failure, say), or not recorded
    setattr(context, _STARTED, None)
    _record(
        exception_context.connection,
        exception_context.statement,
        exception_context.parameters,
        context,
        bool(getattr(context, "executemany", False)),
        started,
        exception_context.original_exception,
    )


def _record(
    conn: Any,
    statement: Any,
    parameters: Any,
    context: Any,
    executemany: bool,
    started: tuple[ClientCore, float],
    error: BaseException | None,
) -> None:
    core, began = started
    try:
        text = _queries.statement_text(statement)
        data: dict[str, Any] = {"db.system": _system(conn, context)}
        if executemany:
            data["executemany"] = True
        elif core.options.send_default_pii:
            safe = _queries.parameters(core, text, _values(context, parameters))
            if safe:
                data["db.params"] = safe
    except Exception:
        logger.warning("errlink: could not record a SQL statement", exc_info=True, extra=INTERNAL)
        return
    hint = {"statement": statement, "parameters": parameters, "context": context}
    _queries.record("query", text, data, began, error, hint)


def _values(context: Any, parameters: Any) -> Any:
    """The statement's values by the names SQLAlchemy bound them under when it compiled the
    statement (column names, mostly), else as the driver got them. None for a statement run
    with several rows of values (an INSERT of many rows in one statement)."""
    if getattr(context, "compiled", None) is None:
        return parameters
    compiled = getattr(context, "compiled_parameters", None)
    return compiled[0] if compiled and len(compiled) == 1 else None


def _system(conn: Any, context: Any) -> str | None:
    dialect = getattr(context, "dialect", None) or getattr(conn, "dialect", None)
    name = getattr(dialect, "name", None)
    return name if isinstance(name, str) else None
