"""onnxruntime vs a reference (PyTorch, or the FP32 graph) on the same clips.

The error statistic: max |logits_test - logits_ref| divided by the reference logits' range
(max - min over the batch), and top-1 agreement. FP32 must be within 1e-4 of the range with 100%
top-1 agreement (timm / Polygraphy practice); the tolerances of other precisions are stated where
they are checked.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np

from runtime.common.errors import ExportError

log = logging.getLogger(__name__)

FP32_REL_TOL = 1e-4


@dataclass(frozen=True)
class Agreement:
    max_abs: float
    logit_range: float
    rel: float  # max_abs / logit_range
    top1: float  # fraction of clips whose argmax agrees
    n: int

    def __str__(self) -> str:
        return (f"max|diff| {self.max_abs:.3g} = {self.rel:.3g} of the logit range {self.logit_range:.3g}, "
                f"top-1 agreement {100 * self.top1:.1f}% over {self.n} clips")


def compare_logits(ref: np.ndarray, test: np.ndarray) -> Agreement:
    ref, test = np.asarray(ref, np.float64), np.asarray(test, np.float64)
    if ref.shape != test.shape:
        raise ValueError(f"shape mismatch: {ref.shape} vs {test.shape}")
    max_abs = float(np.abs(ref - test).max())
    rng = float(ref.max() - ref.min()) or 1.0
    top1 = float(np.mean(ref.argmax(-1) == test.argmax(-1)))
    return Agreement(max_abs, rng, max_abs / rng, top1, len(ref))


def ort_session(model, threads: int | None = None):
    """A CPU onnxruntime session for a path or ModelProto."""
    import onnxruntime as ort

    from runtime.backends.onnxruntime_backend import session_options

    src = model.SerializeToString() if hasattr(model, "SerializeToString") else str(model)
    return ort.InferenceSession(src, session_options(threads), providers=["CPUExecutionProvider"])


def run_onnx(model, clips: np.ndarray, *, session=None) -> np.ndarray:
    """Logits of ``clips`` (N, T, 3, S, S); a graph with a static batch of 1 is run clip by clip."""
    sess = session or ort_session(model)
    inp = sess.get_inputs()[0]
    static = isinstance(inp.shape[0], int)
    clips = np.ascontiguousarray(clips, dtype=np.float32)
    if static:
        b = inp.shape[0]
        return np.concatenate([sess.run(None, {inp.name: clips[i:i + b]})[0] for i in range(0, len(clips), b)])
    return sess.run(None, {inp.name: clips})[0]


def torch_logits(model, clips: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return model(torch.from_numpy(np.ascontiguousarray(clips, dtype=np.float32))).numpy()


def check_fp32_parity(onnx_path: str | os.PathLike, model, clips: np.ndarray, *,
                      tol: float = FP32_REL_TOL) -> Agreement:
    """onnxruntime (the exported graph) vs the PyTorch model; raises ExportError beyond ``tol`` or
    with any top-1 disagreement."""
    agreement = compare_logits(torch_logits(model, clips), run_onnx(onnx_path, clips))
    log.info("parity onnxruntime vs PyTorch: %s", agreement)
    if agreement.rel > tol or agreement.top1 < 1.0:
        raise ExportError(f"{onnx_path}: onnxruntime disagrees with PyTorch ({agreement}; tolerance {tol:g} "
                          "of the logit range, 100% top-1)")
    return agreement


def compare_onnx(ref_model, test_model, clips: np.ndarray) -> Agreement:
    """onnxruntime on two graphs (e.g. FP32 vs FP16 or Q/DQ) over the same clips."""
    return compare_logits(run_onnx(ref_model, clips), run_onnx(test_model, clips))
