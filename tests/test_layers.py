"""The import layers, read from the sources with ``ast`` (every import, also inside functions):
``runtime.common`` (files, errors, the video reader) imports nothing of the project outside itself;
``calib`` never imports ``export``, ``tsi`` or torch; ``runtime`` never imports torch, ``tsi``,
``export`` or ``calib`` (its optional torch development backend aside). tests/runtime/test_imports.py imports every runtime
module with those packages blocked."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FORBIDDEN = {
    "calib": {"export", "tsi", "torch"},
    "runtime": {"torch", "tsi", "export", "calib"},
    "runtime/common": {"torch", "tsi", "export", "calib", "benchmarks", "runtime"},
}
EXEMPT = {ROOT / "runtime" / "backends" / "torch_dev.py": {"torch", "tsi"}}


def _top(module: str) -> str:
    """The package an import names; ``runtime.common`` counts as its own layer."""
    return "runtime/common" if module.split(".")[:2] == ["runtime", "common"] else module.split(".")[0]


def imported_packages(path: Path, root: Path = ROOT) -> list[tuple[int, str]]:
    """(line, top-level package) of every import in ``path``; relative imports resolve inside the
    file's own package, so they name that package."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, _top(a.name)) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                out.append((node.lineno, _top(".".join(path.relative_to(root).parts[:2]))))
            elif node.module:
                out.append((node.lineno, _top(node.module)))
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
                "import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant):
            out.append((node.lineno, _top(str(node.args[0].value))))
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


def test_common_layer_is_self_contained(tmp_path):
    """The checker sees runtime.common reach up into runtime, and lets it import itself."""
    pkg = tmp_path / "runtime" / "common"
    pkg.mkdir(parents=True)
    (pkg / "a.py").write_text("from runtime.common import files\nfrom . import b\nimport cv2\n")
    (pkg / "b.py").write_text("from runtime.card import ModelCard\n")
    assert violations("runtime/common", tmp_path) == ["runtime/common/b.py:1 imports runtime"]
