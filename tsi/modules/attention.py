"""Saliency attention, Eq. (1): softmax(Q K^T / sqrt(d)) V with K = V, over all frame pairs at once.

Three interchangeable implementations, chosen by ``TSIConfig.attention``:
- ``sdpa``: torch's ``scaled_dot_product_attention`` (fused and fast for training; for CPU
  inference the C++ kernel of :mod:`tsi.kernels.saliency_cpu`, several times faster there);
- ``matmul``: explicit MatMul-Softmax-MatMul with Q pre-scaled by 1/sqrt(d) — the form exported to
  ONNX (runs in onnxruntime, calibrates, and is what the TensorRT plugin node replaces);
- ``fused``: the project's fused kernels: Triton on CUDA, the C++ kernel for CPU inference, SDPA
  elsewhere.
Tests prove they agree to 1e-5.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def attention_matmul(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """(B, L, d) x3 -> (B, L, d). Q is pre-scaled so the exported graph is MatMul-Softmax-MatMul."""
    q = q * (1.0 / math.sqrt(q.shape[-1]))
    scores = torch.matmul(q, k.transpose(-1, -2))
    return torch.matmul(torch.softmax(scores, dim=-1), v)


def attention_sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    from tsi.kernels import saliency_cpu

    if saliency_cpu.applies(q, k, v):
        return saliency_cpu.saliency_attention_cpu(q, k, v, 1.0 / math.sqrt(q.shape[-1]))
    return F.scaled_dot_product_attention(q, k, v)


def attention_fused(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    from tsi.kernels.saliency_triton import saliency_attention

    return saliency_attention(q, k, v, scale=1.0 / math.sqrt(q.shape[-1]))


ATTENTION_IMPLS = {"sdpa": attention_sdpa, "matmul": attention_matmul, "fused": attention_fused}
