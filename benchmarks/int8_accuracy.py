"""FP32 vs INT8 (Q/DQ) in onnxruntime: top-1 on real videos and CPU latency.

    python -m benchmarks.int8_accuracy --checkpoint tsi/assets/demo_tsi_r18.pt --data artifacts/synthetic/val \
        [--calib artifacts/synthetic/train] [--calib-method entropy] [--calib-clips 256]

Exports the checkpoint (``export.onnx_export``), calibrates on ``--calib`` (default: the ``train``
split beside ``--data``) with the runtime's preprocessing (``calib.clips``), quantizes
(``calib.qdq``), then runs both graphs on one centre clip per video of ``--data/<class>/*`` and
writes ``benchmarks/results/int8_accuracy.md``: top-1 of each against the folder labels, FP32/INT8
top-1 agreement, and the batch-1 CPU latency (median and p90 over ``--repeats`` runs) of each graph
in onnxruntime. onnxruntime's CPU INT8 kernels are not TensorRT's: the accuracy column predicts a
TensorRT INT8 engine built from the same Q/DQ graph; the latency column is this CPU's only.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path


import numpy as np

from calib.clips import DEFAULT_MAX_CLIPS
from benchmarks.common.val_clips import val_clips
from calib.ranges import DEFAULT_METHOD, METHODS
from runtime.common.files import atomic_write_text

log = logging.getLogger("bench.int8")
DEFAULT_OUT = Path("benchmarks") / "results" / "int8_accuracy.md"


def latency_ms(model, clip: np.ndarray, repeats: int) -> tuple[float, float]:
    from export.parity import ort_session

    sess = ort_session(model)
    name = sess.get_inputs()[0].name
    for _ in range(3):
        sess.run(None, {name: clip})
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        sess.run(None, {name: clip})
        times.append(1000 * (time.perf_counter() - t0))
    return float(np.median(times)), float(np.percentile(times, 90))


def torch_parity(checkpoint: Path, x: np.ndarray, ort_logits: np.ndarray) -> dict:
    """The checkpoint as trained (PyTorch, BN unfolded) vs the FP32 ONNX on the same clips."""
    import torch

    from tsi.checkpoint import load_model

    model, _ = load_model(checkpoint)
    with torch.no_grad():
        ref = torch.cat([model(torch.from_numpy(x[i:i + 16])) for i in range(0, len(x), 16)]).numpy()
    err = float(np.abs(ref - ort_logits).max())
    span = float(ref.max() - ref.min())
    return {"max_abs": err, "rel_range": err / span, "agree": float(np.mean(ref.argmax(1) == ort_logits.argmax(1)))}


def measure(args) -> dict:
    import onnx
    import onnxruntime

    from calib.clips import load_calibration_clips
    from export.friendly import export_friendly_model
    from export.names import precision_graph, standard_beside
    from export.onnx_export import export_onnx
    from export.parity import run_onnx
    from export.variants import int8_qdq_graph, write_graph
    from runtime.common.files import file_sha256

    calib = args.calib or (args.data.parent / "train" if args.data.name in ("val", "validation") else None)
    if calib is None and args.built is None:
        raise SystemExit("error: pass --calib (no train split beside --data)")
    with tempfile.TemporaryDirectory(prefix="tsi_int8_bench_") as tmp:
        if args.built is not None:  # the graphs a tsi-build-engine run wrote: <name>.onnx, <name>.int8.qdq.onnx
            from export.onnx_export import read_card_from_onnx

            int8 = args.built
            fp32 = standard_beside(int8)
            if not (int8.name.endswith(precision_graph("", "int8")) and int8.is_file() and fp32.is_file()):
                raise SystemExit(f"error: --built {int8}: expected <name>.int8.qdq.onnx with <name>.onnx beside it")
            card = read_card_from_onnx(fp32)
            chosen = read_card_from_onnx(int8).quantization
            calib, n_calib = f"{int8.parent} (the build's own)", "the build's"
            method = f"the build's ({chosen['method']})" if chosen else "the build's"
        else:
            model, card = export_friendly_model(args.checkpoint)
            fp32 = export_onnx(model, card, Path(tmp) / "fp32.onnx", source_sha256=file_sha256(args.checkpoint))
            cs = load_calibration_clips(calib, card, max_clips=args.calib_clips, min_clips=args.min_calib_clips)
            int8 = write_graph(int8_qdq_graph(fp32, cs.clips, args.calib_method), Path(tmp) / "int8.onnx",
                               card.replace(precision="int8"))
            n_calib, method = len(cs), args.calib_method
        n_qdq = sum(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in onnx.load(str(int8)).graph.node)
        x, y, skipped = val_clips(args.data, card, args.max_videos)
        logits32 = run_onnx(fp32, x)
        p32, p8 = logits32.argmax(1), run_onnx(int8, x).argmax(1)
        parity = torch_parity(args.checkpoint, x, logits32)
        load_before = os.getloadavg()
        lat32, lat8 = latency_ms(fp32, x[:1], args.repeats), latency_ms(int8, x[:1], args.repeats)
        load = (load_before, os.getloadavg())
        sizes = (fp32.stat().st_size, int8.stat().st_size)
        chosen = read_card_from_onnx(int8).quantization if args.built is not None else {}
    return {"chosen": chosen, "card": card, "calib": calib, "calib_clips": n_calib, "method": method, "n": len(y), "n_qdq": n_qdq,
            "skipped": skipped, "top1": (float(np.mean(p32 == y)), float(np.mean(p8 == y))),
            "agree": float(np.mean(p32 == p8)), "parity": parity, "lat": (lat32, lat8), "sizes": sizes,
            "ort": onnxruntime.__version__, "threads": os.cpu_count(), "load": load}


def to_markdown(r: dict, args) -> str:
    card = r["card"]
    rows = [("FP32", r["top1"][0], "-", r["lat"][0], r["sizes"][0]),
            ("INT8 Q/DQ", r["top1"][1], f"{100 * r['agree']:.1f}%", r["lat"][1], r["sizes"][1])]
    lines = [
        "# INT8 (Q/DQ) vs FP32 in onnxruntime",
        "",
        f"Model `{args.checkpoint}` ({card.arch}, T={card.frames}, {card.input_size}², {card.num_classes} classes); "
        f"validation `{args.data}`: {r['n']} videos, one centre clip each"
        + (f" ({r['skipped']} unreadable skipped)" if r["skipped"] else "") + ".",
        f"Calibration: {r['calib_clips']} clips of `{r['calib']}`, {r['method']} ranges; "
        f"QDQ ({r['n_qdq']} Q/DQ nodes, placed by TensorRT's rules: weighted layers' inputs, residual Adds' "
        "identity), symmetric int8, per-channel weights, attention (MatMul-Softmax-MatMul) left in float.",
        "",
        "| graph | top-1 | top-1 agreement with FP32 | CPU latency, batch 1 (median / p90 ms) | ONNX size |",
        "|---|---|---|---|---|",
    ]
    for name, top1, agree, (med, p90), size in rows:
        lines.append(f"| {name} | {100 * top1:.1f}% | {agree} | {med:.1f} / {p90:.1f} | {size / 2**20:.1f} MB |")
    if r.get("chosen"):
        q = r["chosen"]
        lines += ["", f"What the builder chose (the Q/DQ graph's card): {q['method']}"
                  + (f" with {len(q['float_layers'])} layer(s) in float ({', '.join(q['float_layers'])})"
                     if q["float_layers"] else "")
                  + f"; on its {q['held_out_clips']} held-out calibration clips (calibrated on the other "
                  f"{q['calibration_clips']}): top-1 agreement {100 * q['top1_agreement']:.1f}%, logit error "
                  f"{q['logit_error']:.3f}, {'within' if q['within_bound'] else 'OUTSIDE'} the bound "
                  f"(agreement >= {100 * q['min_agreement']:g}%, logit error <= {q['max_logit_error']:g})."]
    pa = r["parity"]
    lines += [
        "",
        f"FP32 ONNX vs the PyTorch checkpoint on the same {r['n']} clips: max abs logit error "
        f"{pa['max_abs']:.2e} = {pa['rel_range']:.2e} of the logit range, top-1 agreement {100 * pa['agree']:.1f}%.",
        "",
        f"Latency: onnxruntime {r['ort']} CPUExecutionProvider, {args.repeats} runs after 3 warm-up runs, "
        f"{platform.machine()} `{platform.processor() or platform.platform()}`, {r['threads']} logical CPUs, "
        f"1-minute load average {r['load'][0][0]:.1f} before and {r['load'][1][0]:.1f} after the timing runs "
        "(other processes share the CPUs when it is above the CPU count). "
        "onnxruntime's CPU kernels are not TensorRT's: the INT8 top-1 predicts a TensorRT INT8 engine "
        "built from this Q/DQ graph; the latencies describe this CPU only.",
        "",
        f"Command: `python -m benchmarks.int8_accuracy {' '.join(sys.argv[1:]) if args.cli else '...'}`",
        "",
    ]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--data", type=Path, required=True, help="validation split: <data>/<class>/<video>")
    p.add_argument("--calib", type=Path, help="calibration videos (default: <data>/../train)")
    p.add_argument("--built", type=Path, metavar="QDQ_ONNX",
                   help="evaluate the <name>.int8.qdq.onnx a tsi-build-engine run wrote (and its <name>.onnx) "
                        "instead of calibrating here")
    p.add_argument("--calib-method", choices=METHODS, default=DEFAULT_METHOD)
    p.add_argument("--calib-clips", type=int, default=DEFAULT_MAX_CLIPS)
    p.add_argument("--min-calib-clips", type=int, default=8)
    p.add_argument("--max-videos", type=int, help="evaluate at most N videos (evenly spread)")
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    return p


def run(argv: list[str] | None = None) -> dict:
    """The CLI's work, returning its result (``main`` is the console script: exit code 0)."""
    args = build_parser().parse_args(argv)
    args.cli = argv is None
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    r = measure(args)
    text = to_markdown(r, args)
    atomic_write_text(args.out, text)
    log.info("wrote %s\n%s", args.out, text)
    return r


def main(argv: list[str] | None = None) -> int:
    run(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
