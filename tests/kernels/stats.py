"""The error statistic the kernel tests bound."""

from __future__ import annotations

import math

import numpy as np


def relative_error(out: np.ndarray, ref: np.ndarray) -> float:
    """max |out - ref| / max(max |ref|, tiny): the statistic the kernel tests bound."""
    out64 = np.asarray(out, dtype=np.float64)
    if out64.shape != ref.shape:
        raise ValueError(f"shape {out64.shape} != reference shape {ref.shape}")
    if out64.size == 0:
        return 0.0
    if not np.all(np.isfinite(out64)):
        return math.inf
    return float(np.abs(out64 - ref).max() / max(np.abs(ref).max(), 1e-30))
