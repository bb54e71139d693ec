"""Importing an optional framework with a clear error naming the extra to install."""

from __future__ import annotations

import importlib
import importlib.metadata
from types import ModuleType


class MissingFrameworkError(ImportError):
    """The framework an integration needs is not installed, or too old."""


def require(module: str, *, distribution: str, extra: str, minimum: tuple[int, ...]) -> ModuleType:
    """Import `module`, checking the installed `distribution` is at least `minimum`."""
    try:
        imported = importlib.import_module(module)
    except ImportError as exc:
        raise MissingFrameworkError(
            f"errlink's {extra} integration needs {distribution}: pip install 'errlink[{extra}]'"
        ) from exc
    try:
        version = importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return imported  # vendored or unusual install: trust the import
    if version_tuple(version) < minimum:
        wanted = ".".join(map(str, minimum))
        raise MissingFrameworkError(
            f"errlink's {extra} integration needs {distribution} >= {wanted}, found {version}: "
            f"pip install -U 'errlink[{extra}]'"
        )
    return imported


def version_tuple(version: str) -> tuple[int, ...]:
    parts: list[int] = []
    for piece in version.split("."):
        digits = ""
        for char in piece:
            if not char.isdigit():
                break
            digits += char
        if not digits:
            break
        parts.append(int(digits))
        if digits != piece:
            break
    return tuple(parts)
