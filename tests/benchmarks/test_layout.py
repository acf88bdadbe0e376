"""benchmarks' layers, read from the sources with ``ast`` (every import, also inside functions):
``benchmarks.common`` imports nothing else of ``benchmarks``; the suite (``benchmarks.suite``)
imports ``common`` and itself, never a study; a study never imports the suite or another study."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks"


def benchmark_imports(path: Path) -> set[str]:
    """The ``benchmarks.*`` modules ``path`` imports (absolute imports: the house has no relative ones)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert not node.level, f"{path}: relative import"
            names.add(node.module)
    return {n for n in names if n == "benchmarks" or n.startswith("benchmarks.")}


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ("common", "suite") else "study:" + ".".join(parts[1:])


@pytest.mark.parametrize("path", sorted(BENCH.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_layers(path):
    own = layer(".".join(path.relative_to(ROOT).with_suffix("").parts))
    allowed = {"common"} | ({"suite"} if own == "suite" else set())
    bad = {m for m in benchmark_imports(path) if layer(m) not in allowed and layer(m) != own}
    assert not bad, f"{path.relative_to(ROOT)} ({own}) imports {sorted(bad)}"
