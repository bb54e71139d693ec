"""Event levels: the five the protocol knows, and the other names a caller may mean by them.

The protocol's levels are ``fatal``, ``error``, ``warning``, ``info`` and ``debug``. A stdlib
logging name is accepted too, in any case (``CRITICAL`` is ``fatal``, ``warn`` is ``warning``),
and so is a logging level number (``logging.WARNING``; between two levels, the lower one).
"""

from __future__ import annotations

import logging

from .._options import LEVELS
from .misuse import ignore

_NAMES = {name: name for name in LEVELS} | {"critical": "fatal", "warn": "warning"}
_NUMBERS = (
    (logging.CRITICAL, "fatal"),
    (logging.ERROR, "error"),
    (logging.WARNING, "warning"),
    (logging.INFO, "info"),
)
_EXPECTED = f"a level ({', '.join(LEVELS)}, or a logging level name or number)"


def normalize_level(level: object, where: str, fallback: str | None) -> str | None:
    """The protocol level ``level`` means; for anything else, ``fallback`` (logged once)."""
    if isinstance(level, str):
        name = _NAMES.get(level) or _NAMES.get(str.lower(str.strip(level)))
        if name is not None:
            return name
    elif isinstance(level, int) and not isinstance(level, bool) and level >= 0:
        for threshold, name in _NUMBERS:
            if level >= threshold:
                return name
        return "debug"
    ignore(where, _EXPECTED, level, "ignored" if fallback is None else f"using {fallback!r}")
    return fallback
