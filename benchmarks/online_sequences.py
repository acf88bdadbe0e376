"""Trained models in the live runtime on continuous videos: actions recognised, online vs sliding window.

    python -m benchmarks.online_sequences --runs artifacts/bench_online/seed0 \
        --archs tsi_r18-causal tsm_r18-causal tsi_r18 tsm_r18 [--sequences 4] [--seed 0]

The clip benchmark (``benchmarks.synthetic_motion``) scores a causal model on T frames from the zero
state: its online output at the first moment it has one. A live stream is the other case: the state
has seen everything before, and actions follow each other. This benchmark writes ``--sequences``
continuous videos of all 11 synthetic actions in a seeded random order (``write_sequence_video``: one
background, a continuing camera path, 48 frames an action), exports each run's ``last.pt`` (a causal
one as its step graph, ``export.stream_export``; an offline one as its clip graph,
``export.onnx_export``), runs ``runtime.live.run_live`` on every video (``--no-realtime``; the
default stride: 4 for the window, the frame step for the online model, which is 4 at span 32 and
T = 8, so both score every 4 frames) and matches the events with the ground truth as ``tsi-events``
does (``runtime.events.match_segments``, lag half the span). Writes
``benchmarks/results/online_sequences.md`` (and ``.json``).
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import tempfile
from pathlib import Path

import numpy as np

from runtime.common.files import atomic_write_text

log = logging.getLogger("bench.online_sequences")

DEFAULT_OUT = Path("benchmarks/results/online_sequences.md")


def export_run(checkpoint: Path, out: Path, name: str):
    """(graph, card) the live runtime runs for this checkpoint: the step graph of a causal model,
    the clip graph of an offline one."""
    from export.friendly import export_friendly_model
    from export.onnx_export import export_onnx
    from export.stream_export import export_online
    from runtime.card import ModelCard
    from runtime.common.files import file_sha256
    from tsi.checkpoint import load_checkpoint

    if load_checkpoint(checkpoint)["config"].get("causal"):  # each export loads the model itself
        written = export_online(checkpoint, out, name)
        return written["fp32"], ModelCard.load(written["card"])
    model, card = export_friendly_model(checkpoint)
    return export_onnx(model, card, out / f"{name}.onnx", source_sha256=file_sha256(checkpoint)), card


def write_sequences(folder: Path, n: int, seed: int, frames: int) -> list[tuple[Path, list[dict]]]:
    from tsi.data.synthetic import CLASSES, write_sequence_video

    out = []
    for i in range(n):
        labels = list(np.random.default_rng([seed, i]).permutation(CLASSES))
        path = folder / f"sequence_{i}.mp4"
        out.append((path, write_sequence_video(path, labels, seed=seed * 1000 + i, frames_per_segment=frames)))
    return out


def run_model(model: Path, card, videos: list[tuple[Path, list[dict]]], folder: Path) -> dict:
    from runtime.events import match_segments, read_events
    from runtime.live import LiveOptions, run_live

    hits = total = events = unmatched = 0
    per_video, infer = [], []
    for video, segments in videos:
        jsonl = folder / f"{model.stem}_{video.stem}.jsonl"
        (summary,) = run_live(LiveOptions(model=str(model), sources=(str(video),), headless=True, realtime=False,
                                          out_jsonl=str(jsonl), providers=["cpu"], threads=1))
        if summary.error:
            raise SystemExit(f"error: {model.name} on {video.name}: {summary.error}")
        found = read_events(jsonl)
        lag = card.span_frames // 2
        matches = match_segments(found, segments, lag=lag)  # (segment, the matched event shifted by lag)
        used = {(ev["label"], ev["start_frame"]) for _, ev in matches if ev is not None}
        n_hits = sum(ev is not None for _, ev in matches)
        hits, total, events = hits + n_hits, total + len(matches), events + len(found)
        unmatched += sum((ev["label"], ev["start_frame"] - lag) not in used for ev in found)
        per_video.append(n_hits)
        infer.append(summary.latency_ms["inference"]["p50_ms"])
    return {"mode": card.mode, "recognised": hits, "segments": total, "events": events,
            "unmatched_events": unmatched, "per_video": per_video,
            "inference_p50_ms": float(np.median(infer)), "inferences_per_video": summary.inferences}


def to_markdown(rows: list[dict], args, argv: list[str]) -> str:
    lines = [
        "# Trained models in the live runtime on continuous videos",
        "",
        f"Written by `python -m benchmarks.online_sequences {shlex.join(argv)}`.",
        "",
        f"{args.sequences} videos of the 11 synthetic actions in a seeded random order, {args.frames} frames an action "
        "(one background, a continuing camera path; `tsi.data.synthetic.write_sequence_video`); each run's "
        f"`last.pt` from `{args.runs}` (the runs of `benchmarks/results/online_accuracy.md`), exported and run by "
        "`runtime.live.run_live` with its defaults (`--no-realtime`, onnxruntime CPU, 1 thread; a score every 4 "
        "frames for both modes, EMA smoothing, threshold 0.5). A segment is recognised when an event of its label "
        "overlaps it by at least half of the event (`runtime.events.match_segments`, lag half the span); an "
        "unmatched event is one that recognised no segment (a wrong label, or a second event of one action).",
        "",
        "| run | runtime | segments recognised | per video | events | unmatched events | inferences per video | inference p50 ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        runtime = "online (step graph)" if r["mode"] == "online" else "sliding window (clip graph)"
        lines.append(f"| {r['arch']} | {runtime} | {r['recognised']}/{r['segments']} "
                     f"({100 * r['recognised'] / r['segments']:.0f}%) | {' '.join(map(str, r['per_video']))} | "
                     f"{r['events']} | {r['unmatched_events']} | {r['inferences_per_video']} | "
                     f"{r['inference_p50_ms']:.2f} |")
    return "\n".join(lines) + "\n"


def run(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(prog="python -m benchmarks.online_sequences", description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=Path, required=True, help="folder of the runs (benchmarks.synthetic_motion --out)")
    p.add_argument("--archs", nargs="+", required=True, help="run folders in --runs (e.g. tsi_r18-causal tsi_r18)")
    p.add_argument("--sequences", type=int, default=4)
    p.add_argument("--frames", type=int, default=48, help="frames an action")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("runtime").setLevel(logging.WARNING)
    missing = [a for a in args.archs if not (args.runs / a / "last.pt").is_file()]
    if missing:
        raise SystemExit(f"error: no last.pt for {missing} in {args.runs} (train them with benchmarks.synthetic_motion)")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_sequences_") as tmp:
        tmp = Path(tmp)
        videos = write_sequences(tmp, args.sequences, args.seed, args.frames)
        for arch in args.archs:
            model, card = export_run(args.runs / arch / "last.pt", tmp, arch)
            log.info("%s: %s", arch, model.name)
            rows.append({"arch": arch, **run_model(model, card, videos, tmp)})
            log.info("%s: %d/%d segments", arch, rows[-1]["recognised"], rows[-1]["segments"])
    text = to_markdown(rows, args, list(argv) if argv is not None else sys.argv[1:])
    atomic_write_text(args.out, text)
    atomic_write_text(args.out.with_suffix(".json"), json.dumps(rows, indent=1))
    print(text)
    return rows


def main(argv: list[str] | None = None) -> int:
    run(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
