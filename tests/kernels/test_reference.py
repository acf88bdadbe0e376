"""The NumPy mirror of the CUDA kernel (same tiles, 16-key online-softmax steps, masking, exp2 with
the folded scale, fp32 accumulation) against the float64 definition, over TSI's shapes and awkward
ones. Statistic: max |out - ref| / max |ref|."""

from __future__ import annotations

import numpy as np
import pytest

from tests.kernels.stats import relative_error
from tsi.kernels.reference import naive_attention_f64, tile_config, tiled_attention

TOL = {np.float32: 1e-5, np.float16: 1e-3}  # fp16: the output is rounded to fp16 (2^-11 relative)


def inputs(shape, dtype=np.float32, seed=0, spread=1.0, kv_same=False):
    rng = np.random.default_rng(seed)
    q = (rng.standard_normal(shape) * spread).astype(dtype)
    k = (rng.standard_normal(shape) * spread).astype(dtype)
    v = k if kv_same else rng.standard_normal(shape).astype(dtype)
    return q, k, v


@pytest.mark.parametrize("b,length,d", [
    (2, 3136, 4),  # stage 2 of TSI-R50 at 224^2 (56 x 56 positions, head 4)
    (1, 784, 8),  # stage 3
    (2, 196, 16),  # stage 4
    (3, 49, 32),  # stage 5
])
def test_mirror_matches_float64_on_tsi_stages(b, length, d):
    q, k, v = inputs((b, length, d), kv_same=True)  # TSI attends the next frame with K = V
    scale = 1.0 / np.sqrt(d)
    err = relative_error(tiled_attention(q, k, v, scale), naive_attention_f64(q, k, v, scale))
    assert err < TOL[np.float32], err


@pytest.mark.parametrize("length", [1, 2, 15, 17, 127, 129, 130, 255, 257, 1000])
def test_mirror_awkward_lengths(length):
    # Not multiples of the 16-key step nor of the 128-key tile: masking of the last step and tile.
    q, k, v = inputs((2, length, 4), seed=length)
    err = relative_error(tiled_attention(q, k, v, 0.5), naive_attention_f64(q, k, v, 0.5))
    assert err < TOL[np.float32], err


@pytest.mark.parametrize("d", [1, 3, 5, 7, 12, 24, 33, 48, 64])
def test_mirror_head_sizes_between_templates(d):
    # D runs on the next template (4, 8, 16, 32, 64) with the extra dimensions zero.
    q, k, v = inputs((2, 150, d), seed=d)
    err = relative_error(tiled_attention(q, k, v, 1.0 / np.sqrt(d)), naive_attention_f64(q, k, v, 1.0 / np.sqrt(d)))
    assert err < TOL[np.float32], err


@pytest.mark.parametrize("d", [4, 8, 16, 32])
def test_mirror_fp16_inputs(d):
    q, k, v = inputs((2, 300, d), dtype=np.float16, seed=d)
    out = tiled_attention(q, k, v, 1.0)
    assert out.dtype == np.float16
    assert relative_error(out, naive_attention_f64(q, k, v, 1.0)) < TOL[np.float16]


def test_mirror_is_stable_for_large_scores():
    # Scores of several hundred: exp without the running max would overflow fp32.
    q, k, v = inputs((1, 400, 8), spread=6.0)
    ref = naive_attention_f64(q, k, v, 2.0)
    out = tiled_attention(q, k, v, 2.0)
    assert np.all(np.isfinite(out))
    assert relative_error(out, ref) < TOL[np.float32]


def test_tolerance_discriminates():
    # Negative control: a 1% wrong scale must fail the fp32 bound the tests above use.
    q, k, v = inputs((1, 300, 4))
    assert relative_error(tiled_attention(q, k, v, 1.0), naive_attention_f64(q, k, v, 1.01)) > 10 * TOL[np.float32]


def test_tile_config():
    assert tile_config(4) == tile_config(3)
    cfg = tile_config(4)
    assert (cfg.d_pad, cfg.tile_keys, cfg.rows_per_block, cfg.threads_per_row, cfg.chunk_keys) == (4, 128, 128, 1, 16)
    cfg = tile_config(64)
    assert (cfg.d_pad, cfg.tile_keys, cfg.rows_per_block, cfg.threads_per_row) == (64, 64, 32, 4)
    with pytest.raises(ValueError):
        tile_config(65)


def test_reference_rejects_mismatched_inputs():
    q, k, v = inputs((1, 10, 4))
    with pytest.raises(ValueError):
        naive_attention_f64(q, k[:, :5], v)
    with pytest.raises(ValueError):
        tiled_attention(q, k.astype(np.float16), v)
