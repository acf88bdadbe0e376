"""The project's FP16 graph (``calib.fp16``) against onnxruntime's float16 converter used alone.

    python -m benchmarks.fp16_converter [--onnx artifacts/demo/tsi_demo.onnx] [--videos 2]

Converts one FP32 graph (default: the demo graph ``tsi-build-engine`` writes) twice, keeping the same
nodes in float32 -- Softmax and the saliency attention's MatMul-Softmax-MatMul
(``export.plugin_graph.attention_node_names``):

- ``calib.fp16.convert_fp16(proto, keep_fp32_nodes=...)``: onnxruntime's converter, then the
  float32 -> float16 -> float32 Cast round trips it leaves between kept nodes removed;
- ``onnxruntime.transformers.float16.convert_float_to_float16(proto, keep_io_types=True,
  op_block_list=DEFAULT_OP_BLOCK_LIST + ["Softmax"], node_block_list=...)`` alone.

(``benchmarks/results/fp16_converter_handwritten.md``: the same comparison when ``calib.fp16`` was a
hand-written converter, before it became the first of these.)

and compares the graphs (nodes, Casts, Cast-to-Cast round trips, which nodes compute in float32,
float16 weights, the TensorRT compatibility check ``export.trt_check``) and their outputs in
onnxruntime against the FP32 graph: the logits, and the attention probabilities as the second
attention MatMul receives them, on random clips and on clips of freshly generated synthetic videos
(``tsi.data.synthetic``, a seed the demo model was not trained on). Writes a Markdown table.
"""

from __future__ import annotations

import argparse
import collections
import logging
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from runtime.common.files import atomic_write_text
from runtime.trt_version import TARGET_TRT

log = logging.getLogger("bench.fp16")
DEFAULT_ONNX = Path("artifacts") / "demo" / "tsi_demo.onnx"
DEFAULT_OUT = Path("benchmarks") / "results" / "fp16_converter.md"
FLOAT, FLOAT16 = 1, 10  # onnx.TensorProto


@dataclass
class Converted:
    name: str
    proto: object
    seconds: float
    stats: dict = field(default_factory=dict)
    logits: dict = field(default_factory=dict)


def _elem_types(proto) -> dict[str, int]:
    import onnx

    g = onnx.shape_inference.infer_shapes(proto).graph
    types = {vi.name: vi.type.tensor_type.elem_type for vi in list(g.value_info) + list(g.input) + list(g.output)}
    types.update({i.name: i.data_type for i in g.initializer})
    for n in g.node:
        for a in n.attribute:
            if n.op_type == "Constant" and a.name == "value":
                types[n.output[0]] = a.t.data_type
    return types


def graph_stats(proto, keep: set[str]) -> dict:
    """Counts a reader of the comparison needs; ``fp32_nodes`` = non-Cast nodes whose float tensors
    include float32 (computing in float32)."""
    import onnx_graphsurgeon as gs

    from export.trt_check import check_graph

    types = _elem_types(proto)
    graph = gs.import_onnx(proto)
    casts = [n for n in graph.nodes if n.op == "Cast"]
    round_trips = [n for n in casts if n.inputs[0].inputs and n.inputs[0].inputs[0].op == "Cast"]
    fp32 = sorted(n.name for n in graph.nodes if n.op != "Cast"
                  and FLOAT in {types.get(t.name) for t in n.inputs + n.outputs if t.name})
    floats = [i for i in proto.graph.initializer if i.data_type in (FLOAT, FLOAT16)]
    io = [types.get(v.name) for v in list(proto.graph.input) + list(proto.graph.output)]
    return {
        "nodes": len(proto.graph.node), "casts": len(casts), "round_trips": len(round_trips),
        "fp32_nodes": fp32, "fp32_ops": dict(collections.Counter(n.split("/")[-1].split("_")[0] for n in fp32)),
        "keep_kept": keep <= set(fp32),
        "fp16_weights": f"{sum(i.data_type == FLOAT16 for i in floats)} / {len(floats)}",
        "io_float32": all(t == FLOAT for t in io),
        "bytes": len(proto.SerializeToString()),
        "trt_check": [str(p) for p in check_graph(proto)] or "OK",
    }


def weights_differing(a, b) -> str:
    """How many initializers of ``b`` differ from ``a``'s (type or value), and in how many values."""
    from onnx import numpy_helper

    wa = {i.name: numpy_helper.to_array(i) for i in a.graph.initializer}
    wb = {i.name: numpy_helper.to_array(i) for i in b.graph.initializer}
    if set(wa) != set(wb):
        return "other initializers"
    diff = [int(np.count_nonzero(wa[k] != wb[k])) if wa[k].dtype == wb[k].dtype and wa[k].shape == wb[k].shape
            else wa[k].size for k in wa]
    return f"{sum(d > 0 for d in diff)} tensors, {sum(diff)} values"


def with_attention_probe(proto, fp32_proto, matmul_pv: str, softmax: str):
    """A copy of ``proto`` that also outputs the attention probabilities as MatMul ``matmul_pv``
    receives them (its input that comes from ``softmax`` in the FP32 graph)."""
    import onnx
    from onnx import helper

    ref = {n.name: n for n in fp32_proto.graph.node}
    sm_out = ref[softmax].output[0]
    k = list(ref[matmul_pv].input).index(sm_out)
    probe = onnx.ModelProto()
    probe.CopyFrom(proto)
    node = next(n for n in probe.graph.node if n.name == matmul_pv)
    probe.graph.output.append(helper.make_tensor_value_info(node.input[k], FLOAT, None))
    return probe


def run_probe(proto, clips: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from export.parity import ort_session

    sess = ort_session(proto)
    name = sess.get_inputs()[0].name
    logits, probs = [], []
    for i in range(len(clips)):
        out = sess.run(None, {name: clips[i:i + 1]})
        logits.append(out[0])
        probs.append(out[1].astype(np.float64))
    return np.concatenate(logits), np.concatenate(probs)


def synthetic_clips(card, videos_per_class: int, seed: int) -> np.ndarray:
    from calib.clips import load_calibration_clips
    from tsi.data.synthetic import generate

    with tempfile.TemporaryDirectory(prefix="tsi_fp16_bench_") as tmp:
        generate(tmp, train=0, val=videos_per_class, seed=seed, progress=False)
        return load_calibration_clips(Path(tmp) / "val", card, min_clips=1, recommended=0,
                                      progress=False).clips


def measure(args) -> dict:
    import onnx
    import onnx_graphsurgeon as gs
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    from calib.fp16 import convert_fp16
    from export.parity import compare_logits
    from export.onnx_export import get_card
    from export.plugin_graph import attention_node_names, find_attention

    fp32 = onnx.load(str(args.onnx))
    card = get_card(fp32, str(args.onnx))
    keep = attention_node_names(fp32)
    first = find_attention(gs.import_onnx(fp32))[0]

    def timed(fn):
        best, out = float("inf"), None
        for _ in range(3):
            t = time.perf_counter()
            out = fn()
            best = min(best, time.perf_counter() - t)
        return out, best

    converters = {
        "calib.fp16": lambda: convert_fp16(fp32, keep_fp32_nodes=keep),
        "onnxruntime alone": lambda: convert_float_to_float16(
            fp32, keep_io_types=True, op_block_list=DEFAULT_OP_BLOCK_LIST + ["Softmax"], node_block_list=keep),
    }
    results = [Converted(name, *timed(fn)) for name, fn in converters.items()]

    clip_sets = {f"{args.random} random clips": np.random.default_rng(0).standard_normal(
        (args.random, *card.input_shape)).astype(np.float32)}
    if args.videos:
        real = synthetic_clips(card, args.videos, args.seed)
        clip_sets[f"{len(real)} synthetic-video clips (seed {args.seed})"] = real
    reference = {k: run_probe(with_attention_probe(fp32, fp32, first.matmul_pv, first.softmax), x)
                 for k, x in clip_sets.items()}
    for r in results:
        r.stats = graph_stats(r.proto, set(keep))
        probe = with_attention_probe(r.proto, fp32, first.matmul_pv, first.softmax)
        for k, x in clip_sets.items():
            logits, probs = run_probe(probe, x)
            ref_logits, ref_probs = reference[k]
            r.logits[k] = (compare_logits(ref_logits, logits), float(np.abs(probs - ref_probs).max()), logits)
    between = {(r.name, k): compare_logits(results[0].logits[k][2], r.logits[k][2])
               for r in results[1:] for k in clip_sets}
    return {"results": results, "keep": keep, "between": between, "first": first, "card": card,
            "nodes_fp32": len(fp32.graph.node), "sets": list(clip_sets)}


def to_markdown(m: dict, args) -> str:
    res = m["results"]
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    card = m["card"]

    def row(label, fn):
        return f"| {label} | " + " | ".join(str(fn(r)) for r in res) + " |"

    rows = [
        row(f"nodes (FP32 graph: {m['nodes_fp32']})", lambda r: r.stats["nodes"]),
        row("Cast nodes", lambda r: r.stats["casts"]),
        row("Casts fed by a Cast (float32 -> float16 -> float32 round trips)", lambda r: r.stats["round_trips"]),
        row("nodes computing in float32", lambda r: len(r.stats["fp32_nodes"])),
        row(f"same float32 nodes as `{res[0].name}`", lambda r: r.stats["fp32_nodes"] == res[0].stats["fp32_nodes"]),
        row(f"the {len(m['keep'])} kept nodes are float32", lambda r: r.stats["keep_kept"]),
        row("float16 weights / float weights", lambda r: r.stats["fp16_weights"]),
        row(f"weights differing from `{res[0].name}`'s", lambda r: weights_differing(res[0].proto, r.proto)),
        row("graph input and output float32", lambda r: r.stats["io_float32"]),
        row("serialised size (MB)", lambda r: f"{r.stats['bytes'] / 1e6:.2f}"),
        row("conversion time, best of 3 (s)", lambda r: f"{r.seconds:.2f}"),
        row(f"TensorRT {TARGET_TRT} compatibility check (`export.trt_check`)", lambda r: r.stats["trt_check"]),
    ]
    for k in m["sets"]:
        rows.append(row(f"logits vs FP32, {k}: max abs (fraction of the logit range), top-1 agreement",
                        lambda r: f"{r.logits[k][0].max_abs:.2e} ({r.logits[k][0].rel:.1e}), "
                                  f"{100 * r.logits[k][0].top1:.0f}%"))
        rows.append(row(f"first attention's probabilities, as its second MatMul reads them, vs FP32, {k}: "
                        "max abs", lambda r: f"{r.logits[k][1]:.2e}"))
    lines = [
        "# FP16 graph: `calib.fp16` vs onnxruntime's float16 converter alone",
        "",
        f"Graph `{args.onnx}` ({card.arch}, T={card.frames}, {card.input_size}², {card.num_classes} classes; "
        "the demo graph is written by `python export/build_engine.py --fp16`). "
        f"Every converter keeps Softmax and the {len(m['keep'])} saliency-attention nodes "
        "(`export.plugin_graph.attention_node_names`) in float32 with float32 graph I/O; onnxruntime's "
        "`onnxruntime.transformers.float16.convert_float_to_float16` is called with `keep_io_types=True, "
        "op_block_list=DEFAULT_OP_BLOCK_LIST + ['Softmax'], node_block_list=<those nodes>`. Outputs "
        "from onnxruntime's CPU provider; the FP16 graphs are meant for TensorRT, so these "
        "differences measure the graphs' rounding, not an engine's.",
        "",
        "| | " + " | ".join(f"`{r.name}`" for r in res) + " |",
        "|---|" + "---|" * len(res),
        *rows,
        "",
        "`calib.fp16` is onnxruntime's converter with the float32 -> float16 -> float32 Cast round "
        "trips it leaves between two float32 nodes removed (MatMul -> Softmax -> MatMul of the "
        "attention: without the removal its scores and probabilities are rounded to float16 after all).",
        "",
        f"Logits between the graphs, against `{res[0].name}`: "
        + "; ".join(f"`{name}` on {k}: max abs {e.max_abs:.2e}, top-1 agreement {100 * e.top1:.0f}%"
                    for (name, k), e in m["between"].items()) + ".",
        "",
        f"Command: `{' '.join(['python -m benchmarks.fp16_converter', *(sys.argv[1:] if args.cli else ['...'])])}` "
        f"(load average {load} on a shared 2-core CPU while measuring: the times are indicative).",
        "",
    ]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--onnx", type=Path, default=DEFAULT_ONNX,
                   help="an FP32 graph written by tsi-build-engine (%(default)s)")
    p.add_argument("--random", type=int, default=4, help="random clips (%(default)s)")
    p.add_argument("--videos", type=int, default=2,
                   help="synthetic videos per class to generate and compare on; 0: none (%(default)s)")
    p.add_argument("--seed", type=int, default=7, help="synthetic video seed (%(default)s)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="Markdown table (%(default)s)")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.cli = argv is None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.onnx.is_file():
        parser.error(f"--onnx {args.onnx}: no such file (write it with tsi-build-engine)")
    if args.random < 1 or args.videos < 0:
        parser.error("--random must be >= 1 and --videos >= 0")
    text = to_markdown(measure(args), args)
    atomic_write_text(args.out, text)
    print(text)
    log.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
