"""Fused saliency attention for the PyTorch GPU path: a Triton online-softmax kernel.

    out = softmax(q @ k^T * scale, over keys) @ v        q, k, v, out: (B, L, D), contiguous

:func:`saliency_attention` dispatches: the Triton kernel for CUDA tensors, torch's
``scaled_dot_product_attention`` on the CPU (and wherever Triton is not importable, for
``impl="auto"``). Triton is imported lazily, so this module imports on a machine without it.

Kernel design. A program owns BLOCK_M = 64 query rows of one batch element and walks the keys in
BLOCK_N = 64 blocks with the flash-attention recurrence (running max m, running sum l, accumulator
rescaled by exp2(m_old - m_new)); the (L, L) scores never exist. The head is padded to
BLOCK_D = max(16, next_pow2(D)) with masked loads (zeros), because ``tl.dot`` needs every dimension
>= 16: for D = 4 that is 4x the multiply-adds, but they run on tensor cores, where they cost less
than the BLOCK_M x BLOCK_N exponentials and max/sum reductions on the CUDA cores, which are the
real floor. (The elementwise alternative, q[:, None, :] * k[None, :, :] summed over D, keeps the
products on the CUDA cores, as the CUDA plugin kernel does, and needs a BLOCK_M x BLOCK_N x D
register tile.) ``scale * log2(e)`` is applied to the fp32 scores so the exponential is ``exp2``.
FP32 inputs use ``input_precision="ieee"`` (no TF32: the fp32 path must match the float64 reference
to ~1e-5); FP16/BF16 inputs feed the tensor cores directly, with P cast to the input type for
P @ V as in FlashAttention; all accumulation is fp32.

Autograd. Forward runs the kernel and saves q, k, v; backward recomputes the attention with torch's
SDPA (same scale) and differentiates that. It costs a second forward and SDPA's memory in
backward, but keeps a single hand-written kernel; the gradients are those of the exact function.
"""

from __future__ import annotations

import functools
import logging
import math
import os

import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)

LOG2E = 1.4426950408889634
MAX_HEAD = 128
IMPLS = ("auto", "triton", "cpu", "sdpa")
_TRITON_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def interpreter_enabled() -> bool:
    """TRITON_INTERPRET=1 runs Triton kernels on the CPU (read by triton at import time)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


@functools.lru_cache(maxsize=1)
def _kernel():
    """Build the @triton.jit kernel on first use (the import of triton stays out of module import).

    ``triton`` and ``tl`` are bound as module globals: the JIT resolves the names a kernel uses
    through its globals, not through closures.
    """
    global triton, tl
    try:
        import triton
        import triton.language as tl
    except ImportError as e:  # pragma: no cover - triton is in requirements.txt
        raise ImportError("the fused saliency attention needs triton: pip install triton") from e

    @triton.jit
    def saliency_attention_fwd(
        Q, K, V, O,
        L, D, row_blocks, qk_scale,
        BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, IEEE: tl.constexpr,
    ):
        pid = tl.program_id(0)
        b = pid // row_blocks
        offs_m = (pid % row_blocks) * BLOCK_M + tl.arange(0, BLOCK_M)
        offs_d = tl.arange(0, BLOCK_D)
        offs_n0 = tl.arange(0, BLOCK_N)
        base = b.to(tl.int64) * L * D
        d_ok = offs_d < D
        row_ok = offs_m < L

        q = tl.load(Q + base + offs_m[:, None] * D + offs_d[None, :], mask=row_ok[:, None] & d_ok[None, :], other=0.0)
        m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
        l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
        acc = tl.zeros([BLOCK_M, BLOCK_D], dtype=tl.float32)
        for start_n in range(0, L, BLOCK_N):
            offs_n = start_n + offs_n0
            key_ok = offs_n < L
            kt = tl.load(K + base + offs_n[None, :] * D + offs_d[:, None], mask=d_ok[:, None] & key_ok[None, :], other=0.0)
            if IEEE:
                s = tl.dot(q, kt, input_precision="ieee")
            else:
                s = tl.dot(q, kt)
            s = tl.where(key_ok[None, :], s * qk_scale, float("-inf"))  # log2 domain, masked keys -inf
            m_new = tl.maximum(m_i, tl.max(s, 1))
            alpha = tl.exp2(m_i - m_new)  # 0 on the first block (m_i = -inf)
            p = tl.exp2(s - m_new[:, None])
            l_i = l_i * alpha + tl.sum(p, 1)
            v = tl.load(V + base + offs_n[:, None] * D + offs_d[None, :], mask=key_ok[:, None] & d_ok[None, :], other=0.0)
            if IEEE:
                pv = tl.dot(p, v, input_precision="ieee")
            else:
                pv = tl.dot(p.to(v.dtype), v)
            acc = acc * alpha[:, None] + pv
            m_i = m_new
        out = acc / l_i[:, None]
        tl.store(O + base + offs_m[:, None] * D + offs_d[None, :], out.to(O.dtype.element_ty),
                 mask=row_ok[:, None] & d_ok[None, :])

    return triton, saliency_attention_fwd


def _check(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
    if q.dim() != 3 or q.shape != k.shape or q.shape != v.shape:
        raise ValueError(f"q, k, v must share one (B, L, D) shape (got {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)})")
    if not (q.dtype == k.dtype == v.dtype):
        raise ValueError(f"q, k, v must share one dtype (got {q.dtype}, {k.dtype}, {v.dtype})")
    if not (q.device == k.device == v.device):
        raise ValueError(f"q, k, v must be on one device (got {q.device}, {k.device}, {v.device})")


def triton_forward(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float = 1.0, out: torch.Tensor | None = None,
    block_m: int = 64, block_n: int = 64,
) -> torch.Tensor:
    """Run the Triton kernel (no autograd). ``out``: optional preallocated (B, L, D) result."""
    _check(q, k, v)
    if q.dtype not in _TRITON_DTYPES:
        raise ValueError(f"the Triton kernel takes {_TRITON_DTYPES} (got {q.dtype})")
    if not (q.is_cuda or interpreter_enabled()):
        raise ValueError("the Triton kernel needs CUDA tensors (or TRITON_INTERPRET=1 set before triton is imported)")
    bsz, length, d = q.shape
    if not 1 <= d <= MAX_HEAD:
        raise ValueError(f"head size must be 1..{MAX_HEAD} for the Triton kernel (got {d})")
    q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
    if out is None:
        out = torch.empty_like(q)
    elif out.shape != q.shape or out.dtype != q.dtype or out.device != q.device or not out.is_contiguous():
        raise ValueError("out must be a contiguous tensor of q's shape, dtype and device")
    if bsz == 0 or length == 0:
        return out
    triton, kernel = _kernel()
    block_d = max(16, triton.next_power_of_2(d))
    row_blocks = triton.cdiv(length, block_m)
    kernel[(bsz * row_blocks,)](
        q, k, v, out, length, d, row_blocks, float(scale) * LOG2E,
        BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_D=block_d, IEEE=q.dtype == torch.float32,
        num_warps=4,
    )
    return out


def sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    return F.scaled_dot_product_attention(q, k, v, scale=scale)


class _SaliencyAttention(torch.autograd.Function):
    """Triton forward; backward by recomputation through SDPA (see the module docstring)."""

    @staticmethod
    def forward(ctx, q, k, v, scale):
        ctx.save_for_backward(q, k, v)
        ctx.scale = scale
        return triton_forward(q, k, v, scale)

    @staticmethod
    def backward(ctx, grad_out):
        q, k, v = ctx.saved_tensors
        with torch.enable_grad():
            leaves = [t.detach().requires_grad_(need) for t, need in zip((q, k, v), ctx.needs_input_grad[:3])]
            out = sdpa(*leaves, scale=ctx.scale)
            wanted = [t for t in leaves if t.requires_grad]
            grads = iter(torch.autograd.grad(out, wanted, grad_out))
        return (*(next(grads) if t.requires_grad else None for t in leaves), None)


@functools.lru_cache(maxsize=1)
def triton_available() -> bool:
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def saliency_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float = 1.0, impl: str = "auto"
) -> torch.Tensor:
    """softmax(q @ k^T * scale) @ v for (B, L, D) tensors; differentiable.

    impl: ``"auto"`` (Triton for CUDA tensors when Triton imports and D <= 128, the C++ kernel of
    :mod:`tsi.kernels.saliency_cpu` for CPU inference where it applies, SDPA otherwise),
    ``"triton"`` (the Triton kernel or an error; CPU tensors only under TRITON_INTERPRET=1),
    ``"cpu"`` (the C++ kernel or an error; no gradient) or ``"sdpa"`` (torch's
    scaled_dot_product_attention).
    """
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS} (got {impl!r})")
    _check(q, k, v)
    if not math.isfinite(scale):
        raise ValueError(f"scale must be finite (got {scale})")
    from tsi.kernels import saliency_cpu

    if impl == "auto":
        use_triton = q.is_cuda and q.dtype in _TRITON_DTYPES and q.shape[-1] <= MAX_HEAD and triton_available()
        impl = "triton" if use_triton else "cpu" if saliency_cpu.applies(q, k, v) else "sdpa"
    if impl == "cpu":
        return saliency_cpu.saliency_attention_cpu(q, k, v, float(scale))
    if impl == "sdpa":
        return sdpa(q, k, v, scale)
    if torch.is_grad_enabled() and any(t.requires_grad for t in (q, k, v)):
        return _SaliencyAttention.apply(q, k, v, float(scale))
    return triton_forward(q, k, v, scale)
