"""Online streams through the live runtime: one batched step per tick against a step per stream.

    python -m benchmarks.online_streams [--streams 8] [--seconds 10] [--offline-frames 300]
                                        [--repeats 2] [--stride 1] [--threads 1] [--online-memory auto|none|M] [--out PREFIX]

``--streams`` synthetic 320x240 videos (``benchmarks.common.panning_clip``, one seed each) run
through ``runtime.run.run_live`` (what ``tsi-live`` runs: capture threads, decoding, preprocessing,
the scheduler, smoothing, events) on a random-weight causal TSI at the demo geometry
(``benchmarks.common.random_step``), two ways:

* ``batched``: its step graph exported with ``--dynamic-batch``; the scheduler runs the due steps
  of every stream as one inference per tick (``runtime.online.StepBatch``);
* ``per-stream``: the same model's batch-1 graph; the same scheduler steps the streams one by one.

and in two regimes: *real time* (each file played at its 30 fps: the capture drops what the
runtime cannot keep up with) and *offline* (``--no-realtime``, every frame of ``--offline-frames``:
throughput). The two sides alternate (ABBA over ``--repeats``) so that load from other work hits
both alike; the ratios are taken pair by pair, then their median. Counted in the process:
scheduler ticks (calls of the step batch), ``session.run`` calls and the rows they carried, the time
inside the step batch (inference per tick and per step) and the process's CPU time. Writes
``--out``.json and .md (default ``benchmarks/results/online_streams``) with the CPU model and the
load average before and after each run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common.demo_geometry import demo_card
from benchmarks.common.machine import cpu_model, cpus_usable, load_average, load_note
from benchmarks.common.panning_clip import write_video
from benchmarks.common.random_step import export_step_graphs
from runtime.common.files import atomic_write_text
from runtime.online import memory_arg, memory_tracks, resolve_memory
from runtime.recognizer import ONLINE_MEMORY

log = logging.getLogger("bench.online_streams")
OUT = Path("benchmarks") / "results" / "online_streams"
FPS = 30.0
SIDES = ("batched", "per_stream")


class Counts:
    """What the step batches of one run did."""

    def __init__(self) -> None:
        self.ticks = self.rows = self.runs = 0
        self.batch_s = 0.0


@contextlib.contextmanager
def counting():
    """Count the scheduler's step batches (one per tick) and onnxruntime's ``session.run`` calls."""
    import onnxruntime

    from runtime.online import StepBatch

    c = Counts()
    real_batch, real_run = StepBatch.__call__, onnxruntime.InferenceSession.run

    def batch(self, windows):
        t = time.perf_counter()
        try:
            return real_batch(self, windows)
        finally:
            c.ticks, c.rows, c.batch_s = c.ticks + 1, c.rows + len(windows), c.batch_s + time.perf_counter() - t

    def run(self, *a, **k):
        c.runs += 1
        return real_run(self, *a, **k)

    StepBatch.__call__, onnxruntime.InferenceSession.run = batch, run
    try:
        yield c
    finally:
        StepBatch.__call__, onnxruntime.InferenceSession.run = real_batch, real_run


def one_run(side: str, graph: Path, videos: list[Path], realtime: bool, stride: int, threads: int,
            memory: int | str | None = ONLINE_MEMORY) -> dict:
    from runtime.plan import LiveOptions
    from runtime.run import run_live

    load0, cpu0 = load_average(), time.process_time()
    with counting() as c:
        summaries = run_live(LiveOptions(model=str(graph), sources=tuple(map(str, videos)), headless=True,
                                         realtime=realtime, stride=stride, threads=threads, providers=["cpu"],
                                         online_memory=memory))
    cpu_s = time.process_time() - cpu0
    bad = [s for s in summaries if s.reason != "end_of_stream"]
    if bad:
        raise SystemExit(f"error: a {side} stream ended with {bad[0].reason}: {bad[0].error}")
    wall = max(s.wall_s for s in summaries)
    steps = sum(s.inferences for s in summaries)
    per = [{"stream": s.stream, "read": s.capture["read"], "dropped": s.capture["dropped"], "frames": s.frames,
            "fps": round(s.fps, 2), "steps": s.inferences} for s in summaries]
    return {"side": side, "regime": "realtime" if realtime else "offline", "streams": per,
            "frames": sum(p["frames"] for p in per), "dropped": sum(p["dropped"] for p in per),
            "wall_s": round(wall, 3), "frames_per_s": round(sum(p["frames"] for p in per) / wall, 1),
            "steps": steps, "steps_per_s": round(steps / wall, 1), "ticks": c.ticks, "session_runs": c.runs,
            "runs_per_tick": round(c.runs / c.ticks, 3), "streams_per_tick": round(c.rows / c.ticks, 3),
            "inference_ms_per_tick": round(1e3 * c.batch_s / c.ticks, 3),
            "inference_ms_per_step": round(1e3 * c.batch_s / c.rows, 3),
            "cpu_s": round(cpu_s, 2), "cpu_ms_per_step": round(1e3 * cpu_s / steps, 3),
            "load_before": load0, "load_after": load_average()}


def ratios(runs: list[dict], regime: str) -> dict:
    """per-stream / batched, pair by pair (the two runs of a repeat), then the median."""
    rows = [r for r in runs if r["regime"] == regime]
    pairs = [{r["side"]: r for r in rows[i:i + 2]} for i in range(0, len(rows), 2)]
    out = {}
    for key in ("inference_ms_per_step", "cpu_ms_per_step"):
        out[key] = round(statistics.median(p["per_stream"][key] / p["batched"][key] for p in pairs), 2)
    out["frames_per_s_batched_over_per_stream"] = round(statistics.median(
        p["batched"]["frames_per_s"] / p["per_stream"]["frames_per_s"] for p in pairs), 2)
    return out


def render(report: dict) -> str:
    m = report["meta"]
    loads = [r[k][0] for r in report["runs"] for k in ("load_before", "load_after") if r[k]]
    note = load_note(loads)
    lines = [f"# {m['streams']} online streams through the live runtime: batched steps vs a step per stream", "",
             f"Command: `{m['command']}`", "",
             f"Machine: {m['cpu']}, {m['cores']} cores ({m['usable_cpus']} usable), onnxruntime {m['onnxruntime']} "
             f"on the CPU, {m['threads']} intra-op thread(s). Load average (1 min) from {min(loads):.2f} to "
             f"{max(loads):.2f} over the runs" + (f" — {note}." if note else " — a quiet machine."), "",
             f"Model: {m['model']}; state {m['state_kib']:.1f} KiB per stream and phase; stride {m['stride']} "
             f"(frame step {m['frame_step']}: {m['phases']} phase(s) per stream, a step per "
             f"{'frame' if m['stride'] == 1 else str(m['stride']) + ' frames'}"
             + ("; online memory none: 1 track per phase" if m.get("bound") is None else
                f"; online memory {m['memory']} ({m['bound']} sampled frames): {m['tracks']} tracks per phase, "
                "each step a row per track") + "). The batched graph against each "
             f"stream stepped alone (`export.stream_export.check_batched_step`): max |logit difference| "
             f"{m['batched_check']:.1e}.", "",
             f"Videos: {m['streams']} files of 320x240 at {FPS:g} fps, {m['seconds']:g} s played at their rate "
             f"(real time), {m['offline_frames']} frames each delivered in full (offline).", "",
             "| run | regime | side | frames | dropped (per stream) | fps per stream (min / mean) | steps/s | "
             "ticks | session.run | runs per tick | streams per tick | inference ms per tick | per step | "
             "CPU ms per step | load before -> after |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for k, r in enumerate(report["runs"]):
        fps = [s["fps"] for s in r["streams"]]
        lines.append(f"| {k + 1} | {r['regime']} | {r['side']} | {r['frames']} | {r['dropped']} "
                     f"({', '.join(str(s['dropped']) for s in r['streams'])}) | {min(fps):.1f} / "
                     f"{statistics.mean(fps):.1f} | {r['steps_per_s']} | {r['ticks']} | {r['session_runs']} | "
                     f"{r['runs_per_tick']} | {r['streams_per_tick']} | {r['inference_ms_per_tick']} | "
                     f"{r['inference_ms_per_step']} | {r['cpu_ms_per_step']} | "
                     f"{r['load_before'][0] if r['load_before'] else '?'} -> "
                     f"{r['load_after'][0] if r['load_after'] else '?'} |")
    lines += ["", "Per-stream / batched, the median over the pairs of runs (above 1: batching is cheaper):", ""]
    for regime, q in report["ratios"].items():
        lines.append(f"- {regime}: inference per step {q['inference_ms_per_step']}x, process CPU per step "
                     f"{q['cpu_ms_per_step']}x; frames/s batched / per-stream "
                     f"{q['frames_per_s_batched_over_per_stream']}x.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="tsi-bench-online-streams", description=__doc__.split("\n\n")[0])
    p.add_argument("--streams", type=int, default=8)
    p.add_argument("--seconds", type=float, default=10.0, help="real-time run length (each file's)")
    p.add_argument("--offline-frames", type=int, default=300, help="frames of each offline file (0: no offline runs)")
    p.add_argument("--repeats", type=int, default=2, help="pairs of runs per regime")
    p.add_argument("--stride", type=int, default=1, help="a step every STRIDE frames (divides the frame step)")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    p.add_argument("--online-memory", type=memory_arg, default=ONLINE_MEMORY, metavar="M",
                   help="tsi-live --online-memory: auto, none or a number of sampled frames; K tracks per phase, "
                        "K rows a step (%(default)s)")
    p.add_argument("--out", type=Path, default=OUT, help="writes OUT.json and OUT.md")
    args = p.parse_args(argv)
    if args.streams < 2 or args.repeats < 1 or args.threads < 1 or args.stride < 1:
        p.error("--streams must be >= 2 (a batch), --repeats, --threads and --stride >= 1")
    if not args.seconds > 0 or args.offline_frames < 0:
        p.error("--seconds must be > 0 and --offline-frames >= 0")
    try:  # the random model's T is the demo card's: checked before any export
        bound = resolve_memory(args.online_memory, demo_card().frames)
    except ValueError as e:
        p.error(str(e))
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("runtime").setLevel(logging.ERROR)  # (each run's summaries are in the report)
    import onnxruntime

    from export.stream_export import check_batched_step, random_frames
    from runtime.backends.onnxruntime_step import OnnxRuntimeStep

    command = " ".join(["python -m benchmarks.online_streams", *(sys.argv[1:] if argv is None else argv)])
    runs: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench_online_streams_") as tmp:
        tmp = Path(tmp)
        log.info("exporting the random-weight causal model's step graphs (dynamic batch and batch 1)")
        graphs = export_step_graphs(tmp)
        step = OnnxRuntimeStep(graphs["batched"])
        card = step.card
        if card.frame_step % args.stride:
            p.error(f"--stride {args.stride} must divide the model's frame step {card.frame_step}")
        check = check_batched_step(graphs["batched"], random_frames(card, 3 * card.frames).reshape(
            3, card.frames, 3, card.input_size, card.input_size))
        regimes = [(True, round(args.seconds * FPS))] + ([(False, args.offline_frames)] if args.offline_frames else [])
        for realtime, frames in regimes:
            videos = [write_video(tmp / f"{'rt' if realtime else 'off'}{i}.avi", frames, seed=i)
                      for i in range(args.streams)]
            for rep in range(args.repeats):
                for side in (SIDES if rep % 2 == 0 else SIDES[::-1]):
                    runs.append(one_run(side, graphs[side], videos, realtime, args.stride, args.threads,
                                        args.online_memory))
                    r = runs[-1]
                    log.info("%s %s: %d frames, %d dropped, %.1f steps/s, %d session.run over %d ticks, "
                             "%.3f ms inference per step", r["regime"], side, r["frames"], r["dropped"],
                             r["steps_per_s"], r["session_runs"], r["ticks"], r["inference_ms_per_step"])
    meta = {"command": command, "cpu": cpu_model(), "cores": os.cpu_count(), "usable_cpus": cpus_usable(),
            "onnxruntime": onnxruntime.__version__, "threads": args.threads, "streams": args.streams,
            "seconds": args.seconds, "offline_frames": args.offline_frames, "stride": args.stride,
            "frame_step": card.frame_step, "phases": card.frame_step // args.stride, "memory": args.online_memory,
            "bound": bound, "tracks": memory_tracks(card.frames, bound)[0],
            "model": f"random-weight causal {card.arch} at the demo geometry ({card.input_size}², T={card.frames}, "
                     f"{card.num_classes} classes)", "state_kib": step.state_bytes / 1024, "batched_check": check}
    report = {"meta": meta, "runs": runs,
              "ratios": {regime: ratios(runs, regime) for regime in dict.fromkeys(r["regime"] for r in runs)}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out.with_suffix(".json"), json.dumps(report, indent=2) + "\n")
    text = render(report)
    atomic_write_text(args.out.with_suffix(".md"), text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
