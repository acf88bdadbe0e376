"""Measurements on a CUDA GPU: a model's forward pass in eager, CUDA-graph and ``torch.compile``
modes under autocast, a mixed-precision training step (``tsi.train``'s own), the GPU and its
software stack, and runtime backends compared on the same clips.

Forward timing: CUDA events (:func:`benchmarks.common.timing.cuda_event_median`), ``warmup``
calls first, the median of ``iters``; clips/s = batch / median. Training: the wall time between
consecutive steps with the device synchronised at each, the median over the steps after the
warm-up ones. Peak memory: ``torch.cuda.max_memory_allocated`` over the whole case (weights, a
graph's capture pool, activations, optimizer state). Backends: wall clock per ``infer`` call
(:func:`benchmarks.common.timing.measure_latency`, host-device copies included: what the runtime
sees). Only :func:`compare_backends` runs without a GPU (the tests run it on two CPU providers).
"""

from __future__ import annotations

import shutil
import subprocess
import time

import numpy as np

from benchmarks.common.timing import PeakMemory, cuda_event_median, measure_latency

MODES = ("eager", "cuda-graph", "compile")


def forward_fn(net, x, dtype):
    """``net(x)`` without gradients under CUDA autocast to ``dtype`` (its weight cache off, so that
    a CUDA graph can capture it)."""
    import torch

    def run():
        with torch.no_grad(), torch.autocast("cuda", dtype=dtype, cache_enabled=False):
            return net(x)

    return run


def cuda_graphed(fn, warmup: int = 3):
    """A callable replaying ``fn``'s kernels from a CUDA graph: ``warmup`` calls on a side stream,
    then one captured (torch's recipe); it returns the captured call's output tensor."""
    import torch

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(warmup):
            fn()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = fn()

    def replay():
        graph.replay()
        return out

    return replay


def forward_throughput(net, clip_shape: tuple, batch: int, *, graph: bool, warmup: int, iters: int,
                       dtype_name: str = "fp16") -> dict:
    """Clips/s of ``net`` (a CUDA model in eval mode, or its ``torch.compile`` wrapper) on ``batch``
    random clips of ``clip_shape`` (T, 3, S, S); ``graph``: replayed from a CUDA graph.
    ``first_call_s``: the first call (a compile's time, a graph's capture)."""
    import torch

    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}[dtype_name]
    x = torch.randn(batch, *clip_shape, device="cuda")
    with PeakMemory(cuda=True) as mem:
        t0 = time.perf_counter()
        fn = forward_fn(net, x, dtype)
        fn = cuda_graphed(fn) if graph else fn
        fn()
        torch.cuda.synchronize()
        first = time.perf_counter() - t0
        ms = cuda_event_median(fn, warmup, iters)
    return {"median_ms": ms, "clips_per_s": batch * 1000.0 / ms, "iters": iters, "first_call_s": first,
            "peak_mib": mem.mib}


def train_step_time(model, batch: int, *, steps: int, warmup: int, lr: float = 1e-3) -> dict:
    """``tsi.train.run_epoch`` (fp16 autocast, GradScaler, gradient clipping) with AdamW over
    ``warmup + steps`` steps on one batch of random clips and labels kept on the GPU."""
    import torch

    from tsi.train import Dist, run_epoch

    device = torch.device("cuda")
    model.to(device)
    cfg = model.cfg
    x = torch.randn(batch, cfg.frames, 3, cfg.input_size, cfg.input_size, device=device)
    y = torch.randint(0, cfg.num_classes, (batch,), device=device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    scaler = torch.amp.GradScaler("cuda")
    stamps, losses = [time.perf_counter()], []

    def on_loss(step: int, loss: float) -> bool:
        torch.cuda.synchronize()
        stamps.append(time.perf_counter())
        losses.append(loss)
        return False

    with PeakMemory(cuda=True) as mem:
        run_epoch(model, [(x, y)] * (warmup + steps), Dist(device=device), optimizer=optimizer, scaler=scaler,
                  on_loss=on_loss)
    times = np.diff(stamps)[warmup:] * 1000.0
    ms = float(np.median(times))
    return {"batch": batch, "steps": int(times.size), "step_ms_median": ms, "clips_per_s": batch * 1000.0 / ms,
            "peak_mib": mem.mib, "loss_first": losses[0], "loss_last": losses[-1],
            "losses_finite": bool(np.isfinite(losses).all()),
            "recipe": f"AdamW lr {lr:g}, fp16 autocast + GradScaler, tsi.train.run_epoch"}


def compare_backends(backends: dict, batches: tuple[int, ...], repeats: int) -> list[dict]:
    """Per batch and backend (opened ``runtime.backends`` clip backends; the last is the reference):
    p50 ms per ``infer_batch`` call, clips/s, and the max |logit - reference logit| on the same clips."""
    rng = np.random.default_rng(0)
    rows = []
    for batch in batches:
        shape = next(iter(backends.values())).card.input_shape
        x = rng.standard_normal((batch, *shape)).astype(np.float32)
        outs = {name: b.infer_batch(x) for name, b in backends.items()}
        ref = outs[list(backends)[-1]]
        for name, backend in backends.items():
            lat = measure_latency(lambda b=backend: b.infer_batch(x), repeats=repeats, warmup=2)
            rows.append({"backend": name, "batch": batch, "p50_ms": lat["p50"],
                         "clips_per_s": batch * 1000.0 / lat["p50"], "runs": lat["n"],
                         "max_abs_logit_diff": float(np.abs(outs[name] - ref).max())})
    return rows


def tool_line(cmd: list[str], pick: str = "") -> str | None:
    """The first line of ``cmd``'s output that contains ``pick``; None where it is absent or fails."""
    if shutil.which(cmd[0]) is None:
        return None
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = [x.strip() for x in proc.stdout.splitlines() if pick in x and x.strip()]
    return lines[0] if proc.returncode == 0 and lines else None


def gpu_environment() -> dict:
    """The CUDA device torch sees (name, capability, memory free / total), the driver, CUDA runtime,
    cuDNN, and the tools the GPU parts use (nvcc, cmake, CuPy); a missing one is None."""
    import torch

    props = torch.cuda.get_device_properties(0)
    free, total = torch.cuda.mem_get_info(0)
    try:
        import cupy
        cupy_version = cupy.__version__
    except ImportError:
        cupy_version = None
    return {"gpu": props.name, "capability": f"sm_{props.major}{props.minor}", "multiprocessors": props.multi_processor_count,
            "memory_total_mib": total / 2**20, "memory_free_mib": free / 2**20,
            "driver": tool_line(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]),
            "cuda_runtime_torch": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
            "nvcc": tool_line(["nvcc", "--version"], "release"), "cmake": tool_line(["cmake", "--version"], "version"),
            "cupy": cupy_version}
