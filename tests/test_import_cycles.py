"""No import cycle between the project's modules, read from the sources with ``ast`` (every
import, also inside functions, as tests/test_layers.py reads them); and no module of runtime/,
export/ or calib/ over 450 lines (a file holds one idea and stays small).

An import names the deepest project module it reaches: ``from runtime.backends import opener``
names ``runtime.backends.opener``, ``from runtime.backends import open_model`` names the package
``runtime.backends`` (its ``__init__``). A package is not counted as imported by its submodules
(Python runs the ``__init__`` first, but a package that re-exports its submodules is no cycle)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("runtime", "export", "calib", "tsi", "benchmarks")
MAX_LINES = 450
SMALL = ("runtime", "export", "calib")  # the deployable layers

# Cycles known outside runtime/, each a frozenset of the modules in it, to be broken by the
# package's owner (there are none now: keep it so).
KNOWN: set[frozenset[str]] = set()


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules(root: Path = ROOT, packages: tuple[str, ...] = PACKAGES) -> dict[str, Path]:
    return {module_name(p, root): p for pkg in packages for p in sorted((root / pkg).rglob("*.py"))}


def _deepest(name: str, modules: dict[str, Path]) -> str | None:
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        candidate = ".".join(parts[:i])
        if candidate in modules:
            return candidate
    return None


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules ``name`` (at ``path``) imports, anywhere in the file."""
    is_package = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = name.split(".") if is_package else name.split(".")[:-1]
                package = package[:len(package) - (node.level - 1)]
                base = ".".join(package + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", ""))
              in ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant)):
            targets = [str(node.args[0].value)]
        else:
            continue
        for target in targets:
            found = _deepest(target, modules)
            if found is not None and found != name:
                out.add(found)
    return out


def import_graph(root: Path = ROOT, packages: tuple[str, ...] = PACKAGES) -> dict[str, set[str]]:
    modules = project_modules(root, packages)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (a path back to its start) per strongly connected group of modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(v: str) -> None:  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [_path_in(group, graph) for group in groups]


def _path_in(group: set[str], graph: dict[str, set[str]]) -> list[str]:
    """A cycle through the group's first module, by breadth-first search inside the group."""
    start = min(group)
    parent: dict[str, str] = {}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph[v] & group):
            if w == start:
                path = [v]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                return list(reversed(path)) + [start]
            if w not in parent:
                parent[w] = v
                queue.append(w)
    raise AssertionError(f"no cycle in {group}")  # pragma: no cover


def test_no_import_cycles():
    found = cycles(import_graph())
    new = [" -> ".join(c) for c in found if frozenset(c) not in KNOWN]
    assert new == [], "import cycles:\n" + "\n".join(new)
    stale = KNOWN - {frozenset(c) for c in found}
    assert not stale, f"KNOWN lists cycles that are gone (remove them): {stale}"
    assert not any(m.startswith("runtime") for c in KNOWN for m in c)


def test_the_check_sees_a_cycle_through_a_function_and_a_relative_import(tmp_path):
    pkg = tmp_path / "calib"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from calib.a import f\n")
    (pkg / "a.py").write_text("def f():\n    from . import b\n")
    (pkg / "b.py").write_text("import calib.c as c\n")
    (pkg / "c.py").write_text("from calib import a\n")
    (pkg / "d.py").write_text("from calib import f\n")  # the package, not a cycle
    graph = import_graph(tmp_path, ("calib",))
    assert graph["calib.a"] == {"calib.b"} and graph["calib.d"] == {"calib"}
    assert cycles(graph) == [["calib.a", "calib.b", "calib.c", "calib.a"]]


@pytest.mark.parametrize("path", sorted(p for pkg in SMALL for p in (ROOT / pkg).rglob("*.py")),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_deployable_modules_are_small(path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)} has {lines} lines (at most {MAX_LINES})"
