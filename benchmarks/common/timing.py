"""Latency, throughput and peak memory of one callable.

Latency: ``warmup`` untimed calls, then ``repeats`` timed calls at batch 1 (wall clock,
``time.perf_counter``; on CUDA the callable synchronises); p50 / p95 / mean over the timed calls.
Throughput: clips per second at batch ``b``: one untimed call, then timed calls until ``min_time``
seconds and at least ``min_runs`` calls have passed: ``b * calls / elapsed``.
On CUDA, :func:`cuda_event_median`: ``warmup`` untimed calls, then ``iters`` calls each between two
CUDA events (the end event waited on), the median of their elapsed times in ms.
Peak memory: on the CPU the process's peak resident set (Linux ``VmHWM``, reset through
``/proc/self/clear_refs`` before the row, after ``malloc_trim``) minus its resident set before
the backend was loaded: weights, graph, workspace and activations of the row; on CUDA
``torch.cuda.max_memory_allocated`` after a reset.
"""

from __future__ import annotations

import ctypes
import gc
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np


def latency_stats(times_ms: list[float]) -> dict:
    a = np.asarray(times_ms, np.float64)
    return {"p50": float(np.percentile(a, 50)), "p95": float(np.percentile(a, 95)),
            "mean": float(a.mean()), "n": int(a.size)}


def measure_latency(fn: Callable[[], object], *, repeats: int, warmup: int = 1) -> dict:
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1 (got {repeats})")
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(1000.0 * (time.perf_counter() - t0))
    return latency_stats(times)


def cuda_event_median(fn: Callable[[], object], warmup: int, iters: int) -> float:
    """Median ms of ``iters`` calls of ``fn`` timed by CUDA events on the current stream."""
    import torch

    if iters < 1:
        raise ValueError(f"iters must be >= 1 (got {iters})")
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def measure_throughput(fn: Callable[[], object], batch: int, *, min_time: float = 1.0,
                       min_runs: int = 2, max_runs: int = 1000) -> dict:
    fn()  # warm-up (first call at a new shape)
    runs, t0 = 0, time.perf_counter()
    while runs < min_runs or (time.perf_counter() - t0 < min_time and runs < max_runs):
        fn()
        runs += 1
    elapsed = time.perf_counter() - t0
    return {"batch": batch, "clips_per_s": batch * runs / elapsed, "runs": runs, "seconds": elapsed}


def _status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _trim() -> None:
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class PeakMemory:
    """``with PeakMemory(cuda=False) as m: ...``; then ``m.mib`` (None where unmeasurable, with
    ``m.reason``)."""

    def __init__(self, cuda: bool = False):
        self.cuda = cuda
        self.mib: float | None = None
        self.reason: str | None = None

    def __enter__(self) -> "PeakMemory":
        _trim()
        if self.cuda:
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._base = torch.cuda.memory_allocated()
            return self
        self._base = _status_kib("VmRSS")
        try:
            Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
            self._reset = True
        except OSError as e:
            self._reset, self.reason = False, f"cannot reset the peak RSS ({e})"
        return self

    def __exit__(self, *exc) -> None:
        if self.cuda:
            import torch

            torch.cuda.synchronize()
            self.mib = (torch.cuda.max_memory_allocated() - self._base) / 2**20
            return
        peak = _status_kib("VmHWM")
        if self._base is None or peak is None:
            self.reason = self.reason or "no /proc/self/status (not Linux)"
        elif self._reset:
            self.mib = max(0, peak - self._base) / 1024
