"""What the door tests share: a command run as a subprocess that reports its own peak RSS."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PEAK_MB = 500

# the child runs the command and reports its own child's peak RSS (RUSAGE_CHILDREN of a process
# with that one child), so earlier tests' children do not count
_MEASURE = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
            "sys.stderr.write(r.stderr); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
            "sys.exit(r.returncode)")


def run_measured(argv: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    """``python ARGV`` from the repository root; its peak RSS in KiB is the last word of stdout."""
    return subprocess.run([sys.executable, "-c", _MEASURE, sys.executable, *argv], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)


def peak_mb(r: subprocess.CompletedProcess) -> float:
    return int(r.stdout.split()[-1]) / 1024
