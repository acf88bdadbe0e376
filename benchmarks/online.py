"""Online (streaming step of a causal model) vs sliding window (clip model): cost per output.

    python -m benchmarks.online [--model M --base-width W --size S --frames T --span N]  # default: the demo model's
                                [--macs-only-model tsi_r50 --macs-only-size 224] [--repeats 50]

At the same output rate (one output per sampled frame) the sliding window runs the T-frame clip
model once per output; the online model runs one step (one frame through the backbone, the state
carried). Writes ``benchmarks/results/online.md`` with, per output:

- MACs (``tsi.info.count_macs``: conv+fc, and the saliency-attention matmuls) of the clip model and
  of one step, for the latency geometry and for ``--macs-only-*`` (default TSI-R50, 224², T=8);
- onnxruntime CPU latency of the exported graphs (clip: ``export.onnx_export``; step:
  ``export.stream_export``), median and p90 over ``--repeats`` runs, the two interleaved run by run
  so that load from other processes hits both alike; random weights (cost does not depend on them);
- the runtime end to end on a 30 fps video file (written here with OpenCV, ``--seconds`` long):
  ``runtime.live.run_live`` (what ``tsi-live`` runs) at stride 1 with the step graph (online:
  frame_step interleaved phases, one step per frame) and with the clip graph (the sliding window,
  one clip per frame): frames per second with every frame processed, and the frames dropped when
  the file is played at its 30 fps.

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

from benchmarks.common.demo_geometry import demo_card, demo_config
from benchmarks.common.machine import cpus_usable, load_note
from runtime.common.files import atomic_write_text

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

    from runtime.backends.onnxruntime_backend import session_options

    return ort.InferenceSession(str(path), session_options(threads), providers=["CPUExecutionProvider"])


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
    from runtime.backends.onnxruntime_step import OnnxRuntimeStep

    rng = np.random.default_rng(0)
    clip_sess = _session(clip_path, threads)
    clip = rng.standard_normal((1, *card.input_shape)).astype(np.float32)
    step = OnnxRuntimeStep(step_path, threads=threads)
    state = step.new_state()
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
    """The live runtime itself (``runtime.live.run_live``, what ``tsi-live`` runs: capture thread,
    preprocessing, inference, smoothing, events) on the file at stride 1, for the step graph (the
    card's mode picks the online path) and the clip graph: once with every frame processed
    (``--no-realtime``: throughput) and once played at the file's 30 fps (``--realtime``: frames the
    runtime could not keep up with are dropped by the capture)."""
    from runtime.live import LiveOptions, run_live

    out = {}
    for kind, model in (("online", step_path), ("window", clip_path)):
        out[kind] = {}
        for mode, realtime in (("every_frame", False), ("realtime", True)):
            (s,) = run_live(LiveOptions(model=str(model), sources=(str(video),), headless=True, realtime=realtime,
                                        stride=1, threads=threads, providers=["cpu"]))
            if s.error:
                raise SystemExit(f"error: the {kind} runtime failed on {video}: {s.error}")
            lat = s.latency_ms
            out[kind][mode] = {"frames": s.frames, "wall_s": s.wall_s, "fps": s.fps, "inferences": s.inferences,
                               "read": s.capture["read"], "dropped": s.capture["dropped"],
                               "inference_p50_ms": lat["inference"]["p50_ms"],
                               "end_to_end_p95_ms": lat["end_to_end"]["p95_ms"]}
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
        + (f" — {note}." if (note := load_note([float(r[k].split('/')[0]) for k in ('load_before', 'load_after')]))
           else f" — at most {cpus_usable()} (the usable CPUs) before and after: a quiet machine."),
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
            f"{f['online']['every_frame']['frames']} frames, 320×240, "
            f"span {args.span} → frame step {args.span // args.frames})",
            "",
            "`runtime.live.run_live` (what `tsi-live` runs: capture thread, OpenCV decode, preprocessing, "
            "inference, smoothing, events), stride 1: one output per source frame. *Every frame*: "
            "`--no-realtime`, nothing dropped, frames/s is the throughput. *Played at 30 fps*: `--realtime`, "
            "the capture drops the frames the runtime cannot keep up with.",
            "",
            "| runtime | every frame: frames/s | inferences | inference p50 ms | played at 30 fps: frames dropped | "
            "end-to-end p95 ms | real time? |",
            "|---|---|---|---|---|---|---|",
        ]
        for kind, label in (("online", "online (step graph; one step per frame)"),
                            ("window", "sliding window (clip graph; one clip per frame)")):
            e, rt = f[kind]["every_frame"], f[kind]["realtime"]
            lines.append(f"| {label} | {e['fps']:.1f} | {e['inferences']} | {e['inference_p50_ms']:.2f} | "
                         f"{rt['dropped']} of {rt['read']} | {rt['end_to_end_p95_ms']:.1f} | "
                         f"{'yes' if rt['dropped'] == 0 and e['fps'] >= 30 else 'no'} |")
    return "\n".join(lines) + "\n"


def run(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m benchmarks.online", description=__doc__.split("\n\n")[0])
    demo, demo_cfg = demo_card(), demo_config()  # the latency geometry defaults to the demo model's
    p.add_argument("--model", default=demo.arch, help="(the demo model's: %(default)s)")
    p.add_argument("--base-width", type=int, default=demo_cfg.base_width, help="(the demo model's: %(default)s)")
    p.add_argument("--size", type=int, default=demo.input_size, help="(the demo model's: %(default)s)")
    p.add_argument("--frames", type=int, default=demo.frames, help="(the demo model's: %(default)s)")
    p.add_argument("--span", type=int, default=demo.span_frames,
                   help="window span in source frames (frame step = span / T; the demo model's: %(default)s)")
    p.add_argument("--classes", type=int, default=demo.num_classes, help="(the demo model's: %(default)s)")
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
