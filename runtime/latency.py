"""Per-stage latency statistics in bounded memory: the mean and max over the whole run, the
percentiles over the last ``window`` samples of each stage."""

from __future__ import annotations

from typing import Iterable

import numpy as np

__all__ = ["LatencyStats", "STAGES"]

STAGES = ("capture", "preprocess", "inference", "end_to_end")


class LatencyStats:
    def __init__(self, stages: Iterable[str] = STAGES, window: int = 4096) -> None:
        if window < 1:
            raise ValueError("window must be >= 1")
        self.window = window
        self._samples = {s: np.zeros(window, dtype=np.float64) for s in stages}
        self._count = {s: 0 for s in self._samples}
        self._sum = {s: 0.0 for s in self._samples}
        self._max = {s: 0.0 for s in self._samples}

    @property
    def stages(self) -> tuple[str, ...]:
        return tuple(self._samples)

    def add(self, stage: str, ms: float) -> None:
        n = self._count[stage]
        self._samples[stage][n % self.window] = ms
        self._count[stage] = n + 1
        self._sum[stage] += ms
        if ms > self._max[stage]:
            self._max[stage] = ms

    def count(self, stage: str) -> int:
        return self._count[stage]

    def last(self, stage: str) -> float | None:
        n = self._count[stage]
        return float(self._samples[stage][(n - 1) % self.window]) if n else None

    def since(self, stage: str, count: int) -> np.ndarray:
        """The samples of ``stage`` added after the first ``count`` (at most the last ``window``)."""
        n = self._count[stage]
        new = min(n - count, self.window, n)
        if new <= 0:
            return self._samples[stage][:0]
        idx = np.arange(n - new, n) % self.window
        return self._samples[stage][idx]

    def summary(self) -> dict[str, dict[str, float]]:
        """stage -> {n, mean_ms, p50_ms, p95_ms, max_ms} (stages with samples only)."""
        out = {}
        for stage, buf in self._samples.items():
            n = self._count[stage]
            if not n:
                continue
            recent = buf[: min(n, self.window)]
            p50, p95 = np.percentile(recent, [50, 95])
            out[stage] = {"n": n, "mean_ms": round(self._sum[stage] / n, 3),
                          "p50_ms": round(float(p50), 3), "p95_ms": round(float(p95), 3),
                          "max_ms": round(self._max[stage], 3)}
        return out
