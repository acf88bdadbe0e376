"""INT8 for CPUs (``--int8 --int8-target cpu``, ``export.cpu_int8``) against FP32, both on OpenVINO.

    python export/build_engine.py --int8 --int8-target cpu      # the demo -> artifacts/demo
    python -m benchmarks.cpu_int8 [--dir artifacts/demo] [--name tsi_demo] [--calls 30] [--profile-calls 10]

Opens ``<name>.int8.cpu.xml`` and the FP32 ``<name>.onnx`` on the runtime's OpenVINO backend
(``runtime.backends.open_backend``, CPU, ``LATENCY`` hint, ``--threads`` inference threads, 1 by
default), batch 1, one random clip; ``--warmup`` untimed calls each, then ``--calls`` timed calls of
each, the two models alternating call by call (so a change of load hits both); mean and median ms.
The agreement with FP32 is the build's, read from the IR's card (held-out calibration clips). Also
counts the IR's convolutions OpenVINO runs in 8 bits (its runtime model's ``runtimePrecision``) and,
from a separate compilation with ``PERF_COUNT``, where each model's time goes (layer type, kernel).
Writes a Markdown file with the command, the processor and the load.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.common.machine import cpu_model, cpus_usable, load_average, load_note
from export.names import cpu_int8_ir, standard_graph
from runtime.card import ModelCard, card_path_for
from runtime.common.files import atomic_write_text

DEFAULT_DIR = Path("artifacts") / "demo"
DEFAULT_OUT = Path("benchmarks") / "results" / "cpu_int8_demo.md"
INT8_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")  # /proc/cpuinfo: what INT8 kernels use


def int8_flags() -> list[str]:
    """Which of :data:`INT8_FLAGS` this processor has (VNNI / AMX: the 8-bit dot products)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return [f for f in INT8_FLAGS if f in flags]


def int8_convolutions(backend) -> tuple[int, int]:
    """(convolutions run in u8/i8, all convolutions) of an OpenVINO backend's compiled model."""
    kinds = [(op.get_rt_info()["layerType"].astype(str), op.get_rt_info()["runtimePrecision"].astype(str))
             for op in backend.compiled.get_runtime_model().get_ops()]
    convs = [p for t, p in kinds if t == "Convolution"]
    return sum(p in ("u8", "i8") for p in convs), len(convs)


def kernel_ms(path: Path, clip: np.ndarray, threads: int, calls: int) -> dict[tuple[str, str], float]:
    """Mean ms per call of each (layer type, kernel) of ``path`` compiled apart with OpenVINO's
    ``PERF_COUNT`` (its own compilation: the counters are kept out of the timed calls)."""
    import openvino

    core = openvino.Core()
    compiled = core.compile_model(core.read_model(str(path)), "CPU", {
        "PERF_COUNT": "YES", "PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32",
        "INFERENCE_NUM_THREADS": threads})
    request, total = compiled.create_infer_request(), {}
    request.infer({0: clip})
    for _ in range(calls):
        request.infer({0: clip})
        for info in request.profiling_info:
            key = (info.node_type, info.exec_type)
            total[key] = total.get(key, 0.0) + info.real_time.total_seconds() * 1000 / calls
    return total


def measure(paths: dict[str, Path], *, threads: int, warmup: int, calls: int,
            profile_calls: int) -> dict[str, list[float]]:
    from runtime.backends import open_backend

    backends = {k: open_backend(p, "openvino", threads=threads) for k, p in paths.items()}
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
    times["kernels"] = {k: kernel_ms(p, clip, threads, profile_calls) for k, p in paths.items()} if profile_calls else {}
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
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args(argv)
    if min(args.calls, args.threads) < 1 or min(args.warmup, args.profile_calls) < 0:
        p.error("--calls and --threads must be >= 1, --warmup and --profile-calls >= 0")
    paths = {"int8": args.dir / cpu_int8_ir(args.name), "fp32": args.dir / standard_graph(args.name)}
    missing = [str(x) for x in paths.values() if not x.is_file()]
    if missing:
        p.error(f"{', '.join(missing)} not found: build them with python export/build_engine.py --int8 "
                f"--int8-target cpu --out {args.dir}")
    loads = [load_average()]
    times = measure(paths, threads=args.threads, warmup=args.warmup, calls=args.calls,
                    profile_calls=args.profile_calls)
    loads.append(load_average())
    q = ModelCard.load(card_path_for(paths["int8"])).quantization
    n8, nconv = times.pop("int8 convolutions")
    kernels = times.pop("kernels")
    stats = {k: (statistics.mean(v), statistics.median(v)) for k, v in times.items()}
    command = " ".join(["python -m benchmarks.cpu_int8", *(sys.argv[1:] if argv is None else argv)])
    lines = [f"# INT8 for CPUs vs FP32 on OpenVINO: `{args.name}`", "",
             f"Command: `{command}` (the IR built by `python export/build_engine.py --int8 --int8-target cpu "
             f"--out {args.dir}`). Processor: {cpu_model()} ({', '.join(int8_flags()) or 'none'} of "
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
    note = load_note([x[0] for x in loads if x])
    if note:
        lines += ["", f"Note: {note}."]
    text = "\n".join(lines) + "\n"
    atomic_write_text(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
