"""asyncpg queries as breadcrumbs, by wrapping the methods every query of a connection passes.

asyncpg's own extension point, the query logger (`Connection.add_query_logger`, 0.29+), has
what a breadcrumb needs (query, arguments, elapsed time, exception), but it hands each record
over later, through ``loop.call_soon``: the code that awaited the query runs on first. An
error captured in the ``except`` around a failed query would not have that query's breadcrumb,
and an error raised right after a query would come before it. A breadcrumb must be on the
scope when the awaiting code resumes, so errlink wraps, on the `Connection` class (pools'
connections and subclasses included), the three methods through which asyncpg's own logger
times queries: `execute` (a query without arguments), `_execute` (``fetch``, ``fetchrow``,
``fetchval``, ``execute`` with arguments) and `_executemany` (``executemany``,
``fetchmany``). Queries asyncpg makes for itself (type introspection, a pool's reset of a
released connection) are left out. Statements prepared by hand and cursors are not recorded.

The breadcrumb holds the query text, with ``$1``-style placeholders where the values go; the
values are recorded only with ``send_default_pii``, filtered (`_queries.parameters`).
"""

from __future__ import annotations

import functools
import importlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from .._sdk import INTERNAL, ClientCore, logger
from . import _queries

_Method = Callable[..., Awaitable[Any]]


def hook() -> _queries.Undo:
    Connection = importlib.import_module("asyncpg.connection").Connection  # (untyped)
    undos = [
        _queries.patch(Connection, "execute", _wrap_execute),
        _queries.patch(Connection, "_execute", _wrap_fetch),
        _queries.patch(Connection, "_executemany", _wrap_executemany),
    ]

    def undo() -> None:
        for each in reversed(undos):
            each()

    return undo


def _wrap_execute(original: _Method, switch: _queries.Switch) -> _Method:
    @functools.wraps(original)
    async def execute(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        # With arguments, `execute` goes through `_execute`, which records it.
        core = _queries.client_for("asyncpg") if switch.on and not args else None
        if core is None or query is getattr(self, "_reset_query", None):
            return await original(self, query, *args, **kwargs)
        return await _timed(core, original(self, query, **kwargs), query, None, False)

    return execute


def _wrap_fetch(original: _Method, switch: _queries.Switch) -> _Method:
    @functools.wraps(original)
    async def _execute(self: Any, *args: Any, **kwargs: Any) -> Any:
        core = _queries.client_for("asyncpg") if switch.on else None
        if core is None or kwargs.get("ignore_custom_codec"):  # asyncpg's introspection
            return await original(self, *args, **kwargs)
        query = args[0] if args else kwargs.get("query")
        values = args[1] if len(args) > 1 else kwargs.get("args")
        return await _timed(core, original(self, *args, **kwargs), query, values, False)

    return _execute


def _wrap_executemany(original: _Method, switch: _queries.Switch) -> _Method:
    @functools.wraps(original)
    async def _executemany(self: Any, *args: Any, **kwargs: Any) -> Any:
        core = _queries.client_for("asyncpg") if switch.on else None
        if core is None:
            return await original(self, *args, **kwargs)
        query = args[0] if args else kwargs.get("query")
        return await _timed(core, original(self, *args, **kwargs), query, None, True)

    return _executemany


async def _timed(
    core: ClientCore, running: Awaitable[Any], query: Any, values: Any, many: bool
) -> Any:
    started = time.perf_counter()
    try:
        result = await running
    except BaseException as exc:
        _record(core, query, values, many, started, exc)
        raise
    _record(core, query, values, many, started, None)
    return result


def _record(
    core: ClientCore,
    query: Any,
    values: Any,
    many: bool,
    started: float,
    error: BaseException | None,
) -> None:
    try:
        text = _queries.statement_text(query)
        data: dict[str, Any] = {"db.system": "postgresql"}
        if many:
            data["executemany"] = True
        elif values and core.options.send_default_pii:
            safe = _queries.parameters(core, text, values)
            if safe:
                data["db.params"] = safe
    except Exception:
        logger.warning("errlink: could not record an asyncpg query", exc_info=True, extra=INTERNAL)
        return
    _queries.record("query", text, data, started, error, {"statement": query, "parameters": values})
