"""Every module a source file imports, also inside functions: ``import a.b`` gives ``a.b``,
``from a import b`` gives ``a`` and ``a.b`` (the scene generators' tests: each scene is its own)."""

from __future__ import annotations

import ast
from pathlib import Path


def imported_names(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            names |= {node.module or ""} | {f"{node.module}.{a.name}" for a in node.names}
    return names
