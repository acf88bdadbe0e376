"""The saliency attention on a CPU: the C++ kernel (``runtime.kernels.cpu_attention``) against the
forms it replaces, alone and inside TSI-R50, with TSN-R50 as the yardstick.

    python -m benchmarks.cpu_attention [--threads 1] [--calls 5] [--rounds 3] [--no-model]

1. The attention alone at TSI-R50's four stages (7 frame pairs; L = 3136, 784, 196, 49 positions;
   head size 4, 8, 16, 32): torch SDPA, torch's explicit MatMul-Softmax-MatMul, onnxruntime on the
   exported MatMul-Softmax-MatMul, on that form in blocks of query rows
   (``export.chunked_attention``) and on ``com.microsoft.MultiHeadAttention``, and the kernel; the
   candidates alternate call by call (the order flipping every round); median ms, and the error against float64.
2. The whole model in PyTorch eager (224², T=8, batch 1, random weights): TSN-R50, TSI-R50 with the
   kernel (its CPU inference default) and TSI-R50 with torch SDPA (the default before it), calls
   alternating; TSI/TSN throughput ratios.
3. The whole model in onnxruntime (the same models exported): TSN-R50, TSI-R50's standard graph and
   its query-block form, calls alternating; TSI/TSN throughput ratios and both graphs' logits
   against PyTorch's.
Writes ``--out`` (Markdown) and the same figures as JSON beside it, with the command, the processor
and the load average before and after.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import tempfile
from pathlib import Path
from unittest import mock

import numpy as np

from benchmarks.common.machine import cpu_model, cpus_usable, load_average, load_note
from benchmarks.common.paired import paired_throughput
from export.chunked_attention import CHUNK_ROWS, make_chunked_attention_graph
from runtime.common.files import atomic_write_text
from runtime.kernels.cpu_attention import ARCH_ENV

DEFAULT_OUT = Path("benchmarks") / "results" / "cpu_attention.md"
PAIRS = 7  # frame pairs of a T=8 clip
STAGES = ((3136, 4), (784, 8), (196, 16), (49, 32))  # (H*W, head size) of TSI-R50's stages at 224²
LOUD = 128.0  # queries scaled so that scores reach hundreds: the kernel's box bound is loose, its max runs
LOOSE = f"C++ kernel, queries x{LOUD:.0f} (scores of hundreds: the running max)"


def _ort_attention(op: str, b: int, length: int, d: int, threads: int, folder: Path):
    """An onnxruntime session of one attention: ``op`` "matmul" (the exported form), "blocks" (it in
    blocks of query rows) or "mha"."""
    import onnx
    import onnxruntime as ort

    from runtime.backends.onnxruntime_backend import session_options
    from onnx import TensorProto, helper

    shape = [b, length, d]
    if op in ("matmul", "blocks"):
        nodes = [helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 2, 1], name="kt"),
                 helper.make_node("MatMul", ["q", "kt"], ["s"], name="qk"),
                 helper.make_node("Softmax", ["s"], ["p"], axis=-1, name="softmax"),
                 helper.make_node("MatMul", ["p", "v"], ["o"], name="pv")]
        opsets = [helper.make_opsetid("", 17)]
    else:
        nodes = [helper.make_node("MultiHeadAttention", ["q", "k", "v"], ["o"], domain="com.microsoft",
                                  num_heads=1, scale=1.0)]
        opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    graph = helper.make_graph(nodes, op, [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape) for n in "qkv"],
                              [helper.make_tensor_value_info("o", TensorProto.FLOAT, shape)])
    path = folder / f"{op}_{length}_{d}.onnx"
    proto = helper.make_model(graph, opset_imports=opsets)
    if op == "blocks":
        proto, _ = make_chunked_attention_graph(proto)
    onnx.save(proto, str(path))
    return ort.InferenceSession(str(path), session_options(threads), providers=["CPUExecutionProvider"])


def attention_rows(threads: int, calls: int) -> list[dict]:
    """One row per (stage, implementation): median ms and max |error| against float64."""
    import torch
    import torch.nn.functional as F

    from runtime.kernels import cpu_attention
    from tsi.modules.attention import attention_matmul

    rows = []
    with tempfile.TemporaryDirectory() as tmp, torch.inference_mode():
        for length, d in STAGES:
            rng = np.random.default_rng(length)
            q, k = (rng.standard_normal((PAIRS, length, d)).astype(np.float32) for _ in range(2))
            loud = q * LOUD
            scale = 1.0 / math.sqrt(d)
            ref = _definition(q * scale, k)
            tq, tk = torch.from_numpy(q), torch.from_numpy(k)
            sessions = {op: _ort_attention(op, PAIRS, length, d, threads, Path(tmp)) for op in ("matmul", "blocks", "mha")}
            feeds = {"q": q * scale, "k": k, "v": k}
            impls = {
                "torch SDPA": lambda: F.scaled_dot_product_attention(tq, tk, tk).numpy(),
                "torch MatMul-Softmax-MatMul": lambda: attention_matmul(tq, tk, tk).numpy(),
                "onnxruntime MatMul-Softmax-MatMul": lambda: sessions["matmul"].run(None, feeds)[0],
                f"onnxruntime, blocks of {CHUNK_ROWS} query rows": lambda: sessions["blocks"].run(None, feeds)[0],
                "onnxruntime MultiHeadAttention": lambda: sessions["mha"].run(None, feeds)[0],
                "C++ kernel": lambda: cpu_attention.saliency_attention(q, k, k, scale),
                LOOSE: lambda: cpu_attention.saliency_attention(loud, k, k, scale),
            }
            refs = dict.fromkeys(impls, ref) | {LOOSE: _definition(loud * scale, k)}
            errors = {name: float(np.abs(fn() - refs[name]).max()) for name, fn in impls.items()}
            times = _alternate(impls, calls)
            for name in impls:
                rows.append({"positions": length, "head": d, "impl": name, "median_ms": times[name],
                             "max_abs_error": errors[name]})
    return rows


def _definition(q: np.ndarray, k: np.ndarray) -> np.ndarray:
    scores = np.einsum("bld,bmd->blm", q.astype(np.float64), k.astype(np.float64))
    p = np.exp(scores - scores.max(-1, keepdims=True))
    return np.einsum("blm,bmd->bld", p / p.sum(-1, keepdims=True), k.astype(np.float64))


def _alternate(fns: dict, calls: int) -> dict[str, float]:
    """Median ms of each no-argument callable, alternated as :func:`paired_throughput` does."""
    timed = paired_throughput({name: (lambda _x, fn=fn: fn()) for name, fn in fns.items()}, np.zeros(1), rounds=calls)
    return {name: r["median_ms"] for name, r in timed.items()}


@contextlib.contextmanager
def _without_kernel():
    """TSI's attention as before the kernel: torch SDPA on the CPU too."""
    with mock.patch("tsi.kernels.saliency_cpu.applies", return_value=False):
        yield


def model_rows(rounds: int) -> dict[str, float]:
    """Median ms per clip of TSN-R50, TSI-R50 (kernel) and TSI-R50 (SDPA), calls alternating."""
    import torch

    from benchmarks.common.r50 import R50, family_config
    from tsi.config import TSIConfig
    from tsi.model import TSINet

    torch.manual_seed(0)
    nets = {fam: TSINet(family_config(TSIConfig(**R50), fam, frames=8)).eval() for fam in ("tsn", "tsi")}
    clip = torch.randn(1, 8, 3, R50["input_size"], R50["input_size"])

    def run(fam: str, kernel: bool):
        def call():
            with torch.inference_mode(), (contextlib.nullcontext() if kernel else _without_kernel()):
                nets[fam](clip)
        return call

    return _alternate({"TSN-R50": run("tsn", True), "TSI-R50, C++ kernel": run("tsi", True),
                       "TSI-R50, torch SDPA": run("tsi", False)}, rounds)


def ort_model_rows(rounds: int, threads: int) -> dict:
    """onnxruntime: median ms per clip of TSN-R50 and TSI-R50's standard and query-block graphs
    (exported from the same random-weight models as :func:`model_rows`), calls alternating; and the
    logits of both graphs against PyTorch's (``export.parity.compare_logits``)."""
    import onnx
    import onnxruntime as ort
    import torch

    from benchmarks.common.r50 import R50, family_config
    from export.onnx_export import export_onnx, save_onnx
    from export.parity import compare_logits
    from runtime.backends.onnxruntime_backend import session_options
    from tsi.checkpoint import make_card
    from tsi.config import TSIConfig
    from tsi.model import TSINet

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        paths, nets = {}, {}
        for fam in ("tsn", "tsi"):
            cfg = family_config(TSIConfig(**R50), fam, frames=8).replace(zero_init_residual=False)
            card = make_card(cfg, [f"class_{i}" for i in range(cfg.num_classes)])
            nets[fam] = TSINet(cfg).eval()
            paths[fam] = export_onnx(nets[fam], card, Path(tmp) / f"{fam}.onnx", source_sha256="random")
        blocks, count = make_chunked_attention_graph(onnx.load(str(paths["tsi"])))
        paths["blocks"] = save_onnx(blocks, Path(tmp) / "tsi.blocks.onnx")
        sessions = {k: ort.InferenceSession(str(v), session_options(threads), providers=["CPUExecutionProvider"])
                    for k, v in paths.items()}
    clip = np.random.default_rng(0).standard_normal((1, 8, 3, R50["input_size"], R50["input_size"])).astype(np.float32)
    feed = {sessions["tsi"].get_inputs()[0].name: clip}
    with torch.inference_mode():
        want = nets["tsi"](torch.from_numpy(clip)).numpy()  # both graphs against PyTorch: the rounding of each
    parity = {k: str(compare_logits(want, sessions[k].run(None, feed)[0])) for k in ("tsi", "blocks")}
    times = _alternate({"TSN-R50": lambda: sessions["tsn"].run(None, feed),
                        "TSI-R50, standard graph": lambda: sessions["tsi"].run(None, feed),
                        f"TSI-R50, blocks of {CHUNK_ROWS} query rows": lambda: sessions["blocks"].run(None, feed)},
                       rounds)
    return {"model_ms": times, "attentions_in_blocks": count, "parity_vs_pytorch": parity}


def report(args, command: str, rows: list[dict], model: dict[str, float] | None, loads: list,
           ort_model: dict | None = None) -> str:
    lines = ["# The saliency attention on a CPU: the C++ kernel against the forms it replaces", "",
             f"Command: `{command}`. Processor: {cpu_model()}, {cpus_usable()} usable CPUs, {args.threads} "
             f"thread(s); the kernel built for `-march={os.environ.get(ARCH_ENV) or 'native'}`. Load average (1, 5, 15 min) before {loads[0]}, after {loads[1]}."]
    note = load_note([x[0] for x in loads if x])
    if note:
        lines.append(f"Note: {note}.")
    lines += ["", f"## The attention alone ({PAIRS} frame pairs, TSI-R50's stages at 224²; median of "
              f"{args.calls} alternating calls)", "",
              "| positions L | head | implementation | median ms | vs onnxruntime MatMul form | max abs error vs float64 |",
              "|---|---|---|---|---|---|"]
    for r in rows:
        base = next(x["median_ms"] for x in rows if x["positions"] == r["positions"]
                    and x["impl"] == "onnxruntime MatMul-Softmax-MatMul")
        lines.append(f"| {r['positions']} | {r['head']} | {r['impl']} | {r['median_ms']:.1f} | "
                     f"{base / r['median_ms']:.2f}x | {r['max_abs_error']:.1e} |")
    if model:
        tsn = model["TSN-R50"]
        lines += ["", f"## The whole model, PyTorch eager (224², T=8, batch 1, random weights; median of "
                  f"{args.rounds} alternating calls)", "", "| model | median ms | TSI/TSN throughput |", "|---|---|---|"]
        lines += [f"| {name} | {ms:.0f} | {tsn / ms:.2f} |" for name, ms in model.items()]
    if ort_model:
        times = ort_model["model_ms"]
        lines += ["", f"## The whole model, onnxruntime (the same models exported; {args.threads} thread(s); median "
                  f"of {args.rounds} alternating calls)", "",
                  f"The block form splits {ort_model['attentions_in_blocks']} attentions (those over more than "
                  f"{CHUNK_ROWS} positions). Logits against PyTorch's, one clip: the standard graph "
                  f"{ort_model['parity_vs_pytorch']['tsi']}; the block form {ort_model['parity_vs_pytorch']['blocks']}.", "",
                  "| model | median ms | TSI/TSN throughput |", "|---|---|---|"]
        lines += [f"| {name} | {ms:.0f} | {times['TSN-R50'] / ms:.2f} |" for name, ms in times.items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.cpu_attention", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1, help="threads of torch and onnxruntime (the kernel uses one)")
    p.add_argument("--calls", type=int, default=5, help="timed calls per attention implementation")
    p.add_argument("--rounds", type=int, default=3, help="timed calls per model")
    p.add_argument("--no-model", action="store_true", help="only the attention alone")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args(argv)
    if args.threads < 1 or args.calls < 1 or args.rounds < 1:
        p.error("--threads, --calls and --rounds must be >= 1")
    from runtime.kernels import cpu_attention

    if not cpu_attention.available():
        p.error(f"the CPU attention kernel is unavailable: {cpu_attention.unavailable_reason()}")
    import torch

    torch.set_num_threads(args.threads)
    arch = f"{ARCH_ENV}={os.environ[ARCH_ENV]} " if os.environ.get(ARCH_ENV) else ""  # rerunnable as written
    command = arch + "python -m benchmarks.cpu_attention " + " ".join(argv if argv is not None else sys.argv[1:])
    before = load_average()
    rows = attention_rows(args.threads, args.calls)
    model = None if args.no_model else model_rows(args.rounds)
    ort_model = None if args.no_model else ort_model_rows(args.rounds, args.threads)
    loads = [before, load_average()]
    atomic_write_text(args.out, report(args, command.strip(), rows, model, loads, ort_model))
    atomic_write_text(args.out.with_suffix(".json"), json.dumps(
        {"command": command.strip(), "cpu": cpu_model(), "threads": args.threads, "load": loads,
         "attention": rows, "model_ms": model, "onnxruntime_model": ort_model}, indent=1) + "\n")
    print(args.out.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
