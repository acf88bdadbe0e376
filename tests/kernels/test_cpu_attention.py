"""The CPU saliency attention kernel (runtime/kernels): against the float64 definition, its one-line
refusals, its build cache, and its use by PyTorch inference (tsi.kernels.saliency_cpu)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from runtime import kernels
from runtime.kernels import cpu_attention

pytestmark = pytest.mark.skipif(not cpu_attention.available(),
                                reason=f"no CPU attention kernel: {cpu_attention.unavailable_reason()}")


def definition(q, k, v, scale):
    """softmax(q k^T * scale) v in float64 (keys may outnumber or undernumber queries)."""
    scores = np.einsum("bld,bmd->blm", q.astype(np.float64), k.astype(np.float64)) * scale
    p = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return np.einsum("blm,bmd->bld", p / p.sum(axis=-1, keepdims=True), v.astype(np.float64))


def arrays(b, lq, lk, d, magnitude=1.0, seed=0):
    rng = np.random.default_rng(seed)
    q = (rng.standard_normal((b, lq, d)) * magnitude).astype(np.float32)
    k, v = (rng.standard_normal((b, lk, d)).astype(np.float32) for _ in range(2))
    return q, k, v


@pytest.mark.parametrize("b,lq,lk,d,magnitude", [
    (1, 1, 1, 1, 1.0), (2, 7, 9, 3, 1.0), (3, 49, 49, 4, 1.0), (2, 50, 50, 5, 3.0), (1, 196, 196, 8, 2.0),
    (1, 33, 17, 16, 1.0), (2, 64, 100, 32, 1.0), (1, 10, 300, 64, 1.0), (1, 3136, 3136, 4, 1.0),
    (2, 40, 40, 4, 60.0),  # scores spanning hundreds: most exponentials clamp, the max still rules
])
def test_matches_the_float64_definition(b, lq, lk, d, magnitude):
    q, k, v = arrays(b, lq, lk, d, magnitude, seed=lq + d)
    scale = 1.0 / math.sqrt(d)
    out = cpu_attention.saliency_attention(q, k, v, scale)
    ref = definition(q, k, v, scale)
    assert out.shape == q.shape and out.dtype == np.float32
    assert np.abs(out - ref).max() <= 1e-5 * max(1.0, np.abs(ref).max())


def _cpu_flags() -> set[str]:
    try:
        text = open("/proc/cpuinfo").read()
    except OSError:
        return set()
    return set(next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), []))


@pytest.mark.parametrize("arch,needs", [("x86-64-v3", "avx2"), ("x86-64-v4", "avx512f")])
def test_both_vector_widths_match_the_float64_definition(arch, needs, tmp_path):
    """The source's two forms (8-wide, and 16-wide with vrndscaleps/vscalefps under AVX-512), each
    built for its own x86-64 level whatever this CPU's native one: the same bound as the native build,
    padded key blocks (Lk not a multiple of 16) and scores spanning hundreds included."""
    import ctypes
    import subprocess

    if needs not in _cpu_flags():
        pytest.skip(f"this CPU lacks {needs}: the {arch} build cannot run here")
    flags = [f"-march={arch}" if f.startswith(("-march=", "-mcpu=")) else f for f in cpu_attention._flags()]
    lib_path = tmp_path / f"attention-{arch}.so"
    subprocess.run([cpu_attention._compiler(), *flags, str(cpu_attention.SOURCE), "-o", str(lib_path)], check=True)
    fn = ctypes.CDLL(str(lib_path)).tsi_saliency_attention
    fn.argtypes = [ctypes.c_void_p] * 4 + [ctypes.c_int] * 4 + [ctypes.c_float]
    for b, lq, lk, d, magnitude in [(2, 7, 9, 3, 1.0), (1, 196, 201, 8, 2.0), (1, 3136, 3136, 4, 1.0),
                                    (2, 40, 37, 4, 60.0), (1, 33, 17, 16, 1.0), (1, 1000, 1003, 4, 6.0),
                                    (7, 49, 49, 32, 4e4)]:  # scores of tens of thousands
        q, k, v = arrays(b, lq, lk, d, magnitude, seed=lq + d)
        out = np.empty_like(q)
        assert fn(q.ctypes.data, k.ctypes.data, v.ctypes.data, out.ctypes.data, b, lq, lk, d, 1.0 / math.sqrt(d)) == 0
        ref = definition(q, k, v, 1.0 / math.sqrt(d))
        assert np.abs(out - ref).max() <= 1e-5 * max(1.0, np.abs(ref).max()), (arch, b, lq, lk, d)


def test_large_scores_are_as_exact_as_torch_attention():
    """Scores in the thousands (an untrained or unnormalised model's, |q|, |k| ~ 30 at head size 8):
    over 8 draws the kernel's worst error against float64 stays that of torch's float32 attention.
    It was up to 3.4x torch's while each exponent was rounded relative to the score in log2 units
    rather than to its distance from the row's maximum (the FMA of saliency_attention.cpp)."""
    ratios = []
    for seed in range(8):
        rng = np.random.default_rng(seed)
        q, k = ((rng.standard_normal((2, 784, 8)) * 30).astype(np.float32) for _ in range(2))
        v = rng.standard_normal((2, 784, 8)).astype(np.float32)
        exact = definition(q, k, v, 1.0)
        own = torch.nn.functional.scaled_dot_product_attention(*map(torch.from_numpy, (q, k, v)), scale=1.0)
        ratios.append(np.abs(cpu_attention.saliency_attention(q, k, v, 1.0) - exact).max()
                      / np.abs(own.numpy() - exact).max())
    assert max(ratios) <= 1.5, ratios


def bound_rows(q, k, scale, max_gap=96.0):
    """The fraction of rows the kernel shifts by the box bound (its rule, restated here to choose inputs):
    the box bound at most max_gap (log2) above the best score of the 16 sign-pattern probe keys."""
    qs = q * scale * np.log2(np.e)
    box = np.maximum(qs[..., None, :] * k.min(1)[:, None, None, :], qs[..., None, :] * k.max(1)[:, None, None, :])
    bound = box[..., 0, :].sum(-1)
    signs = np.array([[-1.0 if (p >> c) & 1 else 1.0 for c in range(4)] for p in range(16)])
    probes = np.stack([kb[np.argmax(kb[:, :4] @ signs.T, axis=0)] for kb in k])
    lower = np.einsum("bld,bpd->blp", qs, probes).max(-1)
    return float(np.mean(bound - lower <= max_gap))


@pytest.mark.parametrize("magnitude", [1.0, 3.0])
def test_both_shifts_are_as_exact_as_torch_attention(magnitude):
    """At TSI's stage-1 geometry the rows the kernel shifts by the box bound (exponentials relative to
    an integer bound above the max) and, at scores of tens, the rows whose shift runs, in one call:
    the worst error against float64 over 4 draws stays within 1.5x torch's float32 attention."""
    ratios, shares = [], []
    for seed in range(4):
        rng = np.random.default_rng(seed)
        q, k = ((rng.standard_normal((1, 3136, 4)) * magnitude).astype(np.float32) for _ in range(2))
        v = rng.standard_normal((1, 3136, 4)).astype(np.float32)
        exact = definition(q, k, v, 0.5)
        own = torch.nn.functional.scaled_dot_product_attention(*map(torch.from_numpy, (q, k, v)), scale=0.5)
        ratios.append(np.abs(cpu_attention.saliency_attention(q, k, v, 0.5) - exact).max()
                      / np.abs(own.numpy() - exact).max())
        shares.append(bound_rows(q, k, 0.5))
    assert min(shares) > 0.9 and (magnitude == 1.0 or max(shares) < 1.0), shares  # both paths where meant
    assert max(ratios) <= 1.5, ratios


@pytest.mark.parametrize("where", [0, 517, 999])
def test_the_running_shift_rises_to_a_key_no_probe_found(where):
    """One key scoring thousands above the rest through channels the probes do not look at (their
    sign patterns cover the first 4 of 8): the box bound is loose, the shift starts near the probes'
    small best and must rise to that key wherever it lies, the first group, the middle or the padded
    last one (Lk = 1000, not a multiple of the vector width)."""
    rng = np.random.default_rng(where)
    q = np.zeros((1, 3, 8), np.float32)
    q[0, :, 4:] = [[50.0] * 4, [30.0] * 4, [5.0] * 4]
    k = (rng.standard_normal((1, 1000, 8)) * 0.1).astype(np.float32)
    k[0, where, 4:] = 10.0
    v = rng.standard_normal((1, 1000, 8)).astype(np.float32)
    out = cpu_attention.saliency_attention(q, k, v, 1.0)
    ref = definition(q, k, v, 1.0)
    assert bound_rows(q, k, 1.0) == 0.0  # every row on the running shift
    assert np.abs(out - ref).max() <= 1e-5 * max(1.0, np.abs(ref).max())


def test_scores_of_billions_give_the_best_keys_value():
    """An unnormalised model's deep stage (the random-weight R50's stage 4: |q|, |k| ~ 4e4 at head
    size 32, 49 keys): scores of billions, where float32 has no integer to shift by; each row is the
    value of its best key, as the float64 definition says (an integer running shift gave NaN)."""
    rng = np.random.default_rng(3)
    q, k = ((rng.standard_normal((7, 49, 32)) * 4e4).astype(np.float32) for _ in range(2))
    v = rng.standard_normal((7, 49, 32)).astype(np.float32)
    scale = 1.0 / math.sqrt(32)
    out = cpu_attention.saliency_attention(q, k, v, scale)
    assert np.isfinite(out).all()
    assert np.abs(out - definition(q, k, v, scale)).max() <= 1e-6
    assert bound_rows(q, k, scale) < 1.0  # some rows on the running max


@pytest.mark.parametrize("layout", range(16))
def test_every_layout_gives_the_row_major_result(layout):
    """q, k, v and out each given channel-major, (B, D, L) (the kernel's layout bits 1, 2, 4, 8):
    the row-major call's output, bit for bit, on both shifts' rows and odd lengths."""
    names = [n for n, bit in cpu_attention.LAYOUT_BITS.items() if layout & bit]
    q, k, v = arrays(3, 37, 101, 8, 3.0, seed=layout)
    want = cpu_attention.saliency_attention(q, k, v, 0.5)
    cm = lambda name, a: np.ascontiguousarray(a.transpose(0, 2, 1)) if name in names else a  # noqa: E731
    out = cpu_attention.saliency_attention(cm("q", q), cm("k", k), cm("v", v), 0.5, channel_major=tuple(names))
    np.testing.assert_array_equal(out.transpose(0, 2, 1) if "out" in names else out, want)


def test_a_layout_name_the_kernel_does_not_know_is_refused():
    q, k, v = arrays(1, 5, 5, 4)
    with pytest.raises(cpu_attention.KernelError, match=r"channel_major names \['kt'\]: only q, k, v and out"):
        cpu_attention.saliency_attention(q, k, v, 1.0, channel_major=("kt",))
    with pytest.raises(cpu_attention.KernelError, match=r"do not match.*channel-major: v"):
        cpu_attention.saliency_attention(q, k, v[:, :4].copy(), 1.0, channel_major=("v",))


def test_equal_scores_average_the_values_and_out_is_written_in_place():
    q = np.zeros((1, 3, 4), np.float32)
    k = np.random.default_rng(1).standard_normal((1, 20, 4)).astype(np.float32)
    out = np.full_like(q, np.nan)
    assert cpu_attention.saliency_attention(q, k, k, 0.5, out=out) is out
    assert np.allclose(out, k.mean(axis=1, keepdims=True).repeat(3, axis=1), atol=1e-6)


@pytest.mark.parametrize("change,message", [
    (lambda q, k, v: (q.astype(np.float64), k, v), "q must be a C-contiguous float32 array"),
    (lambda q, k, v: (q, k.transpose(0, 2, 1).copy().transpose(0, 2, 1), v), "k must be a C-contiguous"),
    (lambda q, k, v: (q, k, v[:, :-1].copy()), "do not match"),
    (lambda q, k, v: (q[:1].copy(), k, v), "do not match"),
    (lambda q, k, v: (q[0], k, v), "(B, L, D), got float32 (8, 4)"),
])
def test_bad_arrays_are_refused_in_one_line(change, message):
    with pytest.raises(cpu_attention.KernelError) as e:
        cpu_attention.saliency_attention(*change(*arrays(2, 8, 8, 4)), 0.5)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_head_size_above_the_kernels_is_refused():
    q, k, v = arrays(1, 4, 4, cpu_attention.MAX_HEAD + 1)
    with pytest.raises(cpu_attention.KernelError, match="head size 65 is outside 1..64"):
        cpu_attention.saliency_attention(q, k, v, 1.0)


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """A build cache of its own and a loader that has not loaded yet (restored after)."""
    monkeypatch.setenv(kernels.CACHE_ENV, str(tmp_path / "kernels"))
    cpu_attention._load.cache_clear()
    yield tmp_path / "kernels"
    cpu_attention._load.cache_clear()


def test_the_build_is_cached_per_source_and_reused(fresh):
    assert cpu_attention.available()
    built = list(fresh.glob("saliency_attention-*.so"))
    assert len(built) == 1 and not list(fresh.glob(".*"))  # one whole library, no temporary left
    stamp = built[0].stat().st_mtime_ns
    cpu_attention._load.cache_clear()
    assert cpu_attention.available() and built[0].stat().st_mtime_ns == stamp  # reused, not rebuilt


def test_no_compiler_and_the_switch_make_it_unavailable_with_a_reason(fresh, monkeypatch):
    monkeypatch.setenv("PATH", str(fresh))  # an empty folder: no c++, g++ or clang++
    monkeypatch.delenv("CXX", raising=False)
    assert not cpu_attention.available()
    assert cpu_attention.unavailable_reason().startswith("no C++ compiler found")
    with pytest.raises(cpu_attention.KernelError, match="unavailable: no C\\+\\+ compiler"):
        cpu_attention.saliency_attention(*arrays(1, 2, 2, 4), 1.0)
    cpu_attention._load.cache_clear()
    monkeypatch.setenv(cpu_attention.DISABLE_ENV, "0")
    assert not cpu_attention.available() and "TSI_CPU_ATTENTION=0" in cpu_attention.unavailable_reason()


def test_a_compile_error_is_one_line_and_leaves_no_file(fresh, monkeypatch, tmp_path):
    broken = tmp_path / "broken.cpp"
    broken.write_text("this is not C++\n")
    monkeypatch.setattr(cpu_attention, "SOURCE", broken)
    assert not cpu_attention.available()
    assert " could not build broken.cpp: " in cpu_attention.unavailable_reason()
    assert not fresh.exists() or not any(fresh.iterdir())


def test_pytorch_inference_uses_the_kernel_and_training_keeps_sdpa(monkeypatch):
    from tsi.kernels import saliency_cpu
    from tsi.modules.attention import ATTENTION_IMPLS

    calls = []
    real = cpu_attention.saliency_attention
    monkeypatch.setattr(cpu_attention, "saliency_attention", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    g = torch.Generator().manual_seed(0)
    q, k = (torch.randn(3, 49, 4, generator=g) for _ in range(2))
    ref = ATTENTION_IMPLS["matmul"](q.double(), k.double(), k.double())
    for name in ("sdpa", "fused"):
        with torch.no_grad():
            out = ATTENTION_IMPLS[name](q, k, k)
        assert torch.allclose(out.double(), ref, atol=1e-6)
    assert len(calls) == 2
    qg = q.clone().requires_grad_()
    assert not saliency_cpu.applies(qg, k, k)
    ATTENTION_IMPLS["sdpa"](qg, k, k).sum().backward()  # differentiable: torch's SDPA, not the kernel
    assert qg.grad is not None and len(calls) == 2
    assert not saliency_cpu.applies(q.double(), k.double(), k.double())


def test_a_tsi_model_in_eval_equals_its_exported_matmul_form():
    from tsi.config import TSIConfig
    from tsi.model import TSINet

    cfg = TSIConfig(depth=18, base_width=16, frames=4, input_size=32, num_classes=5, attention="sdpa")
    torch.manual_seed(0)
    net = TSINet(cfg).eval()
    twin = TSINet(cfg.replace(attention="matmul")).eval()
    twin.load_state_dict(net.state_dict())
    x = torch.randn(2, cfg.frames, 3, cfg.input_size, cfg.input_size)
    with torch.no_grad():
        assert torch.allclose(net(x), twin(x), rtol=1e-5, atol=1e-5)
