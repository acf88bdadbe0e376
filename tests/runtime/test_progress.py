"""runtime.common.progress: a bar only when stderr is a terminal; redirected, nothing is written."""

from __future__ import annotations

import io
import os
import sys

import pytest

from runtime.common.progress import on_terminal, progress_bar


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
