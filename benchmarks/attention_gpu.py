"""GPU benchmark of TSI's saliency attention: materialised vs SDPA vs Triton vs the CUDA kernel.

    python -m benchmarks.attention_gpu                 # stage-2 shape: B=224 pairs, L=3136, D=4, fp16
    python -m benchmarks.attention_gpu --lib build/attention/libtsi_attention.so --iters 50

Needs a CUDA GPU and torch with CUDA. The CUDA kernel column needs libtsi_attention.so: given with
--lib, else built here with CMake into --build-dir (needs cmake and nvcc), else left out with the
reason in the table. Writes a markdown report to benchmarks/results/attention_gpu.md (its figures
beside it as attention_gpu.json, which benchmarks.gpu_check reads):

- timing (CUDA events, median of --iters after --warmup) and peak extra memory
  (torch.cuda.max_memory_allocated above the inputs) at the benchmark shape, for
  1. MatMul-Softmax-MatMul with the (B, L, L) scores materialised (the standard ONNX graph's form),
  2. torch.nn.functional.scaled_dot_product_attention,
  3. the Triton kernel (tsi/kernels/saliency_triton.py),
  4. the CUDA kernel (export/plugin/saliency_attention.cu through ctypes);
- a floor: a Triton kernel that only evaluates B*L*L exp2 (values made in registers, no memory
  traffic), i.e. what the exponentials alone cost on this GPU;
- correctness of Triton and CUDA over a sweep (L 49..3136, D 4..32 and odd sizes, B 1..64, fp32 and
  fp16, k == v and k != v) against a float64 reference, every output poisoned with NaN first.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import logging
import math
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks.common.timing import cuda_event_median
from export import PLUGIN_SOURCES
from runtime.common.files import atomic_write_text

log = logging.getLogger("attention_gpu")

DEFAULT_OUT = Path("benchmarks") / "results" / "attention_gpu.md"
DEFAULT_BUILD = Path("build") / "attention"
TOL = {"fp32": 1e-5, "fp16": 2e-3}
SWEEP_L = (49, 50, 196, 784, 1000, 3136)
SWEEP_D = (4, 5, 8, 16, 32)
SWEEP_B = (1, 7, 64)


# ---- implementations ------------------------------------------------------------------------------

def attention_materialised(q, k, v, scale):
    import torch

    return torch.softmax(torch.matmul(q * scale, k.transpose(-1, -2)), dim=-1).matmul(v)


def attention_sdpa(q, k, v, scale):
    import torch.nn.functional as F

    return F.scaled_dot_product_attention(q, k, v, scale=scale)


def attention_triton(q, k, v, scale, out=None):
    from tsi.kernels.saliency_triton import triton_forward

    return triton_forward(q, k, v, scale, out=out)


class CudaKernel:
    """libtsi_attention.so through ctypes, launched on torch's current stream."""

    def __init__(self, path: Path):
        self.path = path
        self.lib = ctypes.CDLL(str(path))
        f = self.lib.tsiSaliencyAttention
        f.argtypes = [ctypes.c_void_p] * 4 + [ctypes.c_int] * 3 + [ctypes.c_float, ctypes.c_int, ctypes.c_void_p]
        f.restype = ctypes.c_int
        self.fn = f

    def __call__(self, q, k, v, scale, out=None):
        import torch

        if q.dtype not in (torch.float32, torch.float16):
            raise ValueError(f"the CUDA kernel takes float32 or float16 (got {q.dtype})")
        q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
        out = torch.empty_like(q) if out is None else out
        b, length, d = q.shape
        stream = torch.cuda.current_stream(q.device).cuda_stream
        rc = self.fn(q.data_ptr(), k.data_ptr(), v.data_ptr(), out.data_ptr(), b, length, d, float(scale),
                     0 if q.dtype == torch.float32 else 1, stream)
        if rc != 0:
            raise RuntimeError(f"tsiSaliencyAttention returned cudaError {rc} for {tuple(q.shape)} {q.dtype}")
        return out


def build_cuda_library(build_dir: Path, arch: str) -> Path:
    """Configure and build the kernel-only library with the project's CMakeLists."""
    cmake, nvcc = shutil.which("cmake"), shutil.which("nvcc")
    if cmake is None or nvcc is None:
        raise RuntimeError("building libtsi_attention.so needs cmake and nvcc on PATH (or pass --lib)")
    cmds = [
        [cmake, "-S", str(PLUGIN_SOURCES), "-B", str(build_dir), "-DTSI_BUILD_PLUGIN=OFF",
         f"-DCMAKE_CUDA_ARCHITECTURES={arch}", f"-DCMAKE_CUDA_COMPILER={nvcc}"],
        [cmake, "--build", str(build_dir), "-j"],
    ]
    for cmd in cmds:
        log.info("%s", " ".join(cmd))
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return build_dir / "libtsi_attention.so"


# ---- the exponential floor ------------------------------------------------------------------------

_EXP_FLOOR = None


def exp_floor_kernel():
    """A Triton kernel evaluating BLOCK_M x L exp2 per program, from register values, summed per row."""
    global _EXP_FLOOR, triton, tl
    if _EXP_FLOOR is None:
        import triton
        import triton.language as tl

        @triton.jit
        def exp_only(Out, L, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
            pid = tl.program_id(0)
            rows = pid * BLOCK_M + tl.arange(0, BLOCK_M)
            x = rows[:, None].to(tl.float32) * 1e-7 - tl.arange(0, BLOCK_N)[None, :].to(tl.float32) * 1e-3
            acc = tl.zeros([BLOCK_M], dtype=tl.float32)
            for start in range(0, L, BLOCK_N):
                acc += tl.sum(tl.exp2(x - start * 1e-3), 1)
            tl.store(Out + rows, acc)

        _EXP_FLOOR = exp_only
    return _EXP_FLOOR


def exp_floor(rows: int, length: int, device):
    """Callable doing rows x length exp2 (rows rounded up to 64); returns it with the exact count."""
    import torch

    block_m, block_n = 64, 64
    programs = math.ceil(rows / block_m)
    out = torch.empty(programs * block_m, device=device, dtype=torch.float32)
    kernel = exp_floor_kernel()
    count = programs * block_m * math.ceil(length / block_n) * block_n

    def run():
        kernel[(programs,)](out, length, BLOCK_M=block_m, BLOCK_N=block_n, num_warps=4)
        return out

    return run, count


# ---- measurement ----------------------------------------------------------------------------------

@dataclass
class Timing:
    name: str
    ms: float | None = None
    peak_mib: float | None = None
    note: str = ""


def peak_extra_mib(fn) -> float:
    import torch

    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    out = fn()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - base
    del out
    return peak / 2**20


def measure(name, fn, warmup, iters) -> Timing:
    import torch

    try:
        peak = peak_extra_mib(fn)
        return Timing(name, cuda_event_median(fn, warmup, iters), peak)
    except torch.cuda.OutOfMemoryError as e:
        torch.cuda.empty_cache()
        return Timing(name, note=f"out of memory: {str(e).splitlines()[0]}")


def reference_f64(q, k, v, scale, chunk_bytes=2**31):
    """float64 softmax(q k^T scale) v on the GPU, batch-chunked to bound the (b, L, L) scores."""
    import torch

    b, length, _ = q.shape
    step = max(1, chunk_bytes // (8 * length * length))
    outs = []
    for i in range(0, b, step):
        qs, ks, vs = (t[i:i + step].double() for t in (q, k, v))
        outs.append(torch.softmax(qs @ ks.transpose(1, 2) * scale, dim=-1) @ vs)
    return torch.cat(outs)


def correctness_sweep(impls: dict, device) -> list[dict]:
    import torch

    g = torch.Generator(device=device).manual_seed(0)
    rows = []
    for length in SWEEP_L:
        for d in SWEEP_D:
            for b in SWEEP_B:
                base = [torch.randn(b, length, d, device=device, generator=g) for _ in range(3)]
                for dtype_name, dtype in (("fp32", torch.float32), ("fp16", torch.float16)):
                    q, k, v = (t.to(dtype) for t in base)
                    for kv_same in (False, True):
                        vv = k if kv_same else v
                        scale = 1.0 / math.sqrt(d)
                        ref = reference_f64(q, k, vv, scale)
                        for name, fn in impls.items():
                            out = torch.full_like(q, float("nan"))
                            fn(q, k, vv, scale, out=out)
                            torch.cuda.synchronize()
                            nan = bool(torch.isnan(out).any())
                            err = float((out.double() - ref).abs().max() / ref.abs().max().clamp_min(1e-30))
                            rows.append({"impl": name, "dtype": dtype_name, "B": b, "L": length, "D": d,
                                         "kv_same": kv_same, "err": math.inf if nan else err, "nan": nan})
    return rows


# ---- report ---------------------------------------------------------------------------------------

def format_report(env: dict, shape: dict, timings: list[Timing], floor: Timing | None, sweep: list[dict]) -> str:
    lines = [
        "# Saliency attention on the GPU",
        "",
        f"Device: {env.get('device', '?')}; torch {env.get('torch', '?')}, CUDA {env.get('cuda', '?')}, "
        f"triton {env.get('triton', '?')}; {env.get('date', '')}.",
        "",
        f"Shape: B={shape['B']} frame pairs, L={shape['L']}, D={shape['D']}, {shape['dtype']}, scale={shape['scale']:.4g}. "
        "Median of CUDA-event timings; peak = torch.cuda.max_memory_allocated above the inputs.",
        "",
        "| implementation | median ms | x floor | peak extra MiB | note |",
        "|---|---|---|---|---|",
    ]
    floor_ms = floor.ms if floor is not None else None
    for t in ([floor] if floor is not None else []) + timings:
        ms = f"{t.ms:.3f}" if t.ms is not None else "—"
        ratio = f"{t.ms / floor_ms:.2f}" if t.ms is not None and floor_ms else "—"
        peak = f"{t.peak_mib:.1f}" if t.peak_mib is not None else "—"
        lines.append(f"| {t.name} | {ms} | {ratio} | {peak} | {t.note} |")
    if sweep:
        lines += ["", "## Correctness against float64 (outputs poisoned with NaN first)", "",
                  f"L in {list(SWEEP_L)}, D in {list(SWEEP_D)}, B in {list(SWEEP_B)}, k != v and k == v. "
                  "Statistic: max |out - ref| / max |ref|.", "",
                  "| implementation | dtype | cases | max rel. error | bound | NaN left | pass |", "|---|---|---|---|---|---|---|"]
        for r in sweep_summary(sweep):
            lines.append(f"| {r['impl']} | {r['dtype']} | {r['cases']} | {r['max_rel_error']:.2e} | {r['bound']:.0e} | "
                         f"{r['nan_left']} | {'yes' if r['pass'] else 'NO'} |")
        failed = [r for r in sweep if not (r["err"] < TOL[r["dtype"]])]
        if failed:
            lines += ["", "Failing cases:", ""]
            lines += [f"- {r['impl']} {r['dtype']} B={r['B']} L={r['L']} D={r['D']} kv_same={r['kv_same']}: "
                      f"{r['err']:.2e}" for r in failed[:50]]
    return "\n".join(lines) + "\n"


def sweep_summary(sweep: list[dict]) -> list[dict]:
    """One row per implementation and dtype: cases, worst relative error (inf where NaN was left),
    its bound, NaN outputs left, pass."""
    rows = []
    for impl in sorted({r["impl"] for r in sweep}):
        for dt in ("fp32", "fp16"):
            rs = [r for r in sweep if r["impl"] == impl and r["dtype"] == dt]
            if rs:
                worst, nans = max(r["err"] for r in rs), sum(r["nan"] for r in rs)
                rows.append({"impl": impl, "dtype": dt, "cases": len(rs), "max_rel_error": worst, "bound": TOL[dt],
                             "nan_left": nans, "pass": worst < TOL[dt] and nans == 0})
    return rows


def report_figures(env: dict, shape: dict, timings: list[Timing], floor: Timing | None, sweep: list[dict]) -> dict:
    """The report's figures as JSON-able data (a non-finite error is None)."""
    summary = [{**r, "max_rel_error": r["max_rel_error"] if math.isfinite(r["max_rel_error"]) else None}
               for r in sweep_summary(sweep)]
    return {"env": env, "shape": shape, "floor": asdict(floor) if floor is not None else None,
            "timings": [asdict(t) for t in timings], "sweep": summary,
            "sweep_passed": sweep_passed(sweep) if sweep else None}


def sweep_passed(sweep: list[dict]) -> bool:
    return all(r["err"] < TOL[r["dtype"]] and not r["nan"] for r in sweep)


# ---- CLI ------------------------------------------------------------------------------------------

def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=224, help="frame pairs B (TSI-R50, T=8: 32 clips x 7 pairs)")
    p.add_argument("--length", type=int, default=3136, help="positions L = H*W (stage 2 at 224^2: 56*56)")
    p.add_argument("--head", type=int, default=4, help="head size D")
    p.add_argument("--dtype", choices=("fp16", "fp32"), default="fp16")
    p.add_argument("--scale", type=float, default=None, help="softmax scale (default 1/sqrt(D))")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--lib", type=Path, default=None, help="libtsi_attention.so (default: build it)")
    p.add_argument("--build-dir", type=Path, default=DEFAULT_BUILD)
    p.add_argument("--cuda-arch", default="native", help="CMAKE_CUDA_ARCHITECTURES for the build (CMake >= 3.24 for 'native')")
    p.add_argument("--skip-materialised", action="store_true", help="leave out MatMul-Softmax-MatMul (needs 2 x B*L*L elements)")
    p.add_argument("--skip-sweep", action="store_true")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    return p.parse_args(argv)


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        log.error("no CUDA GPU visible to torch (torch %s, built with CUDA %s): this benchmark needs one",
                  torch.__version__, torch.version.cuda)
        return 2
    import triton

    device = torch.device("cuda")
    dtype = torch.float16 if args.dtype == "fp16" else torch.float32
    b, length, d = args.batch, args.length, args.head
    scale = args.scale if args.scale is not None else 1.0 / math.sqrt(d)
    env = {"device": torch.cuda.get_device_name(device), "torch": torch.__version__, "cuda": torch.version.cuda,
           "triton": triton.__version__, "date": time.strftime("%Y-%m-%d"), "python": platform.python_version()}
    log.info("%s | B=%d L=%d D=%d %s", env["device"], b, length, d, args.dtype)

    cuda_kernel, cuda_note = None, ""
    try:
        lib = args.lib if args.lib is not None else build_cuda_library(args.build_dir, args.cuda_arch)
        cuda_kernel = CudaKernel(lib)
        log.info("CUDA kernel: %s", lib)
    except (RuntimeError, OSError) as e:
        cuda_note = f"not run: {str(e).splitlines()[0]}"
        log.warning("CUDA kernel left out: %s", e)

    g = torch.Generator(device=device).manual_seed(0)
    q = torch.randn(b, length, d, device=device, generator=g, dtype=torch.float32).to(dtype)
    kv = torch.randn(b, length, d, device=device, generator=g, dtype=torch.float32).to(dtype)  # TSI: k == v

    timings = []
    if not args.skip_materialised:
        timings.append(measure("MatMul-Softmax-MatMul (materialised)",
                               lambda: attention_materialised(q, kv, kv, scale), args.warmup, args.iters))
    timings.append(measure("torch SDPA", lambda: attention_sdpa(q, kv, kv, scale), args.warmup, args.iters))
    timings.append(measure("Triton fused (tsi/kernels)", lambda: attention_triton(q, kv, kv, scale), args.warmup, args.iters))
    if cuda_kernel is not None:
        timings.append(measure("CUDA kernel (libtsi_attention.so)", lambda: cuda_kernel(q, kv, kv, scale),
                               args.warmup, args.iters))
    else:
        timings.append(Timing("CUDA kernel (libtsi_attention.so)", note=cuda_note))
    run_floor, count = exp_floor(b * length, length, device)
    floor = Timing("floor: B·L² exp2 only (no memory)", cuda_event_median(run_floor, args.warmup, args.iters), None,
                   f"{count:.3g} exp2")
    for t in [floor] + timings:
        log.info("%-40s %s ms  %s MiB  %s", t.name, f"{t.ms:.3f}" if t.ms else "—",
                 f"{t.peak_mib:.1f}" if t.peak_mib is not None else "—", t.note)

    sweep = []
    if not args.skip_sweep:
        impls = {"triton": attention_triton}
        if cuda_kernel is not None:
            impls["cuda"] = cuda_kernel
        sweep = correctness_sweep(impls, device)
        log.info("sweep: %d runs, %s", len(sweep), "all within bounds" if sweep_passed(sweep) else "FAILURES")

    shape = {"B": b, "L": length, "D": d, "dtype": args.dtype, "scale": scale}
    atomic_write_text(args.out, format_report(env, shape, timings, floor, sweep))
    atomic_write_text(args.out.with_suffix(".json"),
                      json.dumps(report_figures(env, shape, timings, floor, sweep), indent=1) + "\n")
    log.info("wrote %s and its .json", args.out)
    return 0 if sweep_passed(sweep) else 1


if __name__ == "__main__":
    sys.exit(main())
