"""The parts of the GPU check (``benchmarks.gpu_check``, which runs them in this order): for each,
what it runs, whether it can run here (None, or why not, in one line) and the run itself, which
returns its figures as JSON-able data. The measuring is :mod:`benchmarks.common.gpu_measure`'s.
(Here and not beside the CLI because a study imports nothing of ``benchmarks`` but ``common``.)

A part runs within its :class:`Context`'s deadline as far as it can see: the throughput part skips
the cases it has no time left for, the attention benchmark runs as a subprocess killed at the
deadline; a single case already started runs to its end.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from benchmarks.common.gpu_measure import MODES, compare_backends, forward_throughput, gpu_environment, train_step_time
from benchmarks.common.machine import cuda_reason, module_reason, ort_cuda_reason, trt_import_reason

REPO = Path(__file__).resolve().parents[2]
R50_ARCHS = ("tsn_r50", "tsm_r50", "tsi_r50")  # TSIConfig's defaults: 224², T = 8, 174 classes
BATCHES = (1, 32)
CASE_GUESS_S = 15.0  # an eager or CUDA-graph case: warm-up, the timed calls, a capture
COMPILE_GUESS_S = 90.0  # a torch.compile of an R50 until one has been timed in this run (then the longest)
TRAIN_BATCH, TRAIN_WARMUP, TRAIN_STEPS = 8, 3, 10  # 8 clips: the paper's batch per GPU (64 on 8)
ORT_BATCHES = (1, 16)
TRT_BATCHES = (1, 8)  # within the engine builder's default batch profile (1, 1, 8)


class PartFailed(Exception):
    """A part that ran and failed, with the figures it has (the attention sweep out of bounds)."""

    def __init__(self, reason: str, figures: dict):
        super().__init__(reason)
        self.figures = figures


def one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:300]}" if text else type(e).__name__


@dataclass
class Context:
    out: Path  # the report; the attention benchmark writes beside it
    workdir: Path  # scratch: the demo ONNX graph, an engine
    warmup: int
    iters: int
    deadline: float = float("inf")  # time.monotonic() by which the part should end
    cache: dict = field(default_factory=dict)

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def demo_onnx(self) -> Path:
        """The demo checkpoint exported by the project's export path (dynamic batch), once per run."""
        if "onnx" not in self.cache:
            from export.friendly import export_friendly_model
            from export.onnx_export import export_onnx
            from runtime.common.files import file_sha256
            from tsi.assets import DEMO_CHECKPOINT

            model, card = export_friendly_model(DEMO_CHECKPOINT)
            self.cache["onnx"] = export_onnx(model, card, self.workdir / "demo.onnx",
                                             source_sha256=file_sha256(DEMO_CHECKPOINT), dynamic_batch=True)
        return self.cache["onnx"]

    def attention_out(self) -> Path:
        return self.out.with_name(self.out.stem + "_attention.md")


# ---- can it run here -----------------------------------------------------------------------------

def all_reasons(*checks: Callable[[], str | None]) -> Callable[[], str | None]:
    return lambda: "; ".join(r for r in (c() for c in checks) if r) or None


# ---- the parts -----------------------------------------------------------------------------------

def environment(ctx: Context) -> dict:
    from benchmarks.common.machine import library_versions

    why = cuda_reason()
    figures = gpu_environment() if why is None else {"gpu": None, "gpu_reason": why}
    try:
        import onnxruntime as ort
        figures["onnxruntime_providers"] = ort.get_available_providers()
    except ImportError:
        figures["onnxruntime_providers"] = None
    versions = library_versions()
    return {**figures, **{k: versions[k] for k in ("torch", "triton", "onnxruntime", "tensorrt")}}


def model_variants() -> list[tuple[str, str | None]]:
    """(builder, attention): every attention implementation for a model with SME, None for the others."""
    from tsi.config import ATTENTIONS
    from tsi.model import FAMILIES

    return [(arch, att) for arch in R50_ARCHS
            for att in (ATTENTIONS if FAMILIES[arch.split("_")[0]]["motion"] == "sme" else (None,))]


def throughput_cases() -> list[tuple[str, str, str | None, int]]:
    """(mode, builder, attention, batch) in the order they run: every eager and CUDA-graph case first
    (cheap), then the compiles, the largest batch first, TSI at the config's default attention and
    the baselines before TSI's other attentions (what the budget cuts comes last)."""
    from tsi.config import TSIConfig

    variants = model_variants()
    rank = {TSIConfig().attention: 0, None: 1}
    ranked = sorted(variants, key=lambda v: rank.get(v[1], 2))
    cheap = [(m, a, t, b) for m in MODES if m != "compile" for a, t in variants for b in BATCHES]
    return cheap + [("compile", a, t, b) for b in sorted(BATCHES, reverse=True) for a, t in ranked]


def throughput(ctx: Context) -> dict:
    import torch

    from tsi.model import create_model

    models, rows, compiles = {}, [], []
    for mode, arch, att, batch in throughput_cases():
        row = {"model": arch, "attention": att, "mode": mode, "batch": batch}
        need = CASE_GUESS_S + (max(compiles, default=COMPILE_GUESS_S) if mode == "compile" else 0.0)
        if ctx.left() < need:
            rows.append({**row, "status": "skipped",
                         "reason": f"the part's budget: {max(ctx.left(), 0):.0f} s left, the case needs ~{need:.0f} s"})
            continue
        try:
            if (arch, att) not in models:
                extra = {"attention": att} if att else {}
                models[arch, att] = create_model(arch, zero_init_residual=False, **extra).cuda().eval()
            model = models[arch, att]
            if mode == "compile":  # a fresh compile per case (static shapes): no cache limit reached, no
                torch._dynamo.reset()  # silent fall-back to eager
            net = torch.compile(model, dynamic=False) if mode == "compile" else model
            cfg = model.cfg
            r = forward_throughput(net, (cfg.frames, 3, cfg.input_size, cfg.input_size), batch,
                                   graph=mode == "cuda-graph", warmup=ctx.warmup, iters=ctx.iters)
            if mode == "compile":
                compiles.append(r["first_call_s"])
            rows.append({**row, "status": "ok", **r})
        except Exception as e:  # noqa: BLE001 - one case that fails is a row with its reason
            rows.append({**row, "status": "failed", "reason": one_line(e)})
        torch.cuda.empty_cache()
    torch._dynamo.reset()
    models.clear()
    torch.cuda.empty_cache()
    return {"clips": f"random ({geometry()}), fp32 in, fp16 autocast; CUDA events, median", "warmup": ctx.warmup,
            "compile": "torch.compile, inductor, static shapes (one compile per case)", "rows": rows}


def attention(ctx: Context) -> dict:
    out = ctx.attention_out()
    out.with_suffix(".json").unlink(missing_ok=True)  # never read an earlier run's figures
    cmd = [sys.executable, "-m", "benchmarks.attention_gpu", "--out", str(out),
           "--warmup", str(ctx.warmup), "--iters", str(ctx.iters)]
    figures = {"command": " ".join(cmd[1:]), "report": str(out)}
    rc, tail = run_bounded(cmd, ctx.left())
    figures["exit"] = rc
    if out.with_suffix(".json").is_file():
        data = json.loads(out.with_suffix(".json").read_text())
        figures.update(shape=data["shape"], timings=[t for t in [data["floor"]] + data["timings"] if t],
                       sweep=data["sweep"], sweep_passed=data["sweep_passed"])
    if rc is None:
        raise PartFailed(f"killed at the part's deadline; last output: {tail}", figures)
    if rc != 0:
        raise PartFailed("the correctness sweep failed" if rc == 1 and "sweep" in figures
                         else f"exit status {rc}: {tail}", figures)
    return figures


def run_bounded(cmd: list[str], timeout: float) -> tuple[int | None, str]:
    """(exit status or None if killed at ``timeout``, its last output line); the command runs in
    its own process group with this repository first on PYTHONPATH, killed as a group at the timeout."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        text, rc = proc.communicate(timeout=max(timeout, 1.0))[0], proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        text, rc = proc.communicate()[0], None
    lines = [x for x in (text or "").splitlines() if x.strip()]
    return rc, lines[-1][:300] if lines else ""


def train(ctx: Context) -> dict:
    from tsi.model import create_model

    return {"model": "tsi_r50", **train_step_time(create_model("tsi_r50"), TRAIN_BATCH, steps=TRAIN_STEPS,
                                                  warmup=TRAIN_WARMUP)}


def onnxruntime_cuda(ctx: Context) -> dict:
    from runtime.backends import open_backend

    path = ctx.demo_onnx()
    with open_backend(path, "onnxruntime", providers=["cuda"]) as cuda, \
            open_backend(path, "onnxruntime", providers=["cpu"]) as cpu:
        rows = compare_backends({"onnxruntime-cuda": cuda, "onnxruntime-cpu": cpu}, ORT_BATCHES, ctx.iters)
    return {"graph": "the demo model (tsi/assets), export.onnx_export, dynamic batch", "rows": rows}


def tensorrt(ctx: Context) -> dict:
    """Written from the TensorRT API the engine builder uses; never run on this project's machines."""
    from export.onnx_export import read_card_from_onnx
    from export.trt_build import EngineSpec, build_engine
    from runtime.backends import open_backend
    from runtime.common.files import file_sha256

    path = ctx.demo_onnx()
    engine = build_engine(EngineSpec(path, ctx.workdir / "demo_fp16.engine", "fp16", read_card_from_onnx(path),
                                     onnx_sha256=file_sha256(path)))
    with open_backend(engine, "tensorrt") as trt, open_backend(path, "onnxruntime", providers=["cpu"]) as cpu:
        rows = compare_backends({"tensorrt-fp16": trt, "onnxruntime-cpu": cpu}, TRT_BATCHES, ctx.iters)
    return {"engine": "the demo ONNX graph, FP16 (export.trt_build)", "rows": rows}


@dataclass(frozen=True)
class Part:
    name: str
    weight: float  # its share of the total budget
    what: Callable[[Context], str]  # the plan's line
    check: Callable[[], str | None]  # None: it can run here; else why not
    run: Callable[[Context], dict]  # its figures


def geometry() -> str:
    from tsi.config import TSIConfig

    cfg = TSIConfig()
    return f"{cfg.input_size}², T={cfg.frames}"


def _throughput_what(ctx: Context) -> str:
    variants = ", ".join(a if t is None else f"{a}/{t}" for a, t in model_variants())
    return (f"forward clips/s of {variants} ({geometry()}) at batch {' and '.join(map(str, BATCHES))}, fp16 autocast, "
            f"{' / '.join(MODES)}; CUDA events, {ctx.warmup} warm-up, median of {ctx.iters}")


PARTS: dict[str, Part] = {p.name: p for p in (
    Part("environment", 1, lambda ctx: "GPU, driver, CUDA, cuDNN, nvcc, cmake, CuPy; torch / triton / onnxruntime / "
         "TensorRT versions; free GPU memory", lambda: None, environment),
    Part("throughput", 46, _throughput_what, cuda_reason, throughput),
    Part("attention", 28, lambda ctx: f"python -m benchmarks.attention_gpu --out {ctx.attention_out()} (timings at "
         "TSI-R50's stage 2, the CUDA kernel built with CMake/nvcc, the correctness sweep), killed at the deadline",
         all_reasons(cuda_reason, lambda: module_reason("triton")), attention),
    Part("train", 10, lambda ctx: f"{TRAIN_WARMUP} + {TRAIN_STEPS} training steps of tsi_r50 ({geometry()}), batch "
         f"{TRAIN_BATCH}: AdamW, fp16 autocast + GradScaler (tsi.train.run_epoch); ms per step, peak memory",
         cuda_reason, train),
    Part("onnxruntime", 12, lambda ctx: f"the demo model exported to ONNX; onnxruntime CUDA vs CPU provider at batch "
         f"{' and '.join(map(str, ORT_BATCHES))}: p50 ms, clips/s, max |logit difference|",
         all_reasons(cuda_reason, ort_cuda_reason), onnxruntime_cuda),
    Part("tensorrt", 3, lambda ctx: "an FP16 engine of the demo ONNX graph, run by the runtime's TensorRT backend "
         "against onnxruntime CPU", all_reasons(cuda_reason, trt_import_reason), tensorrt),
)}
