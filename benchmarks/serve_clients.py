"""Does watching slow recognition? ``tsi-live --serve`` with 0 and with 20 clients on its video.

    python -m benchmarks.serve_clients [--model M.onnx] [--frames 600] [--clients 20] [--repeats 2]

The live runtime (in this process, as ``tsi-live`` runs it) recognises a synthetic 320x240 video
with every frame delivered (``--no-realtime``: as fast as the CPU allows), serving on a free
loopback port; each client reads ``/video.mjpg`` as fast as it can. Runs alternate 0 / N clients,
``--repeats`` times. The recognition frame rate is the run summary's (frames / wall time); the
clients' frames are counted from the multipart boundaries they received. Writes ``--out``.json and
.md (default ``benchmarks/results/serve_clients``), with the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.common.machine import cpu_model, load_average
from benchmarks.common.panning_clip import write_video
from runtime.common.files import atomic_write_text
from runtime.plan import LiveOptions
from runtime.run import run_live
from runtime.serve.jpeg import SERVE_FPS

OUT = Path("benchmarks/results/serve_clients")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _client(port: int, stop: threading.Event, counts: list, i: int) -> None:
    while not stop.is_set():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.sendall(b"GET /video.mjpg HTTP/1.0\r\n\r\n")
                while not stop.is_set():
                    data = s.recv(1 << 16)
                    if not data:
                        break
                    counts[i] += data.count(b"--tsiframe")
        except OSError:
            time.sleep(0.05)  # not listening yet, or the run ended


def one_run(model: str | None, video: Path, clients: int) -> dict:
    port = _free_port()
    stop = threading.Event()
    counts = [0] * clients
    threads = [threading.Thread(target=_client, args=(port, stop, counts, i), daemon=True)
               for i in range(clients)]
    for t in threads:
        t.start()
    load0 = load_average()
    try:
        (summary,) = run_live(LiveOptions(model=model, sources=(str(video),), headless=True,
                                          realtime=False, serve=f"127.0.0.1:{port}"))
    finally:
        stop.set()
        for t in threads:
            t.join(3)
    return {"clients": clients, "fps": round(summary.fps, 2), "frames": summary.frames,
            "wall_s": round(summary.wall_s, 3),
            "client_frames_mean": round(sum(counts) / clients, 1) if clients else 0,
            "load_before": load0, "load_after": load_average()}


def render(rows: list[dict], meta: dict) -> str:
    lines = [f"# Recognition with 0 and {meta['clients']} clients watching (`tsi-live --serve`)", "",
             f"Command: `{meta['command']}`; {meta['cpu']}, {meta['cores']} cores; model {meta['model']}; "
             f"{meta['frames']} frames of 320x240, every frame delivered; video encoded at most "
             f"{meta['serve_fps']} frames/s.", "",
             "| run | clients | recognition fps | wall s | frames each client got | load before -> after |",
             "|---|---|---|---|---|---|"]
    for k, r in enumerate(rows):
        lines.append(f"| {k + 1} | {r['clients']} | {r['fps']} | {r['wall_s']} | {r['client_frames_mean']} | "
                     f"{r['load_before']} -> {r['load_after']} |")
    base = [r["fps"] for r in rows if r["clients"] == 0]
    watched = [r["fps"] for r in rows if r["clients"] > 0]
    if base and watched:
        b, w = sum(base) / len(base), sum(watched) / len(watched)
        lines += ["", f"Mean recognition fps: {b:.2f} with no client, {w:.2f} with {meta['clients']} "
                  f"({100 * (w - b) / b:+.1f}%)."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="tsi-bench-serve-clients", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", help="default: the demo model")
    p.add_argument("--frames", type=int, default=600)
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    if args.frames < 1 or args.clients < 1 or args.repeats < 1:
        p.error("--frames, --clients and --repeats must be positive")
    if args.model and not Path(args.model).is_file():
        p.error(f"--model {args.model}: no such file")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        video = write_video(Path(tmp) / "clip.avi", args.frames, seed=0)
        for _ in range(args.repeats):
            for n in (0, args.clients):
                rows.append(one_run(args.model, video, n))
                print(rows[-1], flush=True)
    meta = {"command": " ".join(["python -m benchmarks.serve_clients", *(sys.argv[1:] if argv is None else argv)]), "cpu": cpu_model(),
            "cores": os.cpu_count(), "model": args.model or "the demo model", "frames": args.frames,
            "clients": args.clients, "serve_fps": SERVE_FPS}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out.with_suffix(".json"), json.dumps({"meta": meta, "runs": rows}, indent=2) + "\n")
    atomic_write_text(args.out.with_suffix(".md"), render(rows, meta))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
