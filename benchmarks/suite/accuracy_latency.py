"""Accuracy vs latency: TSN, TSM and TSI at each T, precision and backend, measured side by side on
this machine, with the machine, the library versions and the load average heading the report.

    python -m benchmarks.suite.accuracy_latency                # the full run (writes benchmarks/results/)
    python -m benchmarks.suite.accuracy_latency --quick        # demo size only, < 3 min on 2 CPU cores
    python -m benchmarks.suite.accuracy_latency --data DIR --format ssv2 --checkpoint runs/x/best.pt
    python -m benchmarks.suite.accuracy_latency --trtexec-json times.json --trtexec-json profile.json

Rows: the demo checkpoint's geometry (its trained TSI, and TSN/TSM with random weights: cost only)
and ResNet-50 at 224² (random weights: cost only), at each ``--frames``; backends PyTorch eager,
PyTorch compiled (torch.compile), onnxruntime (FP32, FP16 graph, INT8 Q/DQ graph, and for TSI the
MultiHeadAttention variant) and TensorRT; CUDA where a GPU exists. What cannot run here is listed
as absent with the reason. Columns: top-1 (trained weights only), latency p50/p95 at batch 1,
throughput at each batch, peak memory, file size, GMACs. Then the TSI/TSN throughput ratio per
backend, the attention's share of TSI's onnxruntime CPU time, any trtexec JSON, and on a Jetson the
power from tegrastats. Outputs in ``--out``: ``accuracy_latency.json`` (schema: docs/benchmarks.md),
``.md``, ``_pareto.png``, ``_throughput.png`` (``accuracy_latency_quick.*`` for ``--quick``).
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import signal
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from benchmarks.common.machine import cpus_usable, load_average, load_note, machine_info
from benchmarks.suite.measure import absent, base_row, measure_row
from benchmarks.suite.models import (BENCH_FAMILIES, ModelSpec, build_torch, demo_specs, model_cost, no_accuracy_reason,
                               r50_specs)
from benchmarks.suite.report import FORMAT, VERSION, tsi_tsn_ratios
from benchmarks.suite.runners import (BACKENDS, PRECISIONS, TORCH_INT8_REASON, ort_runner, ov_runner, tensorrt_reason,
                                      torch_runner)
from runtime.common.progress import progress_bar

log = logging.getLogger("benchmarks.suite.accuracy_latency")

DEFAULT_OUT = Path("benchmarks/results")
DEFAULT_DATA = Path("artifacts/synthetic")
SYNTHETIC_CMD = "python -m tsi.data.synthetic --out artifacts/synthetic --train 80 --val 20 --seed 0"


class BenchError(Exception):
    """A bad option or input: reported in one line, exit status 2."""


def default_checkpoint() -> Path:
    from tsi.assets import DEMO_CHECKPOINT

    return DEMO_CHECKPOINT


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tsi-bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path, default=None, help="trained model (default: the shipped demo)")
    p.add_argument("--data", type=Path, default=None,
                   help=f"dataset for top-1 (default {DEFAULT_DATA}; --quick: a small synthetic split made on the fly)")
    p.add_argument("--format", default="folder", choices=["folder", "list", "ssv2", "kinetics"])
    p.add_argument("--split", default="val")
    p.add_argument("--list", dest="list_file")
    p.add_argument("--labels", dest="labels_file")
    p.add_argument("--max-videos", type=int, help="score at most N videos (evenly spread)")
    p.add_argument("--calib", type=Path, help="videos for INT8 calibration (default: <data>/train)")
    p.add_argument("--calib-clips", type=int, default=32)
    p.add_argument("--calib-method", default="percentile", choices=["entropy", "percentile", "minmax"],
                   help="for trained weights (random-weight models calibrate min-max: their accuracy is not measured)")
    p.add_argument("--frames", type=int, nargs="+", default=[8, 16], help="T of every model")
    p.add_argument("--no-r50", action="store_true", help="leave out the ResNet-50 224² rows")
    p.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    p.add_argument("--precisions", nargs="+", default=list(PRECISIONS), choices=PRECISIONS)
    p.add_argument("--compile-frames", type=int, nargs="*", default=[8],
                   help="T at which torch.compile rows run (each compile takes minutes on a small CPU)")
    p.add_argument("--compile-families", nargs="*", default=["tsn", "tsi"], choices=BENCH_FAMILIES,
                   help="models that get torch.compile rows (the TSI/TSN pair by default)")
    p.add_argument("--r50-precisions", nargs="+", default=["fp32"], choices=PRECISIONS,
                   help="precisions of the R50 rows (default FP32: the demo rows show FP16/INT8 on this CPU; "
                        "a calibration of R50 at 224² alone takes minutes on 2 cores)")
    p.add_argument("--r50-repeats", type=int, default=3, help="timed batch-1 runs per R50 row")
    p.add_argument("--pair-rounds", type=int, default=6,
                   help="alternating TSN/TSI calls per backend for the paired ratio (0: none)")
    p.add_argument("--repeats", type=int, default=10, help="timed batch-1 runs per row")
    p.add_argument("--batches", type=int, nargs="+", default=[4, 16], help="throughput batches, demo size")
    p.add_argument("--r50-batches", type=int, nargs="+", default=[2], help="throughput batches, R50 224²")
    p.add_argument("--min-time", type=float, default=2.0, help="seconds each throughput batch is timed for")
    p.add_argument("--threads", type=int, default=cpus_usable(), help="torch and onnxruntime intra-op threads")
    p.add_argument("--trtexec-json", type=Path, action="append", default=[],
                   help="trtexec --exportTimes / --exportProfile JSON to fold into the report (repeatable)")
    p.add_argument("--power", choices=["auto", "off"], default="auto",
                   help="auto: sample tegrastats during throughput runs where it exists (a Jetson)")
    p.add_argument("--quick", action="store_true",
                   help="demo size, T=8, no torch.compile, 2 val videos per class made on the fly: < 3 min on 2 cores")
    p.add_argument("--time-budget", type=float, default=None, metavar="MIN",
                   help="start no row after MIN minutes: the rest are listed absent with that reason")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"report folder (default {DEFAULT_OUT}/)")
    return p


def apply_quick(args) -> None:
    args.frames, args.no_r50, args.compile_frames = [8], True, []
    args.repeats, args.batches, args.min_time = min(args.repeats, 5), [8], min(args.min_time, 0.5)
    args.calib_clips = min(args.calib_clips, 11)


def check_args(args) -> None:
    for name in ("repeats", "r50_repeats", "calib_clips", "threads"):
        if getattr(args, name) < 1:
            raise BenchError(f"--{name.replace('_', '-')} must be >= 1 (got {getattr(args, name)})")
    if any(b < 1 for b in args.batches + args.r50_batches) or any(t < 2 for t in args.frames):
        raise BenchError("batch sizes must be >= 1 and --frames >= 2")
    if args.checkpoint is not None and not args.checkpoint.is_file():
        raise BenchError(f"--checkpoint {args.checkpoint} not found")
    for f in args.trtexec_json:
        if not f.is_file():
            raise BenchError(f"--trtexec-json {f} not found")
    if args.out.exists() and not args.out.is_dir():
        raise BenchError(f"--out {args.out} exists and is not a folder")


def out_paths(out: Path, quick: bool) -> dict[str, Path]:
    stem = "accuracy_latency_quick" if quick else "accuracy_latency"
    return {"json": out / f"{stem}.json", "md": out / f"{stem}.md", "pareto": out / f"{stem}_pareto.png",
            "throughput": out / f"{stem}_throughput.png"}


def check_outputs(paths: dict[str, Path]) -> None:
    """Replace only a previous report of this tool: a foreign file at the JSON path is refused."""
    j = paths["json"]
    if j.exists():
        try:
            ours = json.loads(j.read_text()).get("format") == FORMAT
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            ours = False
        if not ours:
            raise BenchError(f"{j} exists and is not a report of this benchmark; choose another --out")
        log.info("replacing the previous report in %s", j.parent)


# -- the run ---------------------------------------------------------------------------------------
def resolve_data(args, tmp: Path) -> tuple[Path | None, Path | None]:
    """(dataset root for top-1, calibration folder)."""
    data = args.data
    if data is None and args.quick:
        from benchmarks.suite.evaldata import make_quick_data

        log.info("--quick: writing a small synthetic dataset (2 val + 1 train video per class)")
        data = make_quick_data(tmp / "synthetic", val=2, train=1)
    elif data is None:
        data = DEFAULT_DATA
        if not data.is_dir():
            raise BenchError(f"no dataset at {data} for top-1: make it with `{SYNTHETIC_CMD}` or pass --data "
                             "(or --quick)")
    elif not data.exists():
        raise BenchError(f"--data {data} not found")
    calib = args.calib or (data / "train" if (data / "train").is_dir() else None)
    if args.calib is not None and not args.calib.is_dir():
        raise BenchError(f"--calib {args.calib} is not a folder of videos")
    return data, calib


class Bench:
    def __init__(self, args, report: dict, paths: dict, tmp: Path):
        self.args, self.report, self.paths, self.tmp = args, report, paths, tmp
        self.eval_sets: dict = {}
        self.costs: dict = {}
        self.deadline = None if args.time_budget is None else time.time() + 60 * args.time_budget
        self.calib_cache: dict = {}
        self.graphs: dict = {}
        self.power = None
        if args.power == "auto":
            from benchmarks.suite.tegrastats import TegrastatsSampler, tegrastats_path

            if tegrastats_path():
                self.power = TegrastatsSampler
        report["power"] = {"note": "tegrastats sampled during every throughput measurement: average input watts "
                                   "and mJ per clip in each row's `power`" if self.power else
                           ("tegrastats not found (not a Jetson): no power figures" if args.power == "auto"
                            else "--power off")}

    def save_partial(self) -> None:
        from runtime.common.files import atomic_write_text

        atomic_write_text(self.paths["json"], json.dumps(self.report, indent=1, default=str))

    def add(self, row: dict) -> None:
        self.report["rows"].append(row)
        self.save_partial()

    # -- data ------------------------------------------------------------------------------------
    def eval_set(self, card):
        from benchmarks.suite.evaldata import load_eval_set

        key = (card.frames, card.input_size, card.resize_short, tuple(card.labels))
        if key not in self.eval_sets:
            a = self.args
            try:
                es = load_eval_set(self.data, card, fmt=a.format, split=a.split, list_file=a.list_file,
                                   labels_file=a.labels_file, max_videos=a.max_videos)
            except Exception as e:  # noqa: BLE001 - a dataset that does not fit the model is stated
                raise BenchError(f"--data {self.data}: {e}") from None
            self.eval_sets[key] = es
            self.report["eval"] = {"source": es.source, "clips": int(len(es.labels)), "skipped": es.skipped}
        return self.eval_sets[key]

    def calib_clips(self, card, n: int):
        from benchmarks.suite.evaldata import calibration_clips

        key = (card.frames, card.input_size, card.resize_short, n)
        if self.calib is None:
            return None
        if key not in self.calib_cache:
            try:  # random weights need no representative ranges: a few clips give the graph its Q/DQ layout
                self.calib_cache[key] = calibration_clips(self.calib, card, n, min_clips=min(n, 8))
            except Exception as e:  # noqa: BLE001 - the INT8 rows say why they are absent
                self.calib_cache[key] = f"calibration clips from {self.calib}: {e}"
        return self.calib_cache[key]

    # -- rows ------------------------------------------------------------------------------------
    def setup(self, spec: ModelSpec):
        """(cost, card, common measure_row options) of a model."""
        a = self.args
        if spec.key not in self.costs:
            self.costs[spec.key] = model_cost(spec)
        cost = self.costs[spec.key]
        card = build_torch(spec)[1]
        es = self.eval_set(card) if spec.trained else None
        why = None if spec.trained else no_accuracy_reason(spec)
        batches = a.batches if spec.group == "demo" else a.r50_batches
        precisions = a.precisions if spec.group == "demo" else [p for p in a.precisions if p in a.r50_precisions]
        self.precisions = precisions
        repeats = a.repeats if spec.group == "demo" else a.r50_repeats
        common = dict(input_shape=card.input_shape, repeats=repeats, batches=batches, min_time=a.min_time,
                      eval_set=es, eval_batch=max(batches), no_top1_reason=why, power=self.power)
        return cost, card, common

    def measure(self, row: dict, make_runner, **common) -> None:
        if self.deadline is not None and time.time() > self.deadline:
            self.add(absent(row, f"not run: --time-budget {self.args.time_budget:g} min reached"))
        else:
            try:
                self.add(measure_row(row, make_runner, **common))
            except KeyboardInterrupt:  # the row being measured is listed, not lost
                self.add(absent(row, "interrupted while measuring (SIGTERM/SIGHUP/Ctrl-C)"))
                raise

    def run_spec(self, spec: ModelSpec, backends: tuple[str, ...]) -> None:
        a = self.args
        cost, card, common = self.setup(spec)
        precisions = self.precisions
        cuda_why = self.report["machine"]["gpu_reason"]
        for backend in ("pytorch-eager", "pytorch-compiled"):
            if backend not in a.backends or backend not in backends:
                continue
            compiled = backend == "pytorch-compiled"
            for prec in a.precisions:
                row = base_row(spec, backend, prec, "cpu", cost)
                if prec not in precisions:
                    self.add(absent(row, f"not run: R50 rows take --r50-precisions {a.r50_precisions}"))
                    continue
                if prec == "int8":
                    self.add(absent(row, TORCH_INT8_REASON))
                elif compiled and a.quick:
                    self.add(absent(row, "--quick leaves torch.compile out (a compile takes minutes on 2 cores)"))
                elif compiled and spec.family not in a.compile_families:
                    self.add(absent(row, f"not run: torch.compile only for --compile-families {a.compile_families} "
                                         "(each compile takes minutes on this CPU)"))
                elif compiled and spec.cfg.frames not in a.compile_frames:
                    self.add(absent(row, f"not run: torch.compile only at T in --compile-frames {a.compile_frames} "
                                         "(each compile takes minutes per model and batch size on this CPU)"))
                elif compiled and prec == "fp16":
                    self.add(absent(row, "not run: compiled FP16 on the CPU (compile time); eager FP16 shows FP16 here"))
                else:
                    self.measure(row, lambda: torch_runner(build_torch(spec)[0], prec, compiled=compiled), **common)
            if cuda_why:
                self.add(absent(base_row(spec, backend, "*", "cuda", cost), cuda_why))
        if "onnxruntime" in a.backends and "onnxruntime" in backends:
            self.run_onnxruntime(spec, card, cost, common)
        if "openvino" in a.backends and "onnxruntime" in backends:
            self.run_openvino(spec, card, cost, common)
        if "tensorrt" in a.backends and "tensorrt" in backends:
            why_trt = tensorrt_reason()
            self.add(absent(base_row(spec, "tensorrt", "*", "cuda", cost), why_trt) if why_trt else
                     absent(base_row(spec, "tensorrt", "*", "cuda", cost),
                            "TensorRT engines are built and timed on the target (export/build_engine.py); "
                            "fold their trtexec JSON in with --trtexec-json"))

    def run_onnxruntime(self, spec: ModelSpec, card, cost: dict, common: dict) -> None:
        import numpy as np

        from benchmarks.suite.graphs import build_graphs

        a = self.args
        if self.deadline is not None and time.time() > self.deadline:
            for prec in a.precisions:
                self.add(absent(base_row(spec, "onnxruntime", prec, "cpu", cost),
                                f"not run: --time-budget {a.time_budget:g} min reached"))
            return
        n_calib = a.calib_clips if spec.trained else min(a.calib_clips, 4)
        calib = self.calib_clips(card, n_calib) if "int8" in self.precisions else None
        calib_error = calib if isinstance(calib, str) else None
        parity = (self.eval_set(card).clips[:4] if spec.trained else
                  np.random.default_rng(1).standard_normal((2, *card.input_shape)).astype(np.float32))
        t0 = time.perf_counter()
        graphs = build_graphs(spec, self.tmp, precisions=self.precisions, calib_clips=None if calib_error else calib,
                              calib_method=a.calib_method if spec.trained else "minmax",
                              mha=spec.family == "tsi", parity_clips=parity)
        if calib_error and "int8" in graphs:
            graphs["int8"] = calib_error
        log.info("%s: graphs built in %.0f s", spec.key, time.perf_counter() - t0)
        self.graphs[spec.key] = graphs
        variants = [(p, "standard", p) for p in a.precisions] + ([("fp32", "mha", "fp32-mha")] if "fp32-mha" in graphs else [])
        for prec, variant, key in variants:
            row = base_row(spec, "onnxruntime", prec, "cpu", cost, variant)
            g = graphs.get(key, f"not run: R50 rows take --r50-precisions {a.r50_precisions}")
            if isinstance(g, str):
                self.add(absent(row, g))
                continue
            if variant == "mha":
                row["notes"] = f"parity vs the standard graph: {graphs.get('mha_parity')}"
            if prec == "int8":
                row["notes"] = (f"calibrated on {n_calib} clips of {self.calib}, "
                                f"{a.calib_method if spec.trained else 'minmax'}")
            self.measure(row, lambda g=g: ort_runner(g, threads=a.threads), **common)
        if self.report["machine"]["gpu_reason"]:
            self.add(absent(base_row(spec, "onnxruntime", "*", "cuda", cost), self.report["machine"]["gpu_reason"]))

    def run_openvino(self, spec: ModelSpec, card, cost: dict, common: dict) -> None:
        """OpenVINO rows: the FP32 graph the onnxruntime rows built, and it quantized for CPUs as
        ``--int8 --int8-target cpu`` does (``export.cpu_int8.write_cpu_int8_ir``: NNCF, the attention
        in float, the overflow fix) on the rows' calibration clips; FP16 is not an OpenVINO graph."""
        a = self.args
        graphs = self.graphs.get(spec.key)
        for prec in a.precisions:
            row = base_row(spec, "openvino", prec, "cpu", cost)
            if graphs is None:
                self.add(absent(row, "not run: the OpenVINO rows read the graphs the onnxruntime rows build "
                                     "(add onnxruntime to --backends)"))
            elif prec == "fp16":
                self.add(absent(row, "not run: OpenVINO takes the FP32 graph (FP16 would be its inference-precision "
                                     "hint, a CPU without FP16 arithmetic runs it in FP32)"))
            elif prec not in self.precisions:
                self.add(absent(row, f"not run: R50 rows take --r50-precisions {a.r50_precisions}"))
            elif isinstance(graphs.get("fp32"), str):  # why the FP32 graph could not be built
                self.add(absent(row, graphs["fp32"]))
            elif prec == "fp32":
                self.measure(row, lambda: ov_runner(graphs["fp32"], threads=a.threads), **common)
            else:
                n_calib = a.calib_clips if spec.trained else min(a.calib_clips, 4)
                row["notes"] = f"NNCF on {n_calib} clips of {self.calib}" if spec.trained else \
                    f"NNCF on {n_calib} random clips (random weights: cost only)"
                self.measure(row, lambda: self._ov_int8(spec, card, n_calib), **common)

    def _ov_int8(self, spec: ModelSpec, card, n_calib: int):
        import numpy as np

        from benchmarks.suite.runners import Absent
        from export.cpu_int8 import write_cpu_int8_ir
        from export.names import cpu_int8_ir
        from runtime.common.errors import ExportError

        if spec.trained:
            calib = self.calib_clips(card, n_calib)
            if isinstance(calib, str):
                raise Absent(calib)
        else:
            calib = np.random.default_rng(1).standard_normal((n_calib, *card.input_shape)).astype(np.float32)
        try:
            xml = write_cpu_int8_ir(self.graphs[spec.key]["fp32"], calib, Path(self.tmp) / cpu_int8_ir(spec.key))
        except ExportError as e:  # NNCF or OpenVINO missing: the one line says what to install
            raise Absent(str(e)) from None
        self.graphs[spec.key]["openvino-int8"] = xml
        return ov_runner(xml, threads=self.args.threads, card=card.replace(precision="int8"))

    def paired(self, tsi: ModelSpec, tsn: ModelSpec) -> None:
        """TSI/TSN throughput with alternating calls, per backend (FP32, CPU), at the largest batch."""
        import numpy as np

        from benchmarks.common.paired import paired_throughput

        a = self.args
        if a.pair_rounds < 1:
            return
        batch = max(a.batches if tsi.group == "demo" else a.r50_batches)
        x = np.random.default_rng(0).standard_normal((batch, *build_torch(tsi)[1].input_shape)).astype(np.float32)
        makers = {"pytorch-eager": lambda s: torch_runner(build_torch(s)[0], "fp32"),
                  "onnxruntime": lambda s: ort_runner(self.graphs[s.key]["fp32"], threads=a.threads),
                  "openvino": lambda s: ov_runner(self.graphs[s.key]["fp32"], threads=a.threads)}
        out = []
        for backend, make in makers.items():
            if backend not in a.backends:
                continue
            try:
                res = paired_throughput({"tsn": make(tsn), "tsi": make(tsi)}, x, rounds=a.pair_rounds)
            except KeyboardInterrupt:
                raise
            except Exception as e:  # noqa: BLE001
                out.append({"backend": backend, "reason": f"failed here: {type(e).__name__}: {e}"})
                continue
            out.append({"backend": backend, "device": "cpu", "precision": "fp32", "group": tsi.group,
                        "size": tsi.cfg.input_size, "frames": tsi.cfg.frames, "batch": batch,
                        "rounds": a.pair_rounds, "loadavg": load_average(), **{k: v for k, v in res.items()},
                        "ratio": res["tsi"]["clips_per_s"] / res["tsn"]["clips_per_s"]})
            log.info("paired TSI/TSN %s %s T=%d batch %d: %.3f", backend, tsi.group, tsi.cfg.frames, batch,
                     out[-1]["ratio"])
        self.report["paired"] = out
        self.save_partial()

    def drop_graphs(self, spec: ModelSpec) -> None:
        """Delete a model's ONNX files once its rows (and the attention study) are done."""
        for g in (self.graphs.pop(spec.key, None) or {}).values():
            if isinstance(g, Path):
                g.unlink(missing_ok=True)
                if g.suffix == ".xml":  # an IR's weights
                    g.with_suffix(".bin").unlink(missing_ok=True)

    def attention_study(self, spec: ModelSpec) -> None:
        """The attention's share of TSI's onnxruntime CPU time, and the MultiHeadAttention variant."""
        import numpy as np

        from benchmarks.suite.attention_share import profile_attention

        g = self.graphs.get(spec.key)
        if not g:
            self.report["attention"] = {"reason": f"{spec.key} had no onnxruntime graph in this run"}
            return
        x = np.random.default_rng(0).standard_normal((1, spec.cfg.frames, 3, spec.cfg.input_size,
                                                      spec.cfg.input_size)).astype(np.float32)
        runs = 3
        att = {"model": spec.arch, "key": spec.key, "frames": spec.cfg.frames, "size": spec.cfg.input_size,
               "profile": profile_attention(g["fp32"], x, runs=runs, threads=self.args.threads),
               "parity": g.get("mha_parity")}
        if isinstance(g.get("fp32-mha"), Path):
            att["mha_profile"] = profile_attention(g["fp32-mha"], x, runs=runs, threads=self.args.threads)
            rows = {r["variant"]: r for r in self.report["rows"] if r["key"] == spec.key and
                    r["backend"] == "onnxruntime" and r["precision"] == "fp32" and r["status"] == "measured"}
            if "standard" in rows and "mha" in rows:
                s, m = rows["standard"]["latency_ms"]["p50"], rows["mha"]["latency_ms"]["p50"]
                att["latency"] = {"standard_p50_ms": s, "mha_p50_ms": m, "speedup": s / m}
        else:
            att["mha_reason"] = g.get("fp32-mha")
        self.report["attention"] = att
        log.info("attention share of %s on onnxruntime CPU: %.1f%%", spec.key, 100 * att["profile"]["share"])


def new_report(args, argv: list[str]) -> dict:
    return {"format": FORMAT, "version": VERSION,
            "command": "python -m benchmarks.suite.accuracy_latency " + " ".join(shlex.quote(a) for a in argv),
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"), "duration_s": 0.0,
            "quick": bool(args.quick), "interrupted": False, "machine": machine_info(),
            "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                         if k not in ("trtexec_json",)},
            "eval": {}, "rows": [], "ratios": [], "paired": [], "attention": None, "trtexec": [], "power": None}


def finish(report: dict, paths: dict, t0: float) -> None:
    from benchmarks.suite.plots import plot_pareto, plot_throughput
    from benchmarks.suite.report import to_markdown
    from runtime.common.files import atomic_write_text

    report["duration_s"] = time.time() - t0
    report["load_average_end"] = load_average()
    report["ratios"] = tsi_tsn_ratios(report["rows"])
    loads = [r["loadavg"][0] for r in report["rows"] if r.get("loadavg")]
    cpus = report["machine"]["usable_cpus"]
    note = load_note(loads, cpus)
    if note:
        report["load_note"] = note
    title = f"{report['machine']['cpu']} — {'quick' if report['quick'] else 'full'} run"
    plot_pareto(report["rows"], paths["pareto"], title)
    plot_throughput(report["rows"], paths["throughput"], title)
    atomic_write_text(paths["json"], json.dumps(report, indent=1, default=str))
    atomic_write_text(paths["md"], to_markdown(report, {"pareto": paths["pareto"].name,
                                                        "throughput": paths["throughput"].name}))
    log.info("wrote %s, %s, %s, %s", *paths.values())


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def run(args, argv: list[str]) -> dict:
    import torch

    from benchmarks.suite.trtexec import TrtexecFormatError, load_trtexec_json

    if args.quick:
        apply_quick(args)
    check_args(args)
    paths = out_paths(args.out, args.quick)
    check_outputs(paths)
    try:
        trtexec = [load_trtexec_json(f) for f in args.trtexec_json]
    except TrtexecFormatError as e:
        raise BenchError(str(e)) from None
    torch.set_num_threads(args.threads)
    t0 = time.time()
    report = new_report(args, argv)
    report["trtexec"] = trtexec
    with tempfile.TemporaryDirectory(prefix="tsi_bench_") as tmp:
        bench = Bench(args, report, paths, Path(tmp))
        bench.data, bench.calib = resolve_data(args, Path(tmp))
        specs = []
        for t in args.frames:  # T=8 of both sizes first: the headline rows are measured early
            specs += demo_specs(args.checkpoint or default_checkpoint(), [t])
            specs += [] if args.no_r50 else r50_specs([t])
        study = next((s for s in specs if s.group == "r50" and s.family == "tsi" and s.cfg.frames == 8),
                     next((s for s in specs if s.family == "tsi"), None))
        pair_keys = {s.key for s in specs if study and s.group == study.group and s.cfg.frames == study.cfg.frames
                     and s.family in ("tsn", "tsi")}
        try:
            for i, spec in enumerate(progress_bar(specs, desc="models", unit="model"), 1):
                bench.run_spec(spec, ("pytorch-eager", "onnxruntime", "tensorrt"))
                if spec == study:
                    if "onnxruntime" in args.backends:
                        bench.attention_study(study)
                    bench.paired(study, next(s for s in specs if s.group == study.group and s.family == "tsn"
                                             and s.cfg.frames == study.cfg.frames))
                if spec.key not in pair_keys:
                    bench.drop_graphs(spec)
                log.info("model %d/%d measured: %s", i, len(specs), spec.key)
            for i, spec in enumerate(progress_bar(specs, desc="torch.compile rows", unit="model"), 1):  # last: compiles take long
                bench.run_spec(spec, ("pytorch-compiled",))
                log.info("torch.compile row %d/%d measured: %s", i, len(specs), spec.key)
        except KeyboardInterrupt:
            report["interrupted"] = True
            log.warning("interrupted: writing the rows measured so far")
        finish(report, paths, t0)
    return report


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    old = {s: signal.signal(s, _raise_interrupt) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        report = run(args, argv)
    except BenchError as e:
        log.error("error: %s", e)
        return 2
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    return 130 if report["interrupted"] else 0


if __name__ == "__main__":
    sys.exit(main())
