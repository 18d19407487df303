"""The package's import graph has no cycle, counting every import (lazy ones included)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def _modules() -> dict[str, Path]:
    """Dotted name -> file of every module under ``src/`` (packages by their ``__init__``)."""
    out = {}
    for path in SRC.rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, name: str, is_package: bool, known: set[str]) -> set[str]:
    """Modules of ours that ``name`` imports anywhere but under ``if TYPE_CHECKING:``.

    ``from pkg import sub`` is an edge to ``pkg.sub`` where that is a module (to ``pkg``
    otherwise); ``import a.b`` an edge to ``a.b``.
    """
    found: set[str] = set()
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = name.split(".") if is_package else name.split(".")[:-1]
                pkg = pkg[:len(pkg) - node.level + 1]
                base = ".".join(pkg + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in known else base)
        stack.extend(ast.iter_child_nodes(node))
    return {m for m in found if m in known and m != name}


def import_graph() -> dict[str, set[str]]:
    """Edges of the import graph of ``src/``."""
    mods = _modules()
    known = set(mods)
    return {name: _imports(ast.parse(path.read_text()), name, path.name == "__init__.py", known)
            for name, path in mods.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle ``[a, b, ..., a]`` of ``graph``, or ``None``."""
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_no_import_cycle() -> None:
    graph = import_graph()
    assert "pianossm.engine.core" in graph and "pianossm.engine.kernels" in graph[
        "pianossm.engine.core"]  # `from pianossm.engine import kernels` names the module
    assert "pianossm.engine" not in graph["pianossm.engine.core"]
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_cycle_finder_finds_cycles() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None
    tree = ast.parse("from . import b\nfrom .c import x\nif TYPE_CHECKING:\n    import p.d\n"
                     "def f():\n    import p.e\n")
    assert _imports(tree, "p.a", False, {"p", "p.a", "p.b", "p.c", "p.d", "p.e"}) == {
        "p.b", "p.c", "p.e"}
