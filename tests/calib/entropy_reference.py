"""The plain-loop entropy threshold search, the reference the vectorised ``calib.ranges.entropy_amax``
is tested against."""

from __future__ import annotations

import numpy as np

from calib.ranges import NUM_QUANT_BINS


def entropy_amax_loop(hist: np.ndarray, edges: np.ndarray, *, num_quant_bins: int = NUM_QUANT_BINS,
                      start: int = NUM_QUANT_BINS, stride: int = 1) -> float:
    """Plain-loop transcription of pytorch-quantization's ``_compute_amax_entropy`` (the test oracle)."""
    bins = np.asarray(hist, dtype=np.float64).copy()
    if len(bins) <= num_quant_bins or bins.sum() == 0:
        return float(edges[-1])
    bins[0] = bins[1]
    divergences = []
    for i in range(start, len(bins) + 1, stride):
        space = np.linspace(0, i, num=num_quant_bins + 1)
        digitized = np.digitize(np.arange(i), space) - 1
        digitized[bins[:i] == 0] = -1
        counts = np.zeros(num_quant_bins)
        members = np.zeros(num_quant_bins)
        for idx, d in enumerate(digitized):
            if d != -1:
                counts[d] += bins[idx]
                members[d] += 1
        new = np.zeros(i)
        for idx, d in enumerate(digitized):
            if d != -1:
                new[idx] = counts[d] / members[d]
        ref = bins[:i].copy()
        ref[-1] += bins[i:].sum()
        p, q = ref / ref.sum(), (new / new.sum() if new.sum() > 0 else new)
        if np.any((p > 0) & (q == 0)):
            divergences.append(np.inf)
        else:
            m = p > 0
            divergences.append(float(np.sum(p[m] * np.log(p[m] / q[m]))))
    d = np.asarray(divergences)
    best = len(d) - 1 - int(np.argmin(d[::-1]))
    return float(edges[best * stride + start])
