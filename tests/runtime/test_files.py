"""runtime.common.files: the advisory output lock across processes, and stale temporaries."""

from __future__ import annotations

import subprocess
import sys

import pytest

from runtime.common.files import OutputLockedError, atomic_path, exclusive, remove_stale_temps

HOLD = ("import sys, time; from runtime.common.files import exclusive\n"
        "with exclusive(sys.argv[1]):\n    print('held', flush=True); time.sleep(float(sys.argv[2]))\n")


def _holder(target, seconds):
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(target), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "held"
    return p


def test_a_second_run_is_refused_while_the_first_holds_the_output(tmp_path):
    target = tmp_path / "actions.jsonl"
    p = _holder(target, 30)
    try:
        with pytest.raises(OutputLockedError, match="being written by another run"):
            with exclusive(target):
                pass
    finally:
        p.kill()
        p.wait()
    with exclusive(target):  # released by the kernel when the holder died (SIGKILL)
        pass


def test_stale_temporaries_are_removed_once_the_lock_is_held(tmp_path):
    target = tmp_path / "last.pt"
    with pytest.raises(RuntimeError):
        with atomic_path(target):
            raise RuntimeError("the write failed")  # atomic_path removes its own temporary ...
    # ... but a kill -9 does not give it the chance: leave one as it would be left
    stale = tmp_path / ".last.abcd1234.tmp"
    stale.write_bytes(b"half")
    other = tmp_path / ".best.abcd1234.tmp"  # another target's: kept
    other.write_bytes(b"x")
    mine = tmp_path / ".last.notatemp"
    mine.write_bytes(b"x")
    with exclusive(target):
        assert not stale.exists() and other.exists() and mine.exists()
    assert remove_stale_temps(target) == []


def test_the_lock_works_in_one_process_too(tmp_path):
    target = tmp_path / "out"
    with exclusive(target):
        with pytest.raises(OutputLockedError):
            with exclusive(target):
                pass
