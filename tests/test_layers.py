"""The package's layers: capture -> delivery -> outbox -> wire, with no cycle and no call back up.

Imports are read from the source (every import statement, including those under
``TYPE_CHECKING`` and inside functions), so a cycle hidden from the interpreter still fails here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import errlink

PACKAGE_DIR = Path(errlink.__file__).parent


def _modules() -> dict[str, tuple[Path, bool]]:
    found = {}
    for path in PACKAGE_DIR.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        found[".".join(parts)] = (path, is_package)
    return found


MODULES = _modules()


def _imports(name: str) -> set[str]:
    """The errlink modules that module `name` imports, anywhere in its source."""
    path, is_package = MODULES[name]
    imported = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                imported.add(submodule if submodule in MODULES else target)
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    return {module for module in imported if module in MODULES and module != name}


GRAPH = {name: _imports(name) for name in MODULES}


def _find_cycle() -> list[str] | None:
    state: dict[str, str] = {}  # "open" while on the current path, "done" once fully explored
    path: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = "open"
        path.append(name)
        for dependency in sorted(GRAPH[name]):
            if state.get(dependency) == "open":
                return [*path[path.index(dependency) :], dependency]
            if dependency not in state:
                cycle = visit(dependency)
                if cycle:
                    return cycle
        path.pop()
        state[name] = "done"
        return None

    for name in sorted(GRAPH):
        if name not in state:
            cycle = visit(name)
            if cycle:
                return cycle
    return None


def test_the_walk_sees_the_whole_package() -> None:
    assert {"errlink._capture.core", "errlink._delivery.pipeline", "errlink._wire.envelope"} <= set(
        GRAPH
    )
    assert "errlink._delivery.pipeline" in GRAPH["errlink._capture.core"]


def test_the_import_graph_has_no_cycle() -> None:
    assert _find_cycle() is None, " -> ".join(_find_cycle() or [])


def _in(name: str, *packages: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


# What each layer may import from errlink, besides itself: layers call down, never up.
_BELOW = {
    "errlink._wire": ("errlink._version",),
    "errlink._outbox": ("errlink._wire", "errlink._log", "errlink._version"),
    "errlink._delivery": (
        "errlink._outbox",
        "errlink._wire",
        "errlink._log",
        "errlink._options",
        "errlink._version",
    ),
    "errlink._capture": (
        "errlink._delivery",
        "errlink._outbox",
        "errlink._wire",
        "errlink._log",
        "errlink._options",
        "errlink._version",
    ),
    # The collector shares the wire format with the client, and nothing else.
    "errlink.collector": ("errlink._wire", "errlink._version"),
}


@pytest.mark.parametrize("layer", sorted(_BELOW))
def test_layers_import_only_what_is_below_them(layer: str) -> None:
    upward = sorted(
        f"{name} -> {dependency}"
        for name, dependencies in GRAPH.items()
        if _in(name, layer)
        for dependency in dependencies
        if not _in(dependency, layer, *_BELOW[layer])
    )
    assert upward == []


def test_integrations_reach_the_core_only_through_the_sdk_seam() -> None:
    seam = "errlink.integrations._sdk"
    private = sorted(
        f"{name} -> {dependency}"
        for name, dependencies in GRAPH.items()
        if _in(name, "errlink.integrations") and name != seam
        for dependency in dependencies
        if not _in(dependency, "errlink.integrations")
    )
    assert private == []
