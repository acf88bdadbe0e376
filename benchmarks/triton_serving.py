"""Served through Triton against in-process onnxruntime: windows/s and inference latency for 1, 4
and 8 streams, and how the requests were batched.

    python -m benchmarks.triton_serving [--model M.onnx] [--streams 1 4 8] [--frames 150] [--repeats 2]

For each number of streams N, ``tsi-live`` (the real program, a subprocess) recognises N synthetic
30 fps videos (320x240, panning texture) with every frame (``--no-realtime``: as fast as the CPU
allows), three ways, each run first in turn:

* ``in-process``: one ``tsi-live`` of the N streams, ``--model M.onnx``, onnxruntime on the CPU (its
  default threads);
* ``Triton``: ``--model triton://127.0.0.1:PORT/NAME`` (gRPC), the same graph in a model repository
  written by :mod:`export.triton_repo`, served on this machine by PyTriton's tritonserver
  (deploy/triton/pytriton_serve.py: Triton's Python backend running onnxruntime on the CPU; the
  full server would use its onnxruntime or TensorRT backend), in the venv
  deploy/triton/pytriton_venv.sh makes; one ``tsi-live`` of the N streams;
* ``Triton, a process per stream`` (N > 1): N ``tsi-live`` at once, one stream each, as N devices
  would: a request carries one clip, and only the server's dynamic batching can batch them.

windows/s: the windows of all streams / the longest run loop. Inference p50 / p95: each stream's
``inference`` stage (the batched call: in-process the onnxruntime run, through Triton the request's
round trip), p50 the mean over the streams, p95 the worst stream's. Batching, from the server's
statistics before and after each run: clips per request (the client's batches) and clips per model
execution (the server's dynamic batching). Writes ``--out``.md and .json (default
``benchmarks/results/triton_serving``) with the CPU model and the load average before and after
each run; the server shares the CPU with the client.
Without ``--model`` it exports the shipped demo checkpoint with a dynamic batch axis (needs torch).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common.machine import cpu_model, load_average
from benchmarks.common.panning_clip import write_video
from benchmarks.common.triton_server import GRPC_ACCESS_HEADER, TritonServer, pytriton_python
from benchmarks.common.results import write_results

log = logging.getLogger("bench.triton_serving")
OUT = Path("benchmarks") / "results" / "triton_serving"
# in-process onnxruntime, Triton with every stream in one tsi-live (the client batches), Triton with a
# tsi-live per stream (as many devices: only the server's dynamic batching can batch them)
SIDES = ("in-process", "Triton", "Triton, a process per stream")
NAME = "tsi"  # the model's name in the benchmark's repository


def server_counts(server: TritonServer) -> dict[str, int]:
    """The served model's inference (clips), execution and request counts so far."""
    import tritonclient.grpc as grpc

    client = grpc.InferenceServerClient(f"127.0.0.1:{server.ports['grpc']}")
    try:
        stats = client.get_inference_statistics(NAME, as_json=True, headers={GRPC_ACCESS_HEADER: server.token})["model_stats"][0]
    finally:
        client.close()
    return {"clips": int(stats.get("inference_count", 0)), "executions": int(stats.get("execution_count", 0)),
            "requests": int(stats.get("inference_stats", {}).get("success", {}).get("count", 0))}


def run_once(model: str, groups: list[list[Path]], work: Path) -> dict:
    """``tsi-live`` over each group of videos (one process per group, all at once): windows/s over
    every stream and the inference latency of their summaries."""
    out = Path(tempfile.mkdtemp(dir=work))
    procs = []
    load0 = load_average()
    for g, videos in enumerate(groups):
        cmd = [sys.executable, "-m", "runtime.live", "--model", model, "--headless", "--no-realtime",
               "--log-level", "WARNING", "--out-jsonl", str(out / "{name}.jsonl")]
        for i, v in enumerate(videos):
            cmd += ["--source", f"g{g}s{i}={v}"]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    for p in procs:
        _, err = p.communicate()
        if p.returncode != 0:
            raise RuntimeError(f"tsi-live failed ({p.returncode}): {err[-2000:]}")
    summaries = [json.loads(f.read_text().splitlines()[-1])["summary"] for f in sorted(out.glob("*.jsonl"))]
    windows = sum(s["inferences"] for s in summaries)
    loop_s = max(s["wall_s"] for s in summaries)
    inf = [s["latency_ms"]["inference"] for s in summaries]
    return {"windows": windows, "loop_s": round(loop_s, 3), "windows_per_s": round(windows / loop_s, 2),
            "inference_p50_ms": round(float(np.mean([x["p50_ms"] for x in inf])), 2),
            "inference_p95_ms": round(max(x["p95_ms"] for x in inf), 2),
            "loadavg_before": load0, "loadavg_after": load_average()}


def measure(model: Path, server: TritonServer, streams: list[int], frames: int, repeats: int, work: Path) -> list[dict]:
    videos = [write_video(work / f"cam{i}.mp4", frames, seed=i) for i in range(max(streams))]
    url = server.url(NAME)
    rows = []
    for n in streams:
        sides = SIDES if n > 1 else SIDES[:2]
        runs: dict[str, list[dict]] = {s: [] for s in sides}
        for k in range(repeats):
            order = sides[k % len(sides):] + sides[:k % len(sides)]  # each side runs first in turn
            for side in order:
                served = side != SIDES[0]
                before = server_counts(server) if served else None
                groups = [[v] for v in videos[:n]] if side == SIDES[2] else [videos[:n]]
                row = run_once(url if served else str(model), groups, work)
                if before is not None:
                    after = server_counts(server)
                    d = {key: after[key] - before[key] for key in after}
                    row["clips_per_request"] = round(d["clips"] / max(1, d["requests"]), 2)
                    row["clips_per_execution"] = round(d["clips"] / max(1, d["executions"]), 2)
                    row["requests"] = d["requests"]
                log.info("%d stream(s), %s: %s", n, side, row)
                runs[side].append(row)
        for side in sides:
            done = sorted(runs[side], key=lambda r: r["windows_per_s"])
            median = dict(done[len(done) // 2], streams=n, side=side,
                          repeats=[r["windows_per_s"] for r in runs[side]])
            rows.append(median)
    return rows


def render(rows: list[dict], meta: dict) -> str:
    lines = [
        "# Served through Triton against in-process onnxruntime",
        "",
        f"Command: `{meta['command']}`",
        "",
        f"Machine: {meta['cpu']}, {meta['cpu_count']} CPU cores (client and server share them), model "
        f"`{meta['model']}` (dynamic batch), {meta['frames']} frames per stream (320x240, 30 fps), every frame "
        "(`--no-realtime`); all streams in one `tsi-live` process but in \"a process per stream\" (N `tsi-live` "
        "at once, as N devices). Triton: PyTriton "
        f"{meta['pytriton']}'s tritonserver on 127.0.0.1, gRPC, the graph run by onnxruntime inside Triton's "
        "Python backend (deploy/triton/pytriton_serve.py), the repository from `export.triton_repo` "
        f"(max_batch_size {meta['max_batch']}, dynamic batching, {meta['queue_delay_us']} µs queue delay).",
        "",
        f"Each side ran {meta['repeats']} time(s), each side running first in turn; each row is the median "
        "run by windows/s. Inference p50: the mean over the streams of each stream's p50 of the batched call "
        "(through Triton: the request's round trip); p95: the worst stream's.",
        "",
        "| streams | backend | windows/s | inference p50 ms | inference p95 ms | clips per request | clips per "
        "server execution | load avg before → after (1 min) | windows/s of each repeat |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['streams']} | {r['side']} | {r['windows_per_s']} | {r['inference_p50_ms']} | "
                     f"{r['inference_p95_ms']} | {r.get('clips_per_request', '—')} | "
                     f"{r.get('clips_per_execution', '—')} | {r['loadavg_before'][0]} → {r['loadavg_after'][0]} | "
                     f"{', '.join(map(str, r['repeats']))} |")
    lines.append("")
    for n in sorted({r["streams"] for r in rows}):
        side = {r["side"]: r for r in rows if r["streams"] == n}
        ratios = "; ".join(f"{name} / in-process = {side[name]['windows_per_s'] / side[SIDES[0]]['windows_per_s']:.2f}"
                           for name in SIDES[1:] if name in side)
        lines.append(f"- {n} stream(s), windows/s: {ratios}")
    busy = [r for r in rows if r["loadavg_before"][0] > meta["cpu_count"]]
    lines += ["", "Load: " + (
        f"{len(busy)} of {len(rows)} runs started with a 1-minute load average above the {meta['cpu_count']} cores "
        "(the average trails: it counts this benchmark's previous runs, up to 8 processes and the server, as well "
        "as other work on this shared CPU): compare the backends of one stream count, and the repeats." if busy else f"every run started with a 1-minute load average at or below the {meta['cpu_count']} "
        "cores."), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.triton_serving", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", help="a dynamic-batch .onnx (default: export the demo checkpoint)")
    p.add_argument("--streams", type=int, nargs="+", default=[1, 4, 8])
    p.add_argument("--frames", type=int, default=150, help="frames per video (%(default)s)")
    p.add_argument("--repeats", type=int, default=2, help="runs of each backend, alternating (%(default)s)")
    p.add_argument("--out", default=str(OUT), help="results path without suffix")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if any(n < 1 for n in a.streams) or a.frames < 1 or a.repeats < 1:
        print("error: --streams, --frames and --repeats must be positive", file=sys.stderr)
        return 2
    if a.model and not Path(a.model).is_file():
        print(f"error: model not found: {a.model}", file=sys.stderr)
        return 2
    python, why = pytriton_python()
    if python is None:
        print(f"error: no Triton server here: {why}", file=sys.stderr)
        return 2
    from export.triton_config import DEFAULT_QUEUE_DELAY_US, ServingOptions
    from export.triton_repo import write_model

    max_batch = max(a.streams)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if a.model:
            model = Path(a.model)
        else:
            from benchmarks.common.demo_graph import demo_dynamic_onnx

            log.info("exporting the demo checkpoint with a dynamic batch axis")
            model = demo_dynamic_onnx(work / "demo_dynamic.onnx")
        write_model(work / "repo", model, name=NAME, opts=ServingOptions(max_batch=max_batch, kind="cpu"))
        with TritonServer(python, work / "repo", work / "server.log") as server:
            rows = measure(model, server, a.streams, a.frames, a.repeats, work)
    pytriton = subprocess.run([str(python), "-c", "import importlib.metadata as m; print(m.version('nvidia-pytriton'))"],
                              capture_output=True, text=True).stdout.strip()
    args = argv if argv is not None else sys.argv[1:]
    meta = {"command": " ".join(["python -m benchmarks.triton_serving", *args]), "cpu": cpu_model(),
            "cpu_count": os.cpu_count(), "model": a.model or "demo_tsi_r18 exported with --dynamic-batch",
            "frames": a.frames, "repeats": a.repeats, "pytriton": pytriton, "max_batch": max_batch,
            "queue_delay_us": DEFAULT_QUEUE_DELAY_US, "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    write_results(a.out, meta, rows, render(rows, meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
