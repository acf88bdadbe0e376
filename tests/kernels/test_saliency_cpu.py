"""saliency_attention's CPU path (torch SDPA) against the float64 reference, its dispatch rules,
and the lazy import of triton."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tsi.kernels import saliency_attention
from tests.kernels.stats import relative_error
from tsi.kernels.reference import naive_attention_f64
from tsi.modules.attention import ATTENTION_IMPLS

REPO = Path(__file__).resolve().parents[2]


def qkv(b, length, d, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(b, length, d, generator=g, dtype=dtype) for _ in range(3))


@pytest.mark.parametrize("impl", ["auto", "sdpa"])
@pytest.mark.parametrize("b,length,d", [(1, 1, 4), (3, 7, 5), (2, 49, 32), (2, 196, 16), (1, 3136, 4)])
def test_cpu_path_matches_float64(impl, b, length, d):
    q, k, v = qkv(b, length, d, seed=length)
    scale = 1.0 / math.sqrt(d)
    out = saliency_attention(q, k, v, scale=scale, impl=impl)
    assert out.shape == q.shape and out.dtype == q.dtype
    ref = naive_attention_f64(q.numpy(), k.numpy(), v.numpy(), scale)
    assert relative_error(out.numpy(), ref) < 1e-5


def test_default_scale_is_one():
    q, k, v = qkv(2, 30, 8)
    ref = naive_attention_f64(q.numpy(), k.numpy(), v.numpy(), 1.0)
    assert relative_error(saliency_attention(q, k, v).numpy(), ref) < 1e-5


def test_cpu_gradients_match_float64():
    q, k, v = (t.requires_grad_() for t in qkv(2, 20, 4))
    saliency_attention(q, k, v, scale=0.5).sum().backward()
    q2, k2, v2 = (t.detach().double().requires_grad_() for t in (q, k, v))
    torch.softmax(q2 @ k2.transpose(1, 2) * 0.5, -1).matmul(v2).sum().backward()
    for a, b in ((q, q2), (k, k2), (v, v2)):
        assert torch.allclose(a.grad.double(), b.grad, rtol=1e-4, atol=1e-6)


def test_fused_module_option_equals_exported_matmul_form():
    q, k, v = qkv(4, 49, 8)
    fused = ATTENTION_IMPLS["fused"](q, k, k)
    matmul = ATTENTION_IMPLS["matmul"](q, k, k)
    assert torch.allclose(fused, matmul, rtol=1e-5, atol=1e-6)


def test_triton_on_cpu_without_interpreter_is_refused(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    q, k, v = qkv(1, 8, 4)
    with pytest.raises(ValueError, match="CUDA"):
        saliency_attention(q, k, v, impl="triton")


def test_bad_arguments_are_refused():
    q, k, v = qkv(1, 8, 4)
    with pytest.raises(ValueError, match="impl"):
        saliency_attention(q, k, v, impl="cuda")
    with pytest.raises(ValueError, match="shape"):
        saliency_attention(q, k[:, :4], v)
    with pytest.raises(ValueError, match="dtype"):
        saliency_attention(q, k.double(), v)
    with pytest.raises(ValueError, match="finite"):
        saliency_attention(q, k, v, scale=float("nan"))


def test_package_imports_and_runs_without_triton():
    code = (
        "import sys; sys.modules['triton'] = None\n"  # any 'import triton' now raises ImportError
        "import torch\n"
        "from tsi.kernels import saliency_attention\n"
        "from tsi.kernels.saliency_triton import triton_available\n"
        "assert not triton_available()\n"
        "q = torch.randn(1, 5, 4)\n"
        "print(saliency_attention(q, q, q, impl='auto').shape)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "torch.Size([1, 5, 4])" in proc.stdout


def test_importing_the_package_does_not_import_triton():
    code = "import sys, tsi.kernels, tsi.kernels.reference; print('triton' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "False"
