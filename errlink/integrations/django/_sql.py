"""SQL queries as breadcrumbs, through each database connection's execute wrappers.

The wrapper is attached once per connection when it connects (Django's `connection_created`
signal), not per request: requests pay nothing for it, and queries outside requests (management
commands, workers) get breadcrumbs too. Parameters are recorded only with `send_default_pii`:
they are the user's data, while the SQL text holds only placeholders.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .._sdk import INTERNAL, add_breadcrumb_dict, current_client, logger
from . import _config


def record_query(
    execute: Callable[..., Any], sql: Any, params: Any, many: bool, context: dict[str, Any]
) -> Any:
    if not _config.current.sql_breadcrumbs:
        return execute(sql, params, many, context)
    core = current_client()
    if core is None or not core.enabled:
        return execute(sql, params, many, context)
    started = time.time()
    begin = time.perf_counter()
    failed = True
    try:
        result = execute(sql, params, many, context)
        failed = False
        return result
    finally:
        elapsed = time.perf_counter() - begin
        try:
            connection = context.get("connection")
            data: dict[str, Any] = {
                "db.alias": getattr(connection, "alias", None),
                "db.vendor": getattr(connection, "vendor", None),
                "duration_ms": round(elapsed * 1000, 3),
            }
            if many:
                data["executemany"] = True
            elif params is not None and core.options.send_default_pii:
                data["params"] = params
            crumb = {
                "type": "query",
                "category": "query",
                "level": "error" if failed else "info",
                "message": sql if isinstance(sql, str) else repr(sql),
                "timestamp": started,
                "data": data,
            }
            add_breadcrumb_dict(crumb, {"sql": sql, "params": params})
        except Exception:
            logger.warning(
                "errlink: could not record a query breadcrumb", exc_info=True, extra=INTERNAL
            )


def attach(connection: Any) -> None:
    wrappers = connection.execute_wrappers
    if record_query not in wrappers:
        # First, not last: `connection.execute_wrapper()` blocks pop the last entry on exit, so
        # a wrapper appended while one is open would be the one they remove.
        wrappers.insert(0, record_query)


def on_connection_created(sender: Any, connection: Any, **_: Any) -> None:
    attach(connection)
