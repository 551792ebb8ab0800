"""No import circle in the package.

The graph is read from the source (ast, nothing imported): an edge for each
module-level import of another ``videoroomd`` module, those under ``if
TYPE_CHECKING:`` included, since a circle a type checker must untangle is a
circle a reader must untangle too. Imports inside functions are left out:
they run late and say so. ``from . import x`` counts as an import of the
module ``x``; a package's own ``__init__`` is not counted as imported by its
submodules (Python runs it first, but that is the package, not a dependency).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "videoroomd"


def module_names(root: Path) -> dict[str, tuple[Path, bool]]:
    """Every module under ``root``: dotted name → (file, is a package)."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        modules[".".join(parts)] = (path, is_package)
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _module_level(body: list[ast.stmt]):
    """The import statements that run when the module is imported (or type-checked)."""
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If):
            yield from _module_level(node.body)
            yield from _module_level(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, *(h.body for h in node.handlers), node.orelse, node.finalbody):
                yield from _module_level(block)


def imports_of(name: str, path: Path, is_package: bool, modules: dict) -> set[str]:
    """The package modules that module ``name`` imports at module level."""
    found = set()
    for node in _module_level(ast.parse(path.read_text(), str(path)).body):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in modules)
            continue
        if node.level:
            base = name.split(".") if is_package else name.split(".")[:-1]
            base = base[:len(base) - node.level + 1]
            target = ".".join(base + ([node.module] if node.module else []))
        else:
            target = node.module or ""
        for alias in node.names:
            if f"{target}.{alias.name}" in modules:
                found.add(f"{target}.{alias.name}")
            elif target in modules:
                found.add(target)
    found.discard(name)
    return found


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    modules = module_names(root)
    return {name: imports_of(name, path, is_package, modules) for name, (path, is_package) in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One circle through each strongly connected group of modules, as the modules in import order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups = []

    def visit(node: str) -> None:  # Tarjan's algorithm; the package is far too shallow for the recursion limit
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(set(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_circle_in(group, graph) for group in groups]


def _circle_in(group: set[str], graph: dict[str, set[str]]) -> list[str]:
    """A shortest circle from the group's first module back to itself."""
    start = min(group)
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for other in sorted(graph[node] & group):
            if other == start:
                return paths[node] + [start]
            if other not in paths:
                paths[other] = paths[node] + [other]
                queue.append(other)
    raise AssertionError(f"no circle in {sorted(group)}")


def test_the_package_has_no_import_circle():
    found = cycles(import_graph())
    assert not found, "import circles:\n" + "\n".join(" → ".join(circle) for circle in found)


HANDLERS = ("videoroomd.signalling.", "videoroomd.http.", "videoroomd.web.", "videoroomd.context")


def test_handlers_reach_the_daemon_only_through_their_context_and_rooms_only_through_the_link():
    graph = import_graph()
    handlers = [name for name in graph if name.startswith(HANDLERS)]
    assert "videoroomd.signalling.relay" in handlers and "videoroomd.http.routes" in handlers
    reaching = {name: sorted(other for other in graph[name] if other.startswith("videoroomd.daemon")
                             or other in ("videoroomd.rooms.room", "videoroomd.rooms.local_link"))
                for name in handlers}
    assert {name: found for name, found in reaching.items() if found} == {}
    # nor by name through a package that re-exports them
    modules = module_names(PACKAGE)
    named = {name: sorted(alias.name for node in _module_level(ast.parse(modules[name][0].read_text()).body)
                          if isinstance(node, ast.ImportFrom) for alias in node.names
                          if alias.name in ("Daemon", "Room", "Peer", "RoomRegistry"))
             for name in handlers}
    assert {name: found for name, found in named.items() if found} == {}


@pytest.mark.parametrize(("files", "circle"), [
    ({"a.py": "from . import b\n", "b.py": "from .c import thing\n", "c.py": "from .a import x\n"},
     ["pkg.a", "pkg.b", "pkg.c", "pkg.a"]),
    ({"a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .b import B\n", "b.py": "import pkg.a\n"},
     ["pkg.a", "pkg.b", "pkg.a"]),
    ({"sub/__init__.py": "from .x import y\n", "sub/x.py": "from ..top import z\n", "top.py": "from .sub import x\n"},
     ["pkg.sub.x", "pkg.top", "pkg.sub.x"]),
])
def test_a_circle_is_found_and_named(tmp_path, files, circle):
    root = tmp_path / "pkg"
    for name, text in {"__init__.py": "", **files}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    assert cycles(import_graph(root)) == [circle]


def test_imports_inside_functions_make_no_circle(tmp_path):
    root = tmp_path / "pkg"
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "a.py").write_text("from . import b\n")
    (root / "b.py").write_text("def late():\n    from . import a\n")
    assert cycles(import_graph(root)) == []
