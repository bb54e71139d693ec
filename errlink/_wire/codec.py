"""JSON encoding for the wire: orjson (a core dependency on CPython), else the stdlib."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

Encoder = Callable[[Any], bytes]


def _stdlib_dumps(value: Any) -> bytes:
    return json.dumps(
        value, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=str
    ).encode("utf-8", "surrogatepass")


def _make_dumps() -> tuple[Encoder, str]:
    try:
        import orjson
    except ImportError:
        return _stdlib_dumps, "json"

    option = orjson.OPT_NON_STR_KEYS

    def orjson_dumps(value: Any) -> bytes:
        try:
            return orjson.dumps(value, default=str, option=option)
        except (TypeError, orjson.JSONEncodeError):
            # orjson refuses what the stdlib tolerates (lone surrogates, huge ints): fall back.
            return _stdlib_dumps(value)

    return orjson_dumps, "orjson"


dumps, BACKEND = _make_dumps()


def loads(data: bytes | str) -> Any:
    return json.loads(data)
