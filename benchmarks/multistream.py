"""Many streams in one process (one model, batched inference) against as many separate processes.

    python -m benchmarks.multistream [--model M.onnx] [--streams 1 2 4 8] [--seconds 10]

For each number of streams N, the live runtime (``tsi-live``, the real program, in subprocesses)
recognises N synthetic 30 fps videos (320x240, moving texture) two ways:

* ``one process``: ``tsi-live --source v1 ... --source vN`` (one model, one batched inference over
  the streams whose windows are due);
* ``N processes``: N ``tsi-live --source vi`` at once, each with its own model.

and in two regimes:

* ``offline`` (``--no-realtime``): every frame, as fast as the CPU allows -> throughput in frames/s
  and windows/s over all streams (frames / the longest run loop of the processes);
* ``real time`` (each video played at its 30 fps for ``--seconds``): what a camera would see ->
  frames delivered and dropped, windows/s, and the end-to-end latency per window (capture of the
  newest frame to smoothed scores: p50 averaged over the streams, p95 the worst stream).

Writes ``--out``.md and .json (default ``benchmarks/results/multistream``) with the load average
before and after each run (the CPU may be shared: a load above the core count means other work
disturbed it).
Without ``--model`` it exports the shipped demo checkpoint with a dynamic batch axis (needs torch).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common.demo_graph import demo_dynamic_onnx
from benchmarks.common.panning_clip import write_video
from benchmarks.common.results import write_results

log = logging.getLogger("bench.multistream")
RESULTS = Path("benchmarks") / "results"


def _live_cmd(model: Path, videos: list[Path], out: Path, realtime: bool, seconds: float,
              stride: int | None) -> list[str]:
    """``tsi-live`` on ``videos``; ``stride`` None: no ``--stride``, the runtime's per-mode default."""
    cmd = [sys.executable, "-m", "runtime.live", "--model", str(model), "--headless",
           *(["--stride", str(stride)] if stride is not None else []), "--log-level", "WARNING",
           "--out-jsonl", str(out / ("{name}.jsonl" if len(videos) > 1 else f"{videos[0].stem}.jsonl"))]
    for v in videos:
        cmd += ["--source", str(v)]
    cmd += ["--duration", str(seconds)] if realtime else ["--no-realtime"]
    return cmd


def run_config(model: Path, videos: list[Path], processes: int, realtime: bool, seconds: float,
               stride: int | None, work: Path) -> dict:
    """N streams in one process (processes=1) or in N processes; the streams' summaries."""
    out = Path(tempfile.mkdtemp(dir=work))
    groups = [videos] if processes == 1 else [[v] for v in videos]
    load0 = os.getloadavg()
    t0 = time.monotonic()
    procs = [subprocess.Popen(_live_cmd(model, g, out, realtime, seconds, stride),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for g in groups]
    for p in procs:
        text, _ = p.communicate()
        if p.returncode != 0:
            raise RuntimeError(f"tsi-live failed ({p.returncode}):\n{text[-2000:]}")
    elapsed = time.monotonic() - t0
    load1 = os.getloadavg()
    summaries = []
    for v in videos:
        lines = (out / f"{v.stem}.jsonl").read_text().splitlines()
        summaries.append(json.loads(lines[-1])["summary"])
    frames = sum(s["frames"] for s in summaries)
    windows = sum(s["inferences"] for s in summaries)
    loop_s = max(s["wall_s"] for s in summaries)
    cap = [s["capture"] for s in summaries]
    e2e = [s["latency_ms"]["end_to_end"] for s in summaries if "end_to_end" in s["latency_ms"]]
    inf = [s["latency_ms"]["inference"] for s in summaries if "inference" in s["latency_ms"]]
    return {
        "streams": len(videos), "processes": len(groups), "realtime": realtime,
        "frames": frames, "windows": windows, "loop_s": round(loop_s, 3),
        "elapsed_s": round(elapsed, 3),
        "fps": round(frames / loop_s, 1), "windows_per_s": round(windows / loop_s, 1),
        "read": sum(c["read"] for c in cap), "dropped": sum(c["dropped"] for c in cap),
        "e2e_p50_ms": round(float(np.mean([x["p50_ms"] for x in e2e])), 2) if e2e else None,
        "e2e_p95_ms": round(max(x["p95_ms"] for x in e2e), 2) if e2e else None,
        "inference_mean_ms": round(float(np.mean([x["mean_ms"] for x in inf])), 2) if inf else None,
        "loadavg_before": [round(x, 2) for x in load0], "loadavg_after": [round(x, 2) for x in load1],
    }


def render(rows: list[dict], meta: dict) -> str:
    cores = meta["cpu_count"]
    lines = [
        "# Many streams: one process (batched) vs separate processes",
        "",
        f"Command: `{meta['command']}`",
        "",
        f"Machine: {meta['machine']}, {cores} CPU cores, onnxruntime {meta['onnxruntime']} (CPU), "
        f"model `{meta['model']}` (dynamic batch), stride "
        f"{meta['stride'] if meta['stride'] is not None else 'the runtime default for the model'}, videos 320x240 at 30 fps. "
        "`tsi-live` itself runs in subprocesses; in \"N processes\" each has its own model and "
        "onnxruntime's default threads (one per core).",
        "",
        "## Offline (every frame, as fast as possible)",
        "",
        "| streams | setup | frames/s (all streams) | windows/s | inference mean ms | run loop s | load avg before → after (1 min) | frames/s of each repeat |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["realtime"]:
            continue
        setup = "one process" if r["processes"] == 1 else f"{r['processes']} processes"
        lines.append(f"| {r['streams']} | {setup} | {r['fps']} | {r['windows_per_s']} | "
                     f"{r['inference_mean_ms']} | {r['loop_s']} | {r['loadavg_before'][0]} → "
                     f"{r['loadavg_after'][0]} | {', '.join(map(str, r['repeats']))} |")
    lines += [
        "",
        f"## Real time (each stream a 30 fps video played at its rate for {meta['seconds']} s)",
        "",
        "| streams | setup | frames read | dropped | windows/s | end-to-end p50 ms | end-to-end p95 ms (worst stream) | load avg before → after (1 min) | windows/s of each repeat |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if not r["realtime"]:
            continue
        setup = "one process" if r["processes"] == 1 else f"{r['processes']} processes"
        drop = f"{r['dropped']} ({100 * r['dropped'] / max(1, r['read']):.0f}%)"
        lines.append(f"| {r['streams']} | {setup} | {r['read']} | {drop} | {r['windows_per_s']} | "
                     f"{r['e2e_p50_ms']} | {r['e2e_p95_ms']} | {r['loadavg_before'][0]} → "
                     f"{r['loadavg_after'][0]} | {', '.join(map(str, r['repeats']))} |")
    busy = [r for r in rows if r["loadavg_before"][0] > cores]
    lines.insert(lines.index("## Offline (every frame, as fast as possible)"),
                 f"Each setup ran {meta['repeats']} time(s), interleaved with the other setup of its "
                 "row pair; each row is the median run.\n")
    lines += ["", "Load: " + (
        f"{len(busy)} of {len(rows)} runs started with a 1-minute load average above the {cores} "
        "cores (other agents share this CPU): those figures are disturbed; compare the two setups "
        "of one row pair rather than absolute numbers." if busy else
        f"every run started with a 1-minute load average at or below the {cores} cores."), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.multistream",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--model", help="a dynamic-batch .onnx (default: export the demo checkpoint)")
    p.add_argument("--streams", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--seconds", type=float, default=10.0, help="real-time run length (%(default)s)")
    p.add_argument("--frames", type=int, default=300, help="frames per video (%(default)s)")
    p.add_argument("--stride", type=int, default=None, help="default: the runtime's default")
    p.add_argument("--repeats", type=int, default=1, help="runs of each setup, interleaved (one "
                   "process, N processes, one process, ...); the table shows the median run by "
                   "frames/s (offline) or windows/s (real time) (%(default)s)")
    p.add_argument("--out", default=str(RESULTS / "multistream"), help="results path without suffix")
    p.add_argument("--work", help="folder for the videos and outputs (default: a temporary one)")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if (any(n < 1 for n in a.streams) or a.seconds <= 0 or a.frames < 1 or a.repeats < 1
            or (a.stride is not None and a.stride < 1)):
        print("error: --streams, --seconds, --frames, --repeats and --stride must be positive", file=sys.stderr)
        return 2
    from runtime.live import LiveOptions

    stride = a.stride or LiveOptions.stride
    with tempfile.TemporaryDirectory(dir=a.work) as tmp:
        work = Path(tmp)
        if a.model:
            model = Path(a.model)
            if not model.is_file():
                print(f"error: model not found: {model}", file=sys.stderr)
                return 2
        else:
            log.info("exporting the demo checkpoint with a dynamic batch axis")
            model = demo_dynamic_onnx(work / "demo_dynamic.onnx")
        videos = [write_video(work / f"cam{i}.mp4", a.frames, seed=i) for i in range(max(a.streams))]
        from runtime.common.progress import progress_bar

        total = a.repeats * sum(2 * (2 if n > 1 else 1) for n in a.streams)
        progress = progress_bar(total=total, desc="runs", unit="run")
        rows = []
        for n in a.streams:
            for realtime in (False, True):
                setups = (1, n) if n > 1 else (1,)
                runs: dict[int, list[dict]] = {k: [] for k in setups}
                for _ in range(a.repeats):
                    for processes in setups:
                        log.info("%d stream(s), %s, %s", n, "one process" if processes == 1 else
                                 f"{processes} processes", "real time" if realtime else "offline")
                        row = run_config(model, videos[:n], processes, realtime, a.seconds, stride,
                                         work)
                        log.info("  %s", row)
                        runs[processes].append(row)
                        progress.update()
                key = "windows_per_s" if realtime else "fps"
                for processes in setups:
                    done = sorted(runs[processes], key=lambda r: r[key])
                    median = dict(done[len(done) // 2])
                    median["repeats"] = [r[key] for r in runs[processes]]
                    rows.append(median)
        progress.close()
    import onnxruntime

    args = argv if argv is not None else sys.argv[1:]
    meta = {"command": " ".join(["python -m benchmarks.multistream", *args]),
            "machine": f"{platform.machine()} {platform.processor() or platform.platform()}",
            "cpu_count": os.cpu_count(), "onnxruntime": onnxruntime.__version__,
            "model": a.model or "demo_tsi_r18 exported with --dynamic-batch", "stride": stride,
            "seconds": a.seconds, "frames_per_video": a.frames, "repeats": a.repeats,
            "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    write_results(a.out, meta, rows, render(rows, meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
