"""TSI/TSN on each CPU backend, before and after the runtime's CPU attention (issue 21), in one run,
with the per-operation profile of each model.

    python -m benchmarks.cpu_backends [--threads 1] [--rounds 5] [--profile-calls 2] [--int8-clips 8] [--out FILE]

TSN-R50 and TSI-R50 (224², T=8, batch 1, random weights, no zero-initialised branches,
``benchmarks.common.r50.export_r50``) exported once. Six models, their calls alternating in one
loop (the order flipping every round, so a change of load hits them all):

- onnxruntime: TSN-R50 and TSI-R50 as the runtime opens them (``open_session``: TSI's attentions
  over >= ``kernel_session.CUT_MIN_KEYS`` keys on the C++ kernel, as the kernel's operation in the
  graph where it builds, with each CTI unit as the library's CTI operation), TSI-R50 in a plain ``InferenceSession`` of the same graph and options
  (before), and, where the operation builds, TSI-R50 with the graph cut around the kernel instead
  (``kernel_session(..., in_graph=False)``: the runtime's session before the operation);
- OpenVINO: TSN-R50 and TSI-R50 on the runtime's OpenVINO backend (``openvino_graph.prepare_for_cpu``:
  the attentions on the kernel, splits as gathers, temporal convs as shifted sums), and TSI-R50 compiled from the same graph
  without the rewrite (before), the same configuration (LATENCY hint, FP32, ``--threads``).

With ``--int8-clips N`` (> 0), also both models quantized for CPUs as ``--int8 --int8-target cpu``
quantizes (``export.cpu_int8.write_cpu_int8_ir``: NNCF, the attention in float, the overflow fix) on N
random clips -- random weights: the cost is measured, not the accuracy -- on the runtime's OpenVINO
backend, in the same loop: INT8 against FP32 of each.

Each TSI's logits against PyTorch's float64 forward of the same weights. Then, from separate
sessions / compilations with the counters on (``benchmarks.common.cpu_profile``), the time per
operation type of each model. Writes ``--out`` (Markdown) and the figures as JSON beside it, with
the command, the processor (and its AVX-512: the kernel's vector width) and the load.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import numpy as np

from benchmarks.common.cpu_profile import onnxruntime_ms, openvino_ms, top
from benchmarks.common.machine import cpu_flags, cpu_model, cpus_usable, load_average, load_note
from benchmarks.common.paired import paired_throughput
from runtime.common.files import atomic_write_text
from tsi.cli import UsageError, new_output_file

DEFAULT_OUT = Path("benchmarks") / "results" / "cpu_backends.md"
KERNEL_FLAGS = ("avx2", "avx512f")  # the kernel's 8- or 16-wide form
ORT, OV = "onnxruntime", "OpenVINO"
CUT = "TSI-R50 cut around the kernel"
NAMES = {ORT: ("TSN-R50", "TSI-R50 before (plain session)", "TSI-R50 after (runtime session)"),
         OV: ("TSN-R50", "TSI-R50 before (no rewrite)", "TSI-R50 after (runtime backend)")}


def _ort_models(paths: dict, threads: int, profile: bool = False) -> dict:
    """{name: onnxruntime session} of :data:`NAMES` [ORT], and :data:`CUT` where the kernel's
    operation builds; ``profile``: sessions with profiling on."""
    import onnxruntime as ort

    from runtime.backends.kernel_session import kernel_session
    from runtime.backends.onnxruntime_backend import open_session, session_options
    from runtime.kernels import ort_op

    def options():
        opts = session_options(threads)
        if profile:
            opts.enable_profiling = True
            opts.profile_file_prefix = str(Path(tempfile.gettempdir()) / "tsi_cpu_backends")
        return opts

    plain = lambda p: ort.InferenceSession(str(p), options(), providers=["CPUExecutionProvider"])  # noqa: E731
    tsn, before, after = NAMES[ORT]
    cut = {CUT: kernel_session(paths["tsi"], options(), in_graph=False)} if ort_op.available() else {}
    if not profile:
        return {tsn: open_session(paths["tsn"], ["cpu"], threads), before: plain(paths["tsi"]), **cut,
                after: open_session(paths["tsi"], ["cpu"], threads)}
    return {tsn: plain(paths["tsn"]), before: plain(paths["tsi"]), **cut, after: kernel_session(paths["tsi"], options())}


def _ov_models(paths: dict, threads: int) -> dict:
    """{name: callable(clip)} of :data:`NAMES` [OV]."""
    import openvino

    from runtime.backends import open_backend

    tsn, before, after = NAMES[OV]
    core = openvino.Core()
    plain = core.compile_model(core.read_model(str(paths["tsi"])), "CPU", {
        "PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": threads})
    request = plain.create_infer_request()
    backends = {k: open_backend(paths[f], "openvino", threads=threads) for k, f in ((tsn, "tsn"), (after, "tsi"))}
    return {tsn: backends[tsn].infer, before: lambda x: np.array(request.infer({0: x})[plain.outputs[0]]),
            after: backends[after].infer}


def _int8_models(paths: dict, threads: int, clips: int, folder: Path) -> dict:
    """{"TSN-R50 INT8" / "TSI-R50 INT8": callable(clip)}: each R50 graph quantized for CPUs on ``clips``
    random clips (``export.cpu_int8.write_cpu_int8_ir``), saved as an IR in ``folder`` and opened on the
    runtime's OpenVINO backend."""
    from export.cpu_int8 import write_cpu_int8_ir
    from export.names import cpu_int8_ir
    from export.onnx_export import get_card
    from export.variants import load_graph
    from runtime.backends import open_backend

    calib = np.random.default_rng(1).standard_normal((clips, 8, 3, 224, 224)).astype(np.float32)
    out = {}
    for fam in ("tsn", "tsi"):
        proto = load_graph(paths[fam])  # read once: the quantizer's scope and the card
        xml = write_cpu_int8_ir(paths[fam], calib, folder / cpu_int8_ir(fam), proto=proto)
        card = get_card(proto, str(paths[fam])).replace(precision="int8")
        out[f"{fam.upper()}-R50 INT8"] = open_backend(xml, "openvino", threads=threads, card=card).infer
    return out


def _ort_call(session):
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})[0]


def _kernel_timer():
    """A patch of the kernel that adds each call's ms to ``timer.ms`` (the kernel's share in the
    runtime session's profile, which onnxruntime's profiler does not see)."""
    from runtime.kernels import cpu_attention

    original = cpu_attention.saliency_attention
    timer = SimpleNamespace(ms=0.0)

    def timed(*a, **k):
        t0 = time.perf_counter()
        try:
            return original(*a, **k)
        finally:
            timer.ms += 1000 * (time.perf_counter() - t0)

    return mock.patch.object(cpu_attention, "saliency_attention", timed), timer


def profiles(paths: dict, clip: np.ndarray, threads: int, calls: int) -> dict:
    """{backend: {model name: {operation: ms per call}}}."""
    from runtime.backends.openvino_backend import read_model

    out = {ORT: {}, OV: {}}
    for name, session in _ort_models(paths, threads, profile=True).items():
        sessions = getattr(session, "sessions", [session])
        patch, timer = _kernel_timer()
        with patch:
            found = onnxruntime_ms(sessions, lambda s=session: _ort_call(s)(clip), calls)
        if timer.ms:
            found["SaliencyAttention (C++ kernel)"] = timer.ms / (calls + 1)  # the first call included
        out[ORT][name] = found
    tsn, before, after = NAMES[OV]
    for name, fam, prepare in ((tsn, "tsn", True), (before, "tsi", False), (after, "tsi", True)):
        found = openvino_ms(read_model(paths[fam]), {0: clip}, threads, calls, prepare=prepare)
        out[OV][name] = {f"{t} ({k})": ms for (t, k), ms in found.items()}
    return out


def measure(args) -> dict:
    import torch

    from benchmarks.common.r50 import export_r50
    from export.parity import compare_logits

    with tempfile.TemporaryDirectory() as tmp:
        paths, nets = export_r50(tmp)
        clip = np.random.default_rng(0).standard_normal((1, 8, 3, 224, 224)).astype(np.float32)
        with torch.inference_mode():
            exact = nets["tsi"].double()(torch.from_numpy(clip).double()).numpy()
        runners = {(ORT, k): _ort_call(s) for k, s in _ort_models(paths, args.threads).items()}
        runners.update({(OV, k): fn for k, fn in _ov_models(paths, args.threads).items()})
        if args.int8_clips:
            runners.update({(OV, k): fn for k, fn in _int8_models(paths, args.threads, args.int8_clips, Path(tmp)).items()})
        parity = {f"{b}: {k}": str(compare_logits(exact, fn(clip))) for (b, k), fn in runners.items() if "TSI" in k}
        timed = paired_throughput({f"{b}|{k}": fn for (b, k), fn in runners.items()}, clip, rounds=args.rounds)
        prof = profiles(paths, clip, args.threads, args.profile_calls) if args.profile_calls else {}
    ms = {b: {k: timed[f"{b}|{k}"]["median_ms"] for (bb, k) in runners if bb == b} for b in (ORT, OV)}
    spread = {b: {k: timed[f"{b}|{k}"]["spread_ms"] for (bb, k) in runners if bb == b} for b in (ORT, OV)}
    return {"median_ms": ms, "spread_ms": spread, "parity_vs_float64": parity, "profiles": prof}


def report(args, command: str, res: dict, loads: list) -> str:
    from runtime.backends.kernel_session import CUT_MIN_KEYS
    from runtime.kernels import ort_op
    from runtime.kernels.cpu_attention import MIN_KEYS

    flags = cpu_flags(KERNEL_FLAGS)
    lines = ["# TSI/TSN on the CPU backends, before and after the runtime's CPU attention", "",
             f"Command: `{command}`. Processor: {cpu_model()} ({', '.join(flags) or 'neither'} of "
             f"{', '.join(KERNEL_FLAGS)}: the kernel's {'16' if 'avx512f' in flags else '8'}-wide form), "
             f"{cpus_usable()} usable CPUs, {args.threads} thread(s). Load average (1, 5, 15 min) before "
             f"{loads[0]}, after {loads[1]}."]
    note = load_note([x[0] for x in loads if x])
    if note:
        lines.append(f"Note: {note}.")
    lines += ["", f"TSN-R50 and TSI-R50, 224², T=8, batch 1, random weights; the six models' calls alternating, "
              f"{args.rounds} rounds; median ms per clip. After: the long attentions on the C++ kernel "
              + (f"(onnxruntime: those over >= {MIN_KEYS} keys as the kernel's onnxruntime operation in the graph, "
                 "reading the feature maps channel-major, and each CTI unit as the library's CTI operation; cut: the "
                 f"graph cut around those over >= {CUT_MIN_KEYS}, the kernel called between the pieces, the CTI units "
                 "left to onnxruntime" if ort_op.available() else
                 f"(onnxruntime: the graph cut around those over >= {CUT_MIN_KEYS} keys (the kernel's operation is "
                 f"unavailable: {ort_op.unavailable_reason()})")
              + f"; OpenVINO: an operation calling it for those over >= {MIN_KEYS}, its splits as gathers and its "
                "temporal convs as shifted sums).", "",
              "| backend | model | median ms | min-max ms | TSI/TSN throughput |", "|---|---|---|---|---|"]
    for b in (ORT, OV):
        ms, tsn = res["median_ms"][b], res["median_ms"][b][NAMES[b][0]]
        for k in [n for n in (*NAMES[b][:2], CUT, NAMES[b][2]) if n in ms]:
            lo, hi = res["spread_ms"][b][k]
            lines.append(f"| {b} | {k} | {ms[k]:.0f} | {lo:.0f}-{hi:.0f} | **{tsn / ms[k]:.2f}** |")
    int8 = {k: v for k, v in res["median_ms"][OV].items() if k.endswith("INT8")}
    if int8:
        fp32 = {"TSN-R50 INT8": res["median_ms"][OV][NAMES[OV][0]], "TSI-R50 INT8": res["median_ms"][OV][NAMES[OV][2]]}
        lines += ["", f"INT8 for CPUs on OpenVINO (the same loop; NNCF on {args.int8_clips} random clips, the "
                  "attention in float, the overflow fix; the runtime's backend):", "",
                  "| model | median ms | FP32 median ms | INT8 speed-up |", "|---|---|---|---|"]
        lines += [f"| {k} | {v:.0f} | {fp32[k]:.0f} | **{fp32[k] / v:.2f}x** |" for k, v in int8.items()]
    lines += ["", "TSI's logits against PyTorch's float64 forward of the same weights, one clip:", ""]
    lines += [f"- {k}: {v}" for k, v in res["parity_vs_float64"].items()]
    for b, models in res["profiles"].items():
        lines += ["", f"## Where {b}'s time goes (ms per call, mean of {args.profile_calls} calls, counters on: "
                  "a separate session / compilation)", "",
                  "| operation | " + " | ".join(models) + " |", "|---|" + "---|" * len(models)]
        for key in top(models, 12):
            lines.append(f"| {key} | " + " | ".join(f"{m.get(key, 0.0):.1f}" for m in models.values()) + " |")
        lines.append("| all | " + " | ".join(f"{sum(m.values()):.0f}" for m in models.values()) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.cpu_backends", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1, help="threads of onnxruntime and OpenVINO")
    p.add_argument("--rounds", type=int, default=5, help="timed calls per model")
    p.add_argument("--profile-calls", type=int, default=2, help="calls per profile (0: no profile)")
    p.add_argument("--int8-clips", type=int, default=8, help="random calibration clips of the INT8 rows (0: none)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args(argv)
    if args.threads < 1 or args.rounds < 1 or args.profile_calls < 0 or args.int8_clips < 0:
        p.error("--threads and --rounds must be >= 1, --profile-calls and --int8-clips >= 0")
    try:  # before minutes of work: an --out that cannot be written
        new_output_file(args.out, "--out")
    except UsageError as e:
        p.error(str(e))
    from runtime.kernels import cpu_attention

    if not cpu_attention.available():
        p.error(f"the CPU attention kernel is unavailable: {cpu_attention.unavailable_reason()}")
    import importlib.util

    if importlib.util.find_spec("openvino") is None:
        p.error('OpenVINO is not installed: pip install ".[openvino]"')
    import torch

    torch.set_num_threads(args.threads)
    command = ("python -m benchmarks.cpu_backends " + " ".join(argv if argv is not None else sys.argv[1:])).strip()
    before = load_average()
    res = measure(args)
    loads = [before, load_average()]
    atomic_write_text(args.out, report(args, command, res, loads))
    atomic_write_text(args.out.with_suffix(".json"), json.dumps(
        {"command": command, "cpu": cpu_model(), "flags": cpu_flags(KERNEL_FLAGS), "threads": args.threads,
         "load": loads, **res}, indent=1, default=str) + "\n")
    print(args.out.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
