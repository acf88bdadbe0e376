"""The import layers, read from the sources with ``ast`` (every import, also inside functions):
``calib`` never imports ``export``; ``runtime`` never imports torch, ``tsi``, ``export`` or ``calib``
(its optional torch development backend aside). tests/runtime/test_imports.py imports every runtime
module with those packages blocked."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FORBIDDEN = {
    "calib": {"export"},
    "runtime": {"torch", "tsi", "export", "calib"},
}
EXEMPT = {ROOT / "runtime" / "backends" / "torch_dev.py": {"torch", "tsi"}}


def imported_packages(path: Path, root: Path = ROOT) -> list[tuple[int, str]]:
    """(line, top-level package) of every import in ``path``; relative imports resolve inside the
    file's own package, so they name that package."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name.split(".")[0]) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                out.append((node.lineno, path.relative_to(root).parts[0]))
            elif node.module:
                out.append((node.lineno, node.module.split(".")[0]))
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
                "import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant):
            out.append((node.lineno, str(node.args[0].value).split(".")[0]))
    return out


def violations(layer: str, root: Path = ROOT) -> list[str]:
    bad = []
    for path in sorted((root / layer).rglob("*.py")):
        allowed = EXEMPT.get(path, set())
        for line, pkg in imported_packages(path, root):
            if pkg in FORBIDDEN[layer] - allowed:
                bad.append(f"{path.relative_to(root)}:{line} imports {pkg}")
    return bad


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports(layer):
    assert violations(layer) == []


def test_the_check_sees_imports_inside_functions(tmp_path):
    """The checker itself: an import hidden in a function, a from-import and an import_module call."""
    pkg = tmp_path / "calib"
    pkg.mkdir()
    (pkg / "m.py").write_text("import numpy\n\ndef f():\n    from export.plugin_graph import x\n"
                              "    import importlib\n    importlib.import_module('export.trt_check')\n")
    (pkg / "ok.py").write_text("from . import m\nimport runtime.card\n")
    assert violations("calib", tmp_path) == ["calib/m.py:4 imports export", "calib/m.py:6 imports export"]
