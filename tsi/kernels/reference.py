"""NumPy references for the saliency-attention kernels.

- :func:`naive_attention_f64`: the definition, softmax(Q K^T * scale) V, in float64 with the full
  L x L score matrix. The ground truth every kernel is compared against.
- :func:`tiled_attention`: a mirror of ``export/plugin/saliency_attention.cu`` — the same tiling
  (:func:`tile_config`), the same 16-key online-softmax steps, the same masking (keys past L get
  score -inf, padded dimensions are zero), the scale folded into q with log2(e) and ``exp2``, fp32
  arithmetic throughout and fp16 inputs widened to fp32 when staged. It verifies the kernel's
  algorithm on a machine without a GPU.

What the mirror does not reproduce bit for bit: the order of additions inside a dot product
(``@`` vs the kernel's FMA chain and warp-shuffle sum for D > 16) and ``ex2.approx`` (rel. error
~2^-22). Both are far below the tolerances the tests use. Query rows are independent in the
kernel (one thread or lane group per row), so the mirror processes all rows of all batch elements
at once: the kernel's row blocks only decide which rows share a staged K/V tile, not the
arithmetic of any row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LOG2E = 1.4426950408889634
MAX_HEAD = 64  # TSI_ATTENTION_MAX_D
THREADS_PER_BLOCK = 128
CHUNK_KEYS = 16


@dataclass(frozen=True)
class TileConfig:
    """The CUDA kernel's tiling for one head size (``Tiling<DPAD>`` in the .cu)."""

    d_pad: int  # head size the kernel template runs at (next of 4, 8, 16, 32, 64)
    tile_keys: int  # keys per shared-memory tile
    rows_per_block: int  # query rows per 128-thread block
    threads_per_row: int  # lanes sharing one query row (D split across them)
    chunk_keys: int  # keys per online-softmax step


def tile_config(d: int) -> TileConfig:
    if not 1 <= d <= MAX_HEAD:
        raise ValueError(f"head size must be 1..{MAX_HEAD} (got {d})")
    d_pad = next(p for p in (4, 8, 16, 32, 64) if d <= p)
    threads_per_row = 1 if d_pad <= 16 else d_pad // 16
    return TileConfig(
        d_pad=d_pad,
        tile_keys=128 if d_pad <= 16 else 64,
        rows_per_block=THREADS_PER_BLOCK // threads_per_row,
        threads_per_row=threads_per_row,
        chunk_keys=CHUNK_KEYS,
    )


def _check(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> None:
    if q.ndim != 3 or q.shape != k.shape or q.shape != v.shape:
        raise ValueError(f"q, k, v must share one (B, L, D) shape (got {q.shape}, {k.shape}, {v.shape})")


def naive_attention_f64(q: np.ndarray, k: np.ndarray, v: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """softmax(q k^T * scale) v in float64, materialising the (B, L, L) scores."""
    _check(q, k, v)
    q64, k64, v64 = (np.asarray(x, dtype=np.float64) for x in (q, k, v))
    scores = np.einsum("bld,bmd->blm", q64, k64) * scale
    scores -= scores.max(axis=-1, keepdims=True)
    p = np.exp(scores)
    p /= p.sum(axis=-1, keepdims=True)
    return np.einsum("blm,bmd->bld", p, v64)


def _staged(x: np.ndarray, d_pad: int) -> np.ndarray:
    """Widen to fp32 and zero-pad the head dimension to d_pad, as the kernel's shared-memory tiles."""
    b, l, d = x.shape
    out = np.zeros((b, l, d_pad), dtype=np.float32)
    out[:, :, :d] = x.astype(np.float32)
    return out


def tiled_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """The CUDA kernel's online-softmax loop in NumPy; returns q's dtype (float32 or float16)."""
    _check(q, k, v)
    if q.dtype not in (np.float32, np.float16) or k.dtype != q.dtype or v.dtype != q.dtype:
        raise ValueError(f"q, k, v must all be float32 or all float16 (got {q.dtype}, {k.dtype}, {v.dtype})")
    b, length, d = q.shape
    cfg = tile_config(d)
    f32 = np.float32
    qs = _staged(q, cfg.d_pad) * f32(scale * LOG2E)  # q' = q * scale * log2 e (scores in log2 units)
    ks = _staged(k, cfg.d_pad)
    vs = _staged(v, cfg.d_pad)

    m = np.full((b, length), -np.inf, dtype=f32)  # running max
    l_sum = np.zeros((b, length), dtype=f32)  # running sum of exp2(s - m)
    acc = np.zeros((b, length, cfg.d_pad), dtype=f32)
    for k0 in range(0, length, cfg.tile_keys):  # shared-memory tiles
        nk = min(cfg.tile_keys, length - k0)
        for c in range(0, nk, cfg.chunk_keys):  # online-softmax steps
            kc = ks[:, k0 + c : k0 + min(c + cfg.chunk_keys, nk)]
            vc = vs[:, k0 + c : k0 + min(c + cfg.chunk_keys, nk)]
            n_valid = kc.shape[1]
            s = np.full((b, length, cfg.chunk_keys), -np.inf, dtype=f32)  # keys past L: -inf
            s[:, :, :n_valid] = np.einsum("bld,bjd->blj", qs, kc)
            m_new = np.maximum(m, s.max(axis=-1))
            alpha = np.exp2(m - m_new)  # 0 on the first step (m = -inf)
            p = np.exp2(s - m_new[..., None])  # masked keys: exp2(-inf) = 0
            l_sum = l_sum * alpha + p.sum(axis=-1, dtype=f32)
            acc = acc * alpha[..., None] + np.einsum("blj,bjd->bld", p[:, :, :n_valid], vc)
            m = m_new
    out = acc[:, :, :d] * (f32(1.0) / l_sum)[..., None]
    return out.astype(q.dtype)
