"""The package's architecture, checked: imports between meshready's own modules form no
cycle, and command modules stay thin."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "tools" / "meshready"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """meshready modules `path` imports, at module level or inside functions alike."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from pkg import submodule` depends on the submodule; `from pkg import name`
            # on the package's __init__.
            submodules = [f"{node.module}.{a.name}" for a in node.names]
            names = [s for s in submodules if s in modules]
            if len(names) < len(submodules):
                names.append(node.module)
        found.update(name for name in names if name in modules)
    return found


def import_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(files)
    return {name: imports_of(path, modules) - {name} for name, path in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as the list of modules along it, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycles_between_meshready_modules():
    graph = import_graph()
    assert "meshready.commands.check" in graph  # the graph is the real package
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_no_core_package_imports_a_command():
    graph = import_graph()
    offenders = {
        name: sorted(i for i in imported if i.startswith("meshready.commands"))
        for name, imported in graph.items()
        if not name.startswith("meshready.commands")
        and name not in ("meshready.cli", "meshready.entry")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


@pytest.mark.skipif("mutants" in PACKAGE.parts, reason="mutmut's copy is rewritten code")
def test_command_modules_are_thin():
    sizes = {p.name: len(p.read_text().splitlines()) for p in (PACKAGE / "commands").glob("*.py")}
    assert sizes and max(sizes.values()) <= 280, sizes


def test_test_module_names_are_unique():
    """pytest imports test modules by basename (no __init__.py): two of one name collide."""
    names = [p.name for p in (PACKAGE.parents[1] / "tests").rglob("test_*.py")]
    assert len(names) > 10
    assert sorted(n for n in set(names) if names.count(n) > 1) == []
