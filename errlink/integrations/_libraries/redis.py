"""redis-py commands as breadcrumbs, synchronous and asyncio clients.

redis-py has no hook around a command, so errlink wraps one place per client class:
``execute_command`` of `redis.Redis` and of `redis.asyncio.Redis` (every command method goes
through it), and ``execute`` of each one's pipeline (a pipeline queues its commands and sends
them together: one breadcrumb for the lot). The asyncio client is wrapped when
`redis.asyncio` is imported, never imported by errlink.

A breadcrumb says what was done to which key: the command name and its key (``SET user:1``).
Values are never recorded, whatever the options say, nor any argument of a command that takes
no key (``AUTH``, ``HELLO``, ``EVAL``'s script, ``CONFIG SET``...).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from .._sdk import INTERNAL, logger
from . import _import_watch, _queries

# Commands whose first argument is not a key: a subcommand, a secret, a script, a count...
# Their breadcrumb holds the command name alone.
_KEYLESS = frozenset(
    """
    ACL AUTH BGREWRITEAOF BGSAVE BITOP BLMPOP BZMPOP CLIENT CLUSTER COMMAND CONFIG DBSIZE DEBUG
    DISCARD ECHO EVAL EVALSHA EVALSHA_RO EVAL_RO EXEC FAILOVER FCALL FCALL_RO FLUSHALL FLUSHDB
    FUNCTION HELLO INFO LASTSAVE LATENCY LMPOP LOLWUT MEMORY MIGRATE MODULE MONITOR MULTI OBJECT
    PING PSYNC PUBSUB QUIT RANDOMKEY READONLY READWRITE REPLICAOF RESET ROLE SAVE SCAN SCRIPT
    SELECT SENTINEL SHUTDOWN SINTERCARD SLAVEOF SLOWLOG SWAPDB SYNC TIME UNWATCH WAIT WAITAOF
    XINFO XREAD XREADGROUP ZDIFF ZINTER ZINTERCARD ZMPOP ZUNION
    """.split()  # noqa: SIM905 (a table to read)
)
_PIPELINE_SHOWN = 10  # commands named in a pipeline's breadcrumb


def hook() -> _queries.Undo:
    import redis.client

    undos = [
        _queries.patch(redis.client.Redis, "execute_command", _wrap_command),
        _queries.patch(redis.client.Pipeline, "execute", _wrap_pipeline),
    ]
    live = [True]

    def hook_asyncio(client: Any) -> None:  # the module redis.asyncio.client
        if not live[0]:
            return
        undos.append(_queries.patch(client.Redis, "execute_command", _wrap_async_command))
        undos.append(_queries.patch(client.Pipeline, "execute", _wrap_async_pipeline))

    _import_watch.when_imported("redis.asyncio.client", hook_asyncio)

    def undo() -> None:
        live[0] = False
        for each in reversed(undos):
            each()

    return undo


# -- synchronous --------------------------------------------------------------------------------


def _wrap_command(original: Callable[..., Any], switch: _queries.Switch) -> Callable[..., Any]:
    @functools.wraps(original)
    def execute_command(self: Any, *args: Any, **options: Any) -> Any:
        core = _queries.client_for("redis") if switch.on else None
        if core is None:
            return original(self, *args, **options)
        started = time.perf_counter()
        try:
            result = original(self, *args, **options)
        except BaseException as exc:
            _record_command(args, started, exc)
            raise
        _record_command(args, started, None)
        return result

    return execute_command


def _wrap_pipeline(original: Callable[..., Any], switch: _queries.Switch) -> Callable[..., Any]:
    @functools.wraps(original)
    def execute(self: Any, *args: Any, **kwargs: Any) -> Any:
        core = _queries.client_for("redis") if switch.on else None
        stack = _stack(self) if core is not None else None
        if not stack:
            return original(self, *args, **kwargs)
        started = time.perf_counter()
        try:
            result = original(self, *args, **kwargs)
        except BaseException as exc:
            _record_pipeline(self, stack, started, exc)
            raise
        _record_pipeline(self, stack, started, None)
        return result

    return execute


# -- asyncio ------------------------------------------------------------------------------------


def _wrap_async_command(
    original: Callable[..., Awaitable[Any]], switch: _queries.Switch
) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(original)
    async def execute_command(self: Any, *args: Any, **options: Any) -> Any:
        core = _queries.client_for("redis") if switch.on else None
        if core is None:
            return await original(self, *args, **options)
        started = time.perf_counter()
        try:
            result = await original(self, *args, **options)
        except BaseException as exc:
            _record_command(args, started, exc)
            raise
        _record_command(args, started, None)
        return result

    return execute_command


def _wrap_async_pipeline(
    original: Callable[..., Awaitable[Any]], switch: _queries.Switch
) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(original)
    async def execute(self: Any, *args: Any, **kwargs: Any) -> Any:
        core = _queries.client_for("redis") if switch.on else None
        stack = _stack(self) if core is not None else None
        if not stack:
            return await original(self, *args, **kwargs)
        started = time.perf_counter()
        try:
            result = await original(self, *args, **kwargs)
        except BaseException as exc:
            _record_pipeline(self, stack, started, exc)
            raise
        _record_pipeline(self, stack, started, None)
        return result

    return execute


# -- breadcrumbs --------------------------------------------------------------------------------


def _record_command(args: Sequence[Any], started: float, error: BaseException | None) -> None:
    try:
        name, key = _described(args)
    except Exception:
        logger.warning("errlink: could not record a Redis command", exc_info=True, extra=INTERNAL)
        return
    data: dict[str, Any] = {"db.operation": name}
    if key is not None:
        data["redis.key"] = key
    message = name if key is None else f"{name} {key}"
    _queries.record("redis", message, data, started, error, {"command": name, "key": key})


def _record_pipeline(
    pipeline: Any, stack: list[Sequence[Any]], started: float, error: BaseException | None
) -> None:
    try:
        commands = [_summary(args) for args in stack[:_PIPELINE_SHOWN]]
        message = "; ".join(commands)
        if len(stack) > _PIPELINE_SHOWN:
            message += f"; ... ({len(stack) - _PIPELINE_SHOWN} more)"
        transaction = _is_transaction(pipeline)
        data: dict[str, Any] = {
            "db.operation": "PIPELINE",
            "redis.commands": len(stack),
            "redis.transaction": transaction,
        }
    except Exception:
        logger.warning("errlink: could not record a Redis pipeline", exc_info=True, extra=INTERNAL)
        return
    _queries.record("redis", message, data, started, error, {"commands": commands})


def _is_transaction(pipeline: Any) -> bool:
    # `transaction` is the flag on the sync pipeline, a method (inherited) on the asyncio one.
    for name in ("is_transaction", "transaction"):
        flag = getattr(pipeline, name, None)
        if isinstance(flag, bool):
            return flag or getattr(pipeline, "explicit_transaction", False) is True
    return False


def _stack(pipeline: Any) -> list[Sequence[Any]] | None:
    """The arguments of each command a pipeline is about to send (a copy: it empties its
    stack as it goes)."""
    try:
        return [_arguments(entry) for entry in pipeline.command_stack]
    except Exception:
        return None


def _arguments(entry: Any) -> Sequence[Any]:
    if isinstance(entry, tuple) and entry and isinstance(entry[0], tuple | list):
        return entry[0]  # (args, options)
    arguments = getattr(entry, "args", ())
    return arguments if isinstance(arguments, tuple | list) else ()


def _summary(args: Sequence[Any]) -> str:
    name, key = _described(args)
    return name if key is None else f"{name} {key}"


def _described(args: Sequence[Any]) -> tuple[str, str | None]:
    """The command's name (upper case) and key, if it has one. Nothing else in `args` is
    looked at."""
    if not args:
        return "", None
    name = _text(args[0]).upper()
    if len(args) < 2 or name.split(" ", 1)[0] in _KEYLESS:
        return name, None
    key = args[1]
    return name, _text(key) if isinstance(key, str | bytes | bytearray | int | float) else None


def _text(value: Any) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace")
    return str(value)
