"""INT8 for CPUs (``--int8 --int8-target cpu``, ``export.cpu_int8``) against FP32, both on OpenVINO.

    python export/build_engine.py --int8 --int8-target cpu      # the demo -> artifacts/demo
    python -m benchmarks.cpu_int8 [--dir artifacts/demo] [--name tsi_demo] [--calls 30] [--profile-calls 10]
        [--data artifacts/synthetic/val]

Opens ``<name>.int8.cpu.xml`` and the FP32 ``<name>.onnx`` on the runtime's OpenVINO backend
(``runtime.backends.open_backend``, CPU, ``LATENCY`` hint, ``--threads`` inference threads, 1 by
default), batch 1, one random clip; ``--warmup`` untimed calls each, then ``--calls`` timed calls of
each, the two models alternating call by call (so a change of load hits both); mean and median ms.
The agreement with FP32 is the build's, read from the IR's card (held-out calibration clips). Also
counts the IR's convolutions OpenVINO runs in 8 bits (its runtime model's ``runtimePrecision``) and,
from a separate compilation with ``PERF_COUNT``, where each model's time goes (layer type, kernel).
With ``--data`` (class folders named by the card's labels), the top-1 of both models on one centre
clip per video (``benchmarks.common.val_clips``) and how often they agree. Writes a Markdown file with the command, the processor and the load.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.common.cpu_profile import openvino_ms
from benchmarks.common.val_clips import val_clips
from benchmarks.common.machine import cpu_flags, cpu_model, cpus_usable, load_average, load_note
from export.cpu_int8 import weights_of
from export.names import cpu_int8_ir, standard_graph
from runtime.backends.base import BackendError
from runtime.card import CardError, ModelCard, card_path_for
from runtime.common.cpu import VNNI_FLAGS
from tsi.cli import UsageError, new_output_file
from runtime.common.files import atomic_write_text

DEFAULT_DIR = Path("artifacts") / "demo"
DEFAULT_OUT = Path("benchmarks") / "results" / "cpu_int8_demo.md"
INT8_FLAGS = ("avx2", "avx512f", *VNNI_FLAGS)  # /proc/cpuinfo: what INT8 kernels use


def int8_flags() -> list[str]:
    """Which of :data:`INT8_FLAGS` this processor has (VNNI / AMX: the 8-bit dot products)."""
    return cpu_flags(INT8_FLAGS)


def int8_convolutions(backend) -> tuple[int, int]:
    """(convolutions run in u8/i8, all convolutions) of an OpenVINO backend's compiled model."""
    kinds = [(op.get_rt_info()["layerType"].astype(str), op.get_rt_info()["runtimePrecision"].astype(str))
             for op in backend.compiled.get_runtime_model().get_ops()]
    convs = [p for t, p in kinds if t == "Convolution"]
    return sum(p in ("u8", "i8") for p in convs), len(convs)


def _profile(path: Path, clip: np.ndarray, threads: int, calls: int) -> dict[tuple[str, str], float]:
    from runtime.backends.openvino_backend import read_model

    return openvino_ms(read_model(path), {0: clip}, threads, calls, prepare=True)


def top1(backends: dict, data: Path) -> dict:
    """Top-1 of each backend on one centre clip per video of ``data`` (class folders), and how often
    INT8's top-1 equals FP32's."""
    x, y, skipped = val_clips(data, backends["fp32"].card, None)
    pred = {k: np.array([int(np.argmax(b.infer(c[None]))) for c in x]) for k, b in backends.items()}
    out = {f"{k} top-1": 100 * float(np.mean(p == y)) for k, p in pred.items()}
    return {**out, "agreement": 100 * float(np.mean(pred["int8"] == pred["fp32"])), "clips": int(len(y)),
            "skipped": skipped}


def measure(paths: dict[str, Path], *, threads: int, warmup: int, calls: int,
            profile_calls: int, data: Path | None = None) -> dict[str, list[float]]:
    from runtime.backends import open_backend

    backends = {k: open_backend(p, "openvino", threads=threads) for k, p in paths.items()}
    accuracy = top1(backends, data) if data is not None else None
    clip = np.random.default_rng(0).standard_normal((1, *backends["fp32"].card.input_shape)).astype(np.float32)
    for b in backends.values():
        for _ in range(warmup):
            b.infer(clip)
    times: dict[str, list[float]] = {k: [] for k in backends}
    for _ in range(calls):
        for k, b in backends.items():
            t0 = time.perf_counter()
            b.infer(clip)
            times[k].append(1000 * (time.perf_counter() - t0))
    times["int8 convolutions"] = list(int8_convolutions(backends["int8"]))
    times["kernels"] = {k: _profile(p, clip, threads, profile_calls) for k, p in paths.items()} if profile_calls else {}
    times["accuracy"] = accuracy
    return times


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.cpu_int8", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", type=Path, default=DEFAULT_DIR, help=f"the build's --out (default {DEFAULT_DIR})")
    p.add_argument("--name", default="tsi_demo")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--calls", type=int, default=30)
    p.add_argument("--profile-calls", type=int, default=10,
                   help="calls per model counted by PERF_COUNT for the per-kernel table (0: no table)")
    p.add_argument("--data", type=Path, help="class folders of videos (e.g. artifacts/synthetic/val): top-1 of "
                   "both models on one centre clip each, and their agreement")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args(argv)
    if args.data is not None and not args.data.is_dir():
        p.error(f"--data {args.data} is not a folder of class folders")
    if min(args.calls, args.threads) < 1 or min(args.warmup, args.profile_calls) < 0:
        p.error("--calls and --threads must be >= 1, --warmup and --profile-calls >= 0")
    paths = {"int8": args.dir / cpu_int8_ir(args.name), "fp32": args.dir / standard_graph(args.name)}
    missing = [str(x) for x in paths.values() if not x.is_file()]
    if missing:
        p.error(f"{', '.join(missing)} not found: build them with python export/build_engine.py --int8 "
                f"--int8-target cpu --out {args.dir}")
    try:
        new_output_file(args.out, "--out")
        q = ModelCard.load(card_path_for(paths["int8"])).quantization
    except (UsageError, CardError, OSError) as e:
        p.error(str(e))
    loads = [load_average()]
    try:
        times = measure(paths, threads=args.threads, warmup=args.warmup, calls=args.calls,
                        profile_calls=args.profile_calls, data=args.data)
    except (BackendError, CardError) as e:  # a model file that is not what its name says
        p.error(str(e).splitlines()[0])
    loads.append(load_average())
    n8, nconv = times.pop("int8 convolutions")
    kernels = times.pop("kernels")
    accuracy = times.pop("accuracy")
    stats = {k: (statistics.mean(v), statistics.median(v)) for k, v in times.items()}
    command = " ".join(["python -m benchmarks.cpu_int8", *(sys.argv[1:] if argv is None else argv)])
    lines = [f"# INT8 for CPUs vs FP32 on OpenVINO: `{args.name}`", "",
             f"Command: `{command}` (the IR built by `python export/build_engine.py ... --int8 --int8-target cpu "
             f"--out {args.dir}`; its card: {weights_of(q.get('overflow_fix'))}). Processor: {cpu_model()} ({', '.join(int8_flags()) or 'none'} of "
             f"{', '.join(INT8_FLAGS)}), {cpus_usable()} usable CPUs; load average (1, 5, 15 min) before "
             f"{loads[0]}, after {loads[1]}.", "",
             f"OpenVINO CPU, `LATENCY` hint, {args.threads} inference thread(s), batch 1, one random clip; "
             f"{args.warmup} warm-up calls each, then {args.calls} timed calls each, the two alternating.", "",
             "| model | mean ms | median ms |", "|---|---|---|"]
    lines += [f"| `{paths[k].name}` ({k}) | {m:.2f} | {md:.2f} |" for k, (m, md) in stats.items()]
    lines += ["", f"INT8 / FP32 median: {stats['int8'][1] / stats['fp32'][1]:.2f}. The IR's convolutions run in "
              f"8 bits: {n8} of {nconv}."]
    if kernels:
        lines += ["", "Where the time goes (OpenVINO's per-layer counters, `PERF_COUNT`, a separate compilation, "
                  f"mean of {args.profile_calls} calls): the 5 costliest (layer type, kernel) of each model.", "",
                  "| model | layer type | kernel | ms per call |", "|---|---|---|---|"]
    for k, table in kernels.items():
        lines += [f"| {k} | {t} | `{e}` | {ms:.2f} |" for (t, e), ms in sorted(table.items(), key=lambda x: -x[1])[:5]]
    lines += ["",
              f"Agreement with FP32 (the build's, on {q['held_out_clips']} held-out calibration clips, calibrated "
              f"on {q['calibration_clips']}): top-1 {100 * q['top1_agreement']:.1f}%, logit error "
              f"{q['logit_error']:.3f} of the logit range (bound: {100 * q['min_agreement']:g}%, "
              f"{q['max_logit_error']:g}; within: {q['within_bound']})."]
    if accuracy:
        lines += ["", f"Top-1 on `{args.data}` (one centre clip per video, {accuracy['clips']} clips, "
                  f"{accuracy['skipped']} unreadable skipped): FP32 {accuracy['fp32 top-1']:.1f}%, INT8 "
                  f"{accuracy['int8 top-1']:.1f}% ({accuracy['int8 top-1'] - accuracy['fp32 top-1']:+.1f} points); "
                  f"INT8's top-1 equals FP32's on {accuracy['agreement']:.1f}% of them."]
    note = load_note([x[0] for x in loads if x])
    if note:
        lines += ["", f"Note: {note}."]
    text = "\n".join(lines) + "\n"
    atomic_write_text(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
