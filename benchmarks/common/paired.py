"""Callables measured in alternation (TSI vs TSN in the suite; the attention forms of a study): the
ratio that survives a shared CPU.

The rows of the report time each model on its own, minutes apart; on a machine other jobs also use,
the load changes in between and moves the ratio. Here both models are loaded at once and their
calls alternate (TSN, TSI, TSI, TSN, ...: the order flips every round), so each sees the same load;
the ratio is of the medians of the per-call times at the same batch.
"""

from __future__ import annotations

import time

import numpy as np


def paired_throughput(runners: dict, x: np.ndarray, *, rounds: int, warmup: int = 1) -> dict:
    """``runners`` {name: callable}; returns {name: {median_ms, clips_per_s, n}}."""
    names = list(runners)
    for _ in range(warmup):
        for k in names:
            runners[k](x)
    times: dict[str, list[float]] = {k: [] for k in names}
    for i in range(rounds):
        for k in (names if i % 2 == 0 else names[::-1]):
            t0 = time.perf_counter()
            runners[k](x)
            times[k].append(time.perf_counter() - t0)
    out = {}
    for k, ts in times.items():
        med = float(np.median(ts))
        out[k] = {"median_ms": 1000 * med, "clips_per_s": len(x) / med, "n": len(ts),
                  "spread_ms": [1000 * float(min(ts)), 1000 * float(max(ts))]}
    return out
