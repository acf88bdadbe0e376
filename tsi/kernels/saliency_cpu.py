"""The CPU saliency attention for PyTorch inference: the runtime's C++ kernel
(``runtime.kernels.cpu_attention``) as the torch operator ``tsi::saliency_attention_cpu``.

At head size 4 and L = 3136 (TSI-R50's first stage) torch's SDPA and the MatMul-Softmax-MatMul form
both write the (L, L) scores through memory; the kernel keeps one query row of them in L1 and is
several times faster (``python -m benchmarks.cpu_attention``). It has no backward: :func:`applies`
is False whenever a gradient is wanted, and the callers then keep their torch form.
"""

from __future__ import annotations

import torch

from runtime.kernels import cpu_attention

__all__ = ["applies", "saliency_attention_cpu"]


@torch.library.custom_op("tsi::saliency_attention_cpu", mutates_args=())
def saliency_attention_cpu(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    """softmax(q k^T * scale) v for float32 CPU tensors (B, Lq, D), (B, Lk, D), (B, Lk, D)."""
    q, k, v = (t.contiguous() for t in (q, k, v))
    out = torch.empty_like(q)
    cpu_attention.saliency_attention(q.numpy(), k.numpy(), v.numpy(), scale, out=out.numpy())
    return out


@saliency_attention_cpu.register_fake
def _(q, k, v, scale):
    return torch.empty_like(q, memory_format=torch.contiguous_format)


def applies(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> bool:
    """The kernel serves this call: float32 CPU tensors, no gradient wanted, not being traced for
    an export (the exported graph keeps its ONNX operators), head size within the kernel's, and the
    kernel built on this machine."""
    tensors = (q, k, v)
    return (all(t.device.type == "cpu" and t.dtype == torch.float32 for t in tensors)
            and not (torch.is_grad_enabled() and any(t.requires_grad for t in tensors))
            and not torch.jit.is_tracing() and not torch.onnx.is_in_onnx_export()
            and q.shape[-1] <= cpu_attention.MAX_HEAD and cpu_attention.available())
