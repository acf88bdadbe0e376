"""Power on a Jetson from ``tegrastats``: rails parsed from its lines, sampled during a measurement,
turned into average watts and millijoules per clip.

tegrastats prints one line per interval. The power rails read ``NAME current/average``:
JetPack 5/6 (Orin, Xavier NX) ``VDD_IN 4788mW/4788mW VDD_CPU_GPU_CV 797mW/797mW VDD_SOC 1355mW/1355mW``,
JetPack 4 (Nano, TX2) ``POM_5V_IN 3620/3620 POM_5V_GPU 0/0 POM_5V_CPU 123/123`` (mW without a unit).
The whole module's input is ``VDD_IN`` (``POM_5V_IN`` on JetPack 4); where neither is reported,
the sum of the rails is used and the report says so. Each sample uses the rail's *current* value
(the second number is tegrastats' own running average since it started).
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

TOTAL_RAILS = ("VDD_IN", "POM_5V_IN")
_RAIL_MW = re.compile(r"\b([A-Z][A-Z0-9_]*) (\d+)mW/(\d+)mW\b")
_RAIL_OLD = re.compile(r"\b((?:POM|VDD)_[A-Z0-9_]+) (\d+)/(\d+)\b")


def parse_line(line: str) -> dict[str, int]:
    """Current power of every rail in one tegrastats line, in mW (empty if it reports none)."""
    rails = {m.group(1): int(m.group(2)) for m in _RAIL_MW.finditer(line)}
    if not rails:
        rails = {m.group(1): int(m.group(2)) for m in _RAIL_OLD.finditer(line)}
    return rails


def total_mw(rails: dict[str, int]) -> tuple[float, str] | None:
    """(input power in mW, what it is): VDD_IN / POM_5V_IN, else the sum of the rails."""
    for name in TOTAL_RAILS:
        if name in rails:
            return float(rails[name]), name
    if rails:
        return float(sum(rails.values())), "sum of " + "+".join(sorted(rails))
    return None


def summarize(lines: list[str], seconds: float, clips: int) -> dict:
    """Average input watts over the sampled lines, and the energy per clip (W x s / clips)."""
    values = [t for t in (total_mw(parse_line(line)) for line in lines) if t is not None]
    if not values:
        raise ValueError(f"none of the {len(lines)} tegrastats line(s) reports a power rail")
    watts = sum(v for v, _ in values) / len(values) / 1000.0
    return {"samples": len(values), "rail": values[0][1], "average_w": watts, "seconds": seconds,
            "clips": clips, "mj_per_clip": watts * seconds / clips * 1000.0 if clips else None}


def tegrastats_path() -> str | None:
    return shutil.which("tegrastats")


@dataclass
class TegrastatsSampler:
    """``with TegrastatsSampler(interval_ms) as s: ...`` runs ``tegrastats --interval N`` and keeps
    the lines printed in between; :meth:`result` summarizes them."""

    interval_ms: int = 100
    executable: str | None = None
    lines: list[str] = field(default_factory=list)

    def __enter__(self) -> "TegrastatsSampler":
        exe = self.executable or tegrastats_path()
        if exe is None:
            raise FileNotFoundError("tegrastats not found on PATH (not a Jetson)")
        self._proc = subprocess.Popen([exe, "--interval", str(self.interval_ms)], stdout=subprocess.PIPE,
                                      stderr=subprocess.DEVNULL, text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._t0 = time.perf_counter()
        return self

    def _read(self) -> None:
        for line in self._proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self._t0
        self._proc.terminate()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._reader.join(timeout=5)

    def result(self, clips: int) -> dict:
        return summarize(self.lines, self.seconds, clips)
