"""runtime.common.progress: a bar only when stderr is a terminal; redirected, nothing is written."""

from __future__ import annotations

import ast
import io
import os
import sys
from pathlib import Path

import pytest

from runtime.common.progress import on_terminal, progress_bar

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("tsi", "export", "calib", "runtime", "benchmarks")


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_terminal():
    assert not on_terminal(io.StringIO())
    assert not on_terminal(object())  # no isatty
    closed = io.StringIO()
    closed.close()
    assert not on_terminal(closed)
    primary, secondary = os.openpty()
    try:
        with os.fdopen(secondary, "w", closefd=False) as tty:
            assert on_terminal(tty)
    finally:
        os.close(primary)
        os.close(secondary)


@pytest.mark.parametrize("terminal", [False, True])
def test_a_bar_only_on_a_terminal(monkeypatch, terminal):
    pytest.importorskip("tqdm")
    err = FakeTerminal() if terminal else io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    bar = progress_bar(range(5), desc="work", mininterval=0)
    assert list(bar) == [0, 1, 2, 3, 4]  # iterates either way
    bar.set_postfix(loss="1.0")
    bar.close()
    written = err.getvalue()
    assert ("\r" in written and "work" in written) if terminal else written == ""
    err = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", err)
    bar = progress_bar(total=3, enabled=False)  # the caller's own switch still turns it off
    bar.update(3)
    bar.close()
    assert err.getvalue() == ""


def test_every_bar_comes_from_the_helper():
    """No module of the project but runtime.common.progress imports tqdm (every bar is on-terminal only)."""
    helper = ROOT / "runtime" / "common" / "progress.py"
    bad = []
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            if path == helper:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                         [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                if any(n.split(".")[0] == "tqdm" for n in names):
                    bad.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert bad == [], f"import runtime.common.progress.progress_bar instead of tqdm: {bad}"
