"""Online (streaming step of a causal model) vs sliding window (clip model): cost per output.

    python -m benchmarks.online [--model tsi_r18 --base-width 32 --size 64 --frames 8 --span 32]
                                [--macs-only-model tsi_r50 --macs-only-size 224] [--repeats 50]

At the same output rate (one output per sampled frame) the sliding window runs the T-frame clip
model once per output; the online model runs one step (one frame through the backbone, the state
carried). Writes ``benchmarks/results/online.md`` with, per output:

- MACs (``tsi.info.count_macs``: conv+fc, and the saliency-attention matmuls) of the clip model and
  of one step, for the latency geometry and for ``--macs-only-*`` (default TSI-R50, 224², T=8);
- onnxruntime CPU latency of the exported graphs (clip: ``export.onnx_export``; step:
  ``export.stream_export``), median and p90 over ``--repeats`` runs, the two interleaved run by run
  so that load from other processes hits both alike; random weights (cost does not depend on them);
- the runtime end to end on a 30 fps video file (written here with OpenCV, ``--seconds`` long): the
  online runtime at stride 1 (``runtime.online``, frame_step interleaved phases, one step per
  frame) against the sliding window at stride 1 (``runtime.window`` + the clip graph per frame):
  frames processed per second, decode + preprocess + inference included.

The machine's load average (``os.getloadavg``) is recorded before and after: on a shared CPU the
absolute times are this run's only; the online/window ratios are the figures to read.
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

from runtime.card import atomic_write_text

log = logging.getLogger("bench.online")
DEFAULT_OUT = Path("benchmarks") / "results" / "online.md"


def build(name: str, base_width: int, size: int, frames: int, classes: int, causal: bool):
    import torch

    from tsi.model import create_model

    torch.manual_seed(0)
    return create_model(name, causal=causal, frames=frames, num_classes=classes, input_size=size,
                        base_width=base_width, attention="matmul").eval()


def macs_per_output(name: str, base_width: int, size: int, frames: int, classes: int) -> dict:
    import torch

    from tsi.info import count_macs
    from tsi.streaming import StreamingTSI

    clip_model = build(name, base_width, size, frames, classes, causal=False)
    step_model = StreamingTSI(build(name, base_width, size, frames, classes, causal=True))
    clip = count_macs(clip_model, torch.zeros(1, frames, 3, size, size))
    step = count_macs(step_model.step, torch.zeros(1, 3, size, size), step_model.zero_state(1))
    return {"clip": clip, "step": step}


def _session(path: Path, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def export_pair(args, tmp: Path, name: str, width: int, size: int) -> tuple[Path, Path, object]:
    """(clip graph, step graph, card) of random-weight models of one geometry."""
    from export.friendly import fold_batchnorms
    from export.onnx_export import export_onnx
    from export.stream_export import export_step_onnx
    from tsi.checkpoint import make_card

    labels = [f"c{i}" for i in range(args.classes)]
    paths = []
    for causal, fn in ((False, export_onnx), (True, export_step_onnx)):
        model = build(name, width, size, args.frames, args.classes, causal)
        fold_batchnorms(model)
        card = make_card(model.cfg, labels, span_frames=args.span)
        stem = f"{name}_{width}_{size}_{'step' if causal else 'clip'}"
        paths.append(fn(model, card, tmp / f"{stem}.onnx", source_sha256="benchmark"))
    return paths[0], paths[1], card


def latency(clip_path: Path, step_path: Path, card, threads: int, repeats: int) -> dict:
    from runtime.online import OnlineStep

    rng = np.random.default_rng(0)
    clip_sess = _session(clip_path, threads)
    clip = rng.standard_normal((1, *card.input_shape)).astype(np.float32)
    step = OnlineStep(step_path, threads=threads)
    state = step.zero_state()
    frame = rng.standard_normal((3, card.input_size, card.input_size)).astype(np.float32)
    name = clip_sess.get_inputs()[0].name
    times = {"window": [], "online": []}
    for i in range(repeats + 3):
        t0 = time.perf_counter()
        clip_sess.run(None, {name: clip})
        t1 = time.perf_counter()
        _, state = step.run(frame, state)
        t2 = time.perf_counter()
        if i >= 3:  # warm-up
            times["window"].append((t1 - t0) * 1e3)
            times["online"].append((t2 - t1) * 1e3)
    return {k: (float(np.median(v)), float(np.percentile(v, 90))) for k, v in times.items()} | {
        "state_kib": step.state_bytes / 1024}


def write_video(path: Path, seconds: float, fps: float = 30.0, size=(320, 240)) -> int:
    import cv2

    n = int(round(seconds * fps))
    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    if not writer.isOpened():
        raise SystemExit(f"error: OpenCV cannot write {path}")
    rng = np.random.default_rng(0)
    for t in range(n):
        f = np.full((h, w, 3), 40, np.uint8)
        x = int(20 + (w - 80) * (t % 60) / 60)
        cv2.rectangle(f, (x, 80), (x + 60, 160), (200, 120, 40), -1)
        f += rng.integers(0, 20, f.shape, dtype=np.uint8)
        writer.write(f)
    writer.release()
    return n


def runtime_fps(video: Path, clip_path: Path, step_path: Path, threads: int) -> dict:
    """Frames per second through decode + preprocess + inference, stride 1, both runtimes."""
    import cv2

    from runtime.backends.onnxruntime_backend import OnnxRuntimeBackend
    from runtime.online import OnlineRecognizer, OnlineStep
    from runtime.window import ClipWindow

    out = {}
    step = OnlineStep(step_path, threads=threads)
    online = OnlineRecognizer(step, stride=1)
    backend = OnnxRuntimeBackend(providers=["cpu"], threads=threads).load(clip_path)
    window = ClipWindow(backend.card, stride=1)
    for kind in ("online", "window"):
        cap = cv2.VideoCapture(str(video))
        n = inferences = 0
        t0 = time.perf_counter()
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            if kind == "online":
                online.push(frame, n)
            elif window.push(frame, n):
                backend.infer(window.clip())
                inferences += 1
            n += 1
        dt = time.perf_counter() - t0
        cap.release()
        out[kind] = {"frames": n, "seconds": dt, "fps": n / dt,
                     "inferences": online.inferences if kind == "online" else inferences}
    return out


def to_markdown(r: dict, args, argv: list[str]) -> str:
    g = lambda v: f"{v / 1e9:.3f}"  # noqa: E731
    lines = [
        "# Online vs sliding window: cost per output",
        "",
        f"Written by `{' '.join(['python -m benchmarks.online', *argv])}`.",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, {platform.python_version()}, "
        f"onnxruntime {r['ort']}; load average (1/5/15 min) before {r['load_before']}, after {r['load_after']}"
        " — the CPU was shared with other processes during the run: absolute times are this run's "
        "only, the ratios are the figures to read.",
        "",
        "## MACs per output (one output per sampled frame)",
        "",
        "Sliding window: the T-frame clip model once per output. Online: one step of the causal model.",
        "",
        "| model | input | T | window GMACs conv+fc | +attention | online GMACs conv+fc | +attention | window / online |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m in r["macs"]:
        (cc, ca), (sc, sa) = m["clip"], m["step"]
        lines.append(f"| {m['model']} (base width {m['base_width']}) | {m['size']}² | {m['frames']} | {g(cc)} | "
                     f"{g(cc + ca)} | {g(sc)} | {g(sc + sa)} | {(cc + ca) / (sc + sa):.2f}× |")
    lines += [
        "",
        f"## onnxruntime CPU latency per output ({args.threads} thread(s), batch 1, T={args.frames}; "
        "clip and step runs interleaved)",
        "",
        "| model | input | runs | window (clip graph) median / p90 ms | online (step graph) median / p90 ms "
        "| window / online (median) | online state per stream |",
        "|---|---|---|---|---|---|---|",
    ]
    for lat in r["latency"]:
        w, o = lat["window"], lat["online"]
        lines.append(f"| {lat['model']} (base width {lat['base_width']}) | {lat['size']}² | {lat['runs']} | "
                     f"{w[0]:.2f} / {w[1]:.2f} | {o[0]:.2f} / {o[1]:.2f} | {w[0] / o[0]:.2f}× | "
                     f"{lat['state_kib']:.1f} KiB |")
    if r.get("fps"):
        f = r["fps"]
        lines += [
            "",
            f"## The runtime on a 30 fps file at stride 1 ({args.model}, base width {args.base_width}, {args.size}²; "
            f"{f['online']['frames']} frames, 320×240, "
            f"span {args.span} → frame step {args.span // args.frames})",
            "",
            "Decode (OpenCV) + preprocessing + inference, one output per source frame.",
            "",
            "| runtime | frames/s | real time (30 fps)? | inferences |",
            "|---|---|---|---|",
        ]
        for kind, label in (("online", "online (`runtime.online`, one step per frame)"),
                            ("window", "sliding window (`runtime.window`, one clip per frame)")):
            v = f[kind]
            lines.append(f"| {label} | {v['fps']:.1f} | {'yes' if v['fps'] >= 30 else 'no'} | {v['inferences']} |")
    return "\n".join(lines) + "\n"


def run(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m benchmarks.online", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="tsi_r18")
    p.add_argument("--base-width", type=int, default=32, help="32: the demo model's width")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--span", type=int, default=32, help="window span in source frames (frame step = span / T)")
    p.add_argument("--classes", type=int, default=11)
    p.add_argument("--macs-only-model", default="tsi_r50")
    p.add_argument("--macs-only-size", type=int, default=224)
    p.add_argument("--macs-only-width", type=int, default=64)
    p.add_argument("--repeats", type=int, default=50)
    p.add_argument("--large-repeats", type=int, default=5,
                   help="latency runs of the --macs-only-* geometry too (0: MACs only)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seconds", type=float, default=10.0, help="length of the 30 fps test video (0: skip)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import onnxruntime

    r: dict = {"ort": onnxruntime.__version__, "load_before": "/".join(f"{v:.1f}" for v in os.getloadavg())}
    r["macs"] = []
    geoms = [(args.model, args.base_width, args.size)]
    if args.macs_only_model:
        geoms.append((args.macs_only_model, args.macs_only_width, args.macs_only_size))
    for name, width, size in geoms:
        log.info("counting MACs: %s width %d at %d²", name, width, size)
        m = macs_per_output(name, width, size, args.frames, args.classes)
        r["macs"].append({"model": name, "base_width": width, "size": size, "frames": args.frames, **m})
    r["latency"] = []
    with tempfile.TemporaryDirectory(prefix="bench_online_") as tmp:
        tmp = Path(tmp)
        for (name, width, size), runs in zip(geoms, (args.repeats, args.large_repeats)):
            if runs <= 0:
                continue
            log.info("latency %s width %d at %d²: exporting, then %d interleaved runs", name, width, size, runs)
            c_path, s_path, card = export_pair(args, tmp, name, width, size)
            r["latency"].append({"model": name, "base_width": width, "size": size, "runs": runs,
                                 **latency(c_path, s_path, card, args.threads, runs)})
            if (name, width, size) == geoms[0]:
                clip_path, step_path = c_path, s_path
        if args.seconds > 0:
            video = tmp / "video.mp4"
            write_video(video, args.seconds)
            log.info("runtime on a %.0f s 30 fps video, stride 1", args.seconds)
            r["fps"] = runtime_fps(video, clip_path, step_path, args.threads)
    r["load_after"] = "/".join(f"{v:.1f}" for v in os.getloadavg())
    text = to_markdown(r, args, list(argv) if argv is not None else sys.argv[1:])
    atomic_write_text(args.out, text)
    print(text)
    return r


def main(argv: list[str] | None = None) -> int:
    run(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
