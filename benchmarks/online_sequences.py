"""Trained models in the live runtime on continuous videos: actions recognised, online vs sliding window.

    python -m benchmarks.online_sequences --runs artifacts/bench_online/seed0 \
        --archs tsi_r18-causal-warm tsi_r18 [--online-memory auto none] [--sequences 6] [--seed 0]

The clip benchmark (``benchmarks.synthetic_motion``) scores a causal model on T frames from the zero
state: its online output at the first moment it has one. A live stream is the other case: the state
has seen everything before, and actions follow each other. This benchmark writes ``--sequences``
continuous videos (``write_sequence_video``: one background, a continuing camera path), each of the
11 synthetic actions once in a seeded random order plus ``--repeats`` repeated actions (never twice
in a row), each action ``--frames MIN MAX`` long (drawn per action, so the transitions fall at varied
points), with one idle stretch (``--idle``; nobody in the scene) between two actions. It exports each
run's ``last.pt`` (a causal one as its dynamic-batch step graph, ``export.stream_export``; an offline one as its
clip graph, ``export.onnx_export``), runs ``runtime.live.run_live`` on every video (``--no-realtime``;
the default stride: 4 for the window, the frame step for the online model, which is 4 at span 32
and T = 8, so both score every 4 frames; an online model once per ``--online-memory``: by default
its default bound and unbounded) and
matches the events with the ground truth as ``tsi-events`` does (``runtime.events.match_segments``,
lag half the span). Writes ``benchmarks/results/online_sequences.md`` (and ``.json``).
"""

from __future__ import annotations

import json
import logging
import shlex
import sys
import tempfile
from pathlib import Path

import numpy as np

from runtime.common.files import atomic_write_text
from runtime.online import AUTO_MEMORY, memory_arg, memory_tracks, resolve_memory
from runtime.recognizer import ONLINE_MEMORY
from tsi.cli import non_negative_int, parser, positive_int

log = logging.getLogger("bench.online_sequences")

DEFAULT_OUT = Path("benchmarks/results/online_sequences.md")


def export_run(checkpoint: Path, out: Path, name: str):
    """(graph, card) the live runtime runs for this checkpoint: the step graph of a causal model
    (dynamic batch: a step's tracks in one inference), the clip graph of an offline one."""
    from export.friendly import export_friendly_model
    from export.onnx_export import export_onnx
    from export.stream_export import export_online
    from runtime.card import ModelCard
    from runtime.common.files import file_sha256
    from tsi.checkpoint import load_checkpoint

    if load_checkpoint(checkpoint)["config"].get("causal"):  # each export loads the model itself
        written = export_online(checkpoint, out, name, dynamic_batch=True)
        return written["fp32"], ModelCard.load(written["card"])
    model, card = export_friendly_model(checkpoint)
    return export_onnx(model, card, out / f"{name}.onnx", source_sha256=file_sha256(checkpoint)), card


def sequence_plan(rng: np.random.Generator, classes: list[str], frames: tuple[int, int], repeats: int,
                  idle: tuple[int, int]) -> tuple[list[str | None], list[int]]:
    """(labels, lengths) of one continuous video: every class once in a random order, ``repeats``
    more actions inserted where neither neighbour has their label, one idle stretch (``None``) at a
    random place between two actions unless ``idle`` is (0, 0); each length drawn from its range."""
    labels: list[str | None] = [str(c) for c in rng.permutation(classes)]
    while repeats > 0:
        label, at = str(rng.choice(classes)), int(rng.integers(0, len(labels) + 1))
        if label not in labels[max(0, at - 1):at + 1]:
            labels.insert(at, label)
            repeats -= 1
    if idle[1] > 0:
        labels.insert(int(rng.integers(1, len(labels))), None)
    lengths = [int(rng.integers(idle[0], idle[1] + 1)) if lab is None else int(rng.integers(frames[0], frames[1] + 1))
               for lab in labels]
    return labels, lengths


def write_sequences(folder: Path, n: int, seed: int, frames: tuple[int, int], repeats: int = 0,
                    idle: tuple[int, int] = (0, 0)) -> list[tuple[Path, list[dict]]]:
    from tsi.data.synthetic import CLASSES, write_sequence_video

    out = []
    for i in range(n):
        labels, lengths = sequence_plan(np.random.default_rng([seed, i]), list(CLASSES), frames, repeats, idle)
        path = folder / f"sequence_{i}.mp4"
        out.append((path, write_sequence_video(path, labels, seed=seed * 1000 + i, frames_per_segment=lengths)))
    return out


def idle_spans(segments: list[dict]) -> list[tuple[int, int]]:
    """The gaps between consecutive actions of a video (its idle stretches), [start, end)."""
    return [(a["end_frame"], b["start_frame"]) for a, b in zip(segments, segments[1:])
            if b["start_frame"] > a["end_frame"]]


def in_span(event: dict, start: int, end: int, lag: int) -> bool:
    """Has ``event`` (shifted back by ``lag``; ``end_frame`` inclusive) at least half its frames in
    [start, end)? (``runtime.events.match_segments``'s rule.)"""
    a, b = event["start_frame"] - lag, event["end_frame"] - lag + 1
    return 2 * (min(b, end) - max(a, start)) >= b - a


def run_model(model: Path, card, videos: list[tuple[Path, list[dict]]], folder: Path,
              memory: int | str | None = ONLINE_MEMORY) -> dict:
    from runtime.events import match_segments, read_events
    from runtime.live import LiveOptions, run_live

    hits = total = events = unmatched = in_idle = passes = 0
    per_video, infer = [], []
    bound = resolve_memory(memory, card.frames) if card.mode == "online" else None
    per_inference = card.frames if card.mode == "clip" else memory_tracks(card.frames, bound)[0]  # frames through the backbone
    for video, segments in videos:
        jsonl = folder / f"{model.stem}_{memory}_{video.stem}.jsonl"
        (summary,) = run_live(LiveOptions(model=str(model), sources=(str(video),), headless=True, realtime=False,
                                          out_jsonl=str(jsonl), providers=["cpu"], threads=1, online_memory=memory))
        if summary.error:
            raise SystemExit(f"error: {model.name} on {video.name}: {summary.error}")
        found = read_events(jsonl)
        lag = card.span_frames // 2
        matches = match_segments(found, segments, lag=lag)  # (segment, the matched event shifted by lag)
        used = {(ev["label"], ev["start_frame"]) for _, ev in matches if ev is not None}
        n_hits = sum(ev is not None for _, ev in matches)
        hits, total, events = hits + n_hits, total + len(matches), events + len(found)
        unmatched += sum((ev["label"], ev["start_frame"] - lag) not in used for ev in found)
        in_idle += sum(in_span(ev, a, b, lag) for a, b in idle_spans(segments) for ev in found)
        per_video.append(n_hits)
        infer.append(summary.latency_ms["inference"]["p50_ms"])
        passes += summary.inferences * per_inference
    return {"mode": card.mode, "memory": memory, "bound": bound, "tracks": per_inference if card.mode == "online" else None,
            "recognised": hits, "segments": total, "events": events,
            "unmatched_events": unmatched, "events_in_idle": in_idle, "per_video": per_video,
            "inference_p50_ms": float(np.median(infer)), "backbone_frames": passes}


def check_memories(runs: Path, archs: list[str], memories: list) -> None:
    """Every ``--online-memory`` against each causal run's T (its checkpoint's config), before any
    video is written or model exported: one line, exit 2, for a bound below T."""
    from tsi.checkpoint import load_checkpoint

    for arch in archs:
        config = load_checkpoint(runs / arch / "last.pt")["config"]
        for memory in memories if config.get("causal") else []:
            try:
                resolve_memory(memory, config["frames"])
            except ValueError as e:
                raise SystemExit(f"error: {arch}: {e}") from None


def to_markdown(rows: list[dict], args, argv: list[str]) -> str:
    lines = [
        "# Trained models in the live runtime on continuous videos",
        "",
        f"Written by `python -m benchmarks.online_sequences {shlex.join(argv)}`.",
        "",
        f"{args.sequences} videos (`tsi.data.synthetic.write_sequence_video`: one background, a continuing camera "
        f"path), each of the 11 synthetic actions once in a seeded random order plus {args.repeats} repeated ones "
        f"(never twice in a row), {args.frames[0]}–{args.frames[1]} frames an action (drawn per action, so the "
        "transitions fall at varied points of the score stride), and "
        + (f"one idle stretch of {args.idle[0]}–{args.idle[1]} frames (the scene and camera with nobody in it) "
           "between two actions; " if args.idle[1] else "no idle stretch; ")
        + f"each run's `last.pt` from `{args.runs}`, exported and run by `runtime.live.run_live` with its defaults "
        "(`--no-realtime`, onnxruntime CPU, 1 thread; a score every 4 frames for both modes, EMA smoothing, "
        "threshold 0.5), an online model with each `--online-memory` given (auto: the default, 3T/2 sampled frames; "
        "tracks: states stepped per output). A segment is recognised when an "
        "event of its label overlaps it by at least half of the event (`runtime.events.match_segments`, lag half "
        "the span); an unmatched event is one that recognised no segment (a wrong label, a second event of one "
        "action, or an event in the idle stretch); \"in idle\": events with at least half their span there. "
        "Backbone frames: frames through the backbone over all videos (the window: T per score; online: one per "
        "step and track).",
        "",
        "| run | runtime | segments recognised | per video | events | unmatched events | in idle | backbone frames | inference p50 ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        runtime = ("sliding window (clip graph)" if r["mode"] != "online" else
                   "online, unbounded (1 track)" if r["bound"] is None else
                   f"online, memory {r['bound']}{f' ({AUTO_MEMORY})' if r['memory'] == AUTO_MEMORY else ''} ({r['tracks']} tracks)")
        lines.append(f"| {r['arch']} | {runtime} | {r['recognised']}/{r['segments']} "
                     f"({100 * r['recognised'] / r['segments']:.0f}%) | {' '.join(map(str, r['per_video']))} | "
                     f"{r['events']} | {r['unmatched_events']} | {r['events_in_idle']} | {r['backbone_frames']} | "
                     f"{r['inference_p50_ms']:.2f} |")
    return "\n".join(lines) + "\n"


def run(argv: list[str] | None = None) -> list[dict]:
    p = parser("python -m benchmarks.online_sequences", __doc__.split("\n\n")[0])
    p.add_argument("--runs", type=Path, required=True, help="folder of the runs (benchmarks.synthetic_motion --out)")
    p.add_argument("--archs", nargs="+", required=True, help="run folders in --runs (e.g. tsi_r18-causal tsi_r18)")
    p.add_argument("--sequences", type=positive_int, default=6)
    p.add_argument("--frames", type=positive_int, nargs=2, default=[32, 64], metavar=("MIN", "MAX"),
                   help="frames an action, drawn per action (%(default)s; the training clips' actions "
                        "take 32 frames, and an action is drawn over its segment: a longer one is slower)")
    p.add_argument("--repeats", type=non_negative_int, default=5,
                   help="actions shown a second time in a video, never twice in a row (%(default)s)")
    p.add_argument("--idle", type=non_negative_int, nargs=2, default=[48, 96], metavar=("MIN", "MAX"),
                   help="frames of the one idle stretch (nobody in the scene) per video; 0 0 for none")
    p.add_argument("--online-memory", type=memory_arg, nargs="+", default=[ONLINE_MEMORY, None], metavar="M",
                   help="run each online model with each tsi-live --online-memory M, a row per M "
                        "(auto, none or a number; default: auto none)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args(argv)
    for name in ("frames", "idle"):
        lo, hi = getattr(args, name)
        if lo > hi or (name == "frames" and lo < 2) or (name == "idle" and 0 < lo < 2):
            p.error(f"--{name} {lo} {hi}: want 2 <= MIN <= MAX" + (" (or 0 0)" if name == "idle" else ""))
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("runtime").setLevel(logging.WARNING)
    missing = [a for a in args.archs if not (args.runs / a / "last.pt").is_file()]
    if missing:
        raise SystemExit(f"error: no last.pt for {missing} in {args.runs} (train them with benchmarks.synthetic_motion)")
    check_memories(args.runs, args.archs, args.online_memory)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_sequences_") as tmp:
        tmp = Path(tmp)
        videos = write_sequences(tmp, args.sequences, args.seed, tuple(args.frames), args.repeats, tuple(args.idle))
        for arch in args.archs:
            model, card = export_run(args.runs / arch / "last.pt", tmp, arch)
            log.info("%s: %s", arch, model.name)
            for memory in (args.online_memory if card.mode == "online" else [ONLINE_MEMORY]):
                rows.append({"arch": arch, **run_model(model, card, videos, tmp, memory)})
                log.info("%s (memory %s): %d/%d segments", arch, memory, rows[-1]["recognised"], rows[-1]["segments"])
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
