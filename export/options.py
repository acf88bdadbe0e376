"""The options of ``tsi-build-engine`` / ``python export/build_engine.py``: the parser, the rules that
reject combinations that do not go together (one table, checked before any work starts), and the
resolved :class:`Options` the pipeline runs from.

Defaults are read from the modules that own them (calibration: :mod:`calib.ranges` /
:mod:`calib.clips`; engines: :mod:`export.trt_build`); the demo's from here.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from calib.clips import DEFAULT_MAX_CLIPS
from export.int8_choice import AUTO, CHOICES, DEFAULT_MAX_LOGIT_ERROR, DEFAULT_MIN_AGREEMENT, Bound
from export.names import calib_cache, cpu_int8_ir, stem_of
from export.triton_config import ServingOptions, add_serving_options, serving_options
from export.trt_build import DEFAULT_BATCH_PROFILE, DEFAULT_WORKSPACE_MIB
from runtime.common.errors import ExportError

DEMO_NAME = "tsi_demo"
DEMO_OUT = Path("artifacts") / "demo"  # relative to the current directory
DEMO_CALIB_PER_CLASS = 12  # synthetic calibration videos per class (11 classes -> 132 clips)
# --int8-target: TensorRT (the Q/DQ graph or the calibration cache) or CPUs (export.cpu_int8: an OpenVINO IR)
TENSORRT, CPU = "tensorrt", "cpu"
INT8_TARGETS = (TENSORRT, CPU)


class UsageError(ExportError):
    """Options that do not go together (rejected loudly, never rewritten)."""


def build_parser(prog: str = "tsi-build-engine", description: str | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=description,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--checkpoint", type=Path,
                     help="TSI checkpoint (default: the demo checkpoint shipped in the tsi package)")
    src.add_argument("--onnx", type=Path, help="an ONNX graph this tool wrote (standard, FP16, Q/DQ or plugin variant)")
    p.add_argument("--out", type=Path,
                   help=f"output folder (default artifacts/<name>; the demo: {DEMO_OUT}, both relative to the "
                        "current directory)")
    p.add_argument("--name", help=f"file stem of every output (default: the checkpoint's/ONNX's stem; demo: {DEMO_NAME})")
    p.add_argument("--fp16", action="store_true", help="FP16 graph and engine")
    p.add_argument("--int8", action="store_true", help="INT8: explicit Q/DQ graph (TensorRT 10.x and 11.x)")
    p.add_argument("--calib-cache", action="store_true",
                   help="INT8 by implicit calibration instead (TensorRT 10.x, and DLA): "
                        f"write/use {calib_cache('<name>')}")
    p.add_argument("--int8-target", choices=INT8_TARGETS, default=None,
                   help=f"where the INT8 model runs (default {TENSORRT}); {CPU}: quantized by NNCF for OpenVINO on "
                        f"CPUs, written as {cpu_int8_ir('<name>')}, the attention kept in float")
    p.add_argument("--int8-cpu-vnni", action="store_true",
                   help="with --int8-target cpu: the target CPU has VNNI (AVX512-VNNI, AVX-VNNI or AMX), so its "
                        "8-bit products do not saturate: full 8-bit weights, without the overflow fix CPUs "
                        "without VNNI need (default: the fix, an IR right on every x86 CPU)")
    p.add_argument("--calib-dir", type=Path, help="folder of calibration videos (recursive)")
    p.add_argument("--calib-method", choices=CHOICES, default=None,
                   help=f"activation ranges (default {AUTO}: try each method on clips held out of the calibration "
                        "and keep the best; keep the costliest layers in float if none is within the bound)")
    p.add_argument("--int8-min-agreement", type=float, default=None, metavar="FRACTION",
                   help=f"INT8 bound: top-1 agreement with FP32 on the held-out clips (default {DEFAULT_MIN_AGREEMENT})")
    p.add_argument("--int8-max-logit-error", type=float, default=None, metavar="FRACTION",
                   help="INT8 bound: max |logit diff| over the FP32 logit range on the held-out clips "
                        f"(default {DEFAULT_MAX_LOGIT_ERROR})")
    p.add_argument("--accept-int8-loss", action="store_true",
                   help="exit 0 even when the INT8 graph misses the bound (it is written and marked either way)")
    p.add_argument("--calib-clips", type=int, default=None, help=f"use at most N clips (default {DEFAULT_MAX_CLIPS})")
    p.add_argument("--plugin", type=Path, metavar="LIB",
                   help="build from the plugin variant (SaliencyAttention nodes) with this plugin library")
    p.add_argument("--dla-core", type=int,
                   help="build for this DLA core (GPU fallback; FP16, or INT8 with --calib-cache)")
    p.add_argument("--timing-cache", type=Path, help="TensorRT timing cache file (read and updated)")
    p.add_argument("--workspace", type=int, default=DEFAULT_WORKSPACE_MIB, metavar="MiB",
                   help=f"builder workspace (MiB, default {DEFAULT_WORKSPACE_MIB})")
    p.add_argument("--dynamic-batch", action="store_true", help="export with a dynamic batch axis N")
    p.add_argument("--batch", help=f"min,opt,max batch of the optimisation profile (dynamic batch; default "
                                   f"{','.join(map(str, DEFAULT_BATCH_PROFILE))})")
    p.add_argument("--force", action="store_true", help="replace files in --out made from another source "
                   "(and the models in --triton-repo)")
    p.add_argument("--triton-repo", type=Path, metavar="DIR",
                   help="also write a Triton model repository (export.triton_repo): DIR/<name> serves the "
                        "standard graph (onnxruntime backend), DIR/<name>_<precision> each engine built here")
    add_serving_options(p)
    p.add_argument("-v", "--verbose", action="store_true")
    return p


@dataclass(frozen=True)
class Options:
    """What the pipeline runs from (every default resolved)."""

    checkpoint: Path | None
    onnx: Path | None
    out: Path
    name: str
    fp16: bool
    int8: bool
    int8_target: str
    calib_cache: bool
    calib_dir: Path | None
    calib_method: str
    calib_clips: int
    int8_bound: Bound
    accept_int8_loss: bool
    plugin: Path | None
    dla_core: int | None
    timing_cache: Path | None
    workspace: int
    dynamic_batch: bool
    profile: tuple[int, int, int] | None
    force: bool
    demo: bool
    triton_repo: Path | None = None
    triton: ServingOptions | None = None
    int8_cpu_vnni: bool = False


def _profile(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        return ()


def _bad_profile(p: tuple[int, ...] | None) -> bool:
    return p is not None and (len(p) != 3 or not 1 <= p[0] <= p[1] <= p[2])


def _plain_stem(name: str) -> bool:
    return bool(name) and "/" not in name and "\\" not in name and not name.startswith(".")


@dataclass(frozen=True)
class Rule:
    """An option combination that is refused: ``broken(a)`` on the parsed args (with the derived
    ``int8``/``fp16``/``demo`` set), ``message`` formatted with ``vars(a)``. A rule without ``broken``
    depends on what a stage reads (the graph's card, the model): that stage raises it by name
    (:func:`refusal`)."""

    broken: Callable[[argparse.Namespace], bool] | None
    message: str


RULES: dict[str, Rule] = {
    "cache_needs_int8": Rule(lambda a: a.calib_cache and not a.int8, "--calib-cache makes INT8 engines: add --int8"),
    "int8_target_needs_int8": Rule(lambda a: a.int8_target is not None and not a.int8,
                                   "--int8-target says where the INT8 model runs: add --int8"),
    "cpu_int8_calibration": Rule(lambda a: a.int8_target == CPU and (a.calib_cache or a.calib_method is not None),
                                 "--int8-target cpu calibrates with NNCF: --calib-cache and --calib-method are "
                                 "TensorRT's INT8 calibration (drop them)"),
    "vnni_needs_cpu_int8": Rule(lambda a: a.int8_cpu_vnni and not (a.int8 and a.int8_target == CPU),
                                "--int8-cpu-vnni says which CPUs the INT8 IR is for: add --int8 --int8-target cpu"),
    "cpu_int8_tensorrt_options": Rule(lambda a: a.int8_target == CPU and (a.plugin is not None
                                                                          or a.dla_core is not None),
                                      "--int8-target cpu writes an OpenVINO IR for CPUs: --plugin and --dla-core "
                                      "are TensorRT options (drop them, or build the TensorRT INT8 separately)"),
    "calib_dir_needs_int8": Rule(lambda a: a.calib_dir is not None and not a.int8,
                                 "--calib-dir is for INT8 calibration: add --int8"),
    "calib_method_needs_int8": Rule(lambda a: a.calib_method is not None and not a.int8,
                                    "--calib-method is for INT8 calibration: add --int8"),
    "calib_clips_need_int8": Rule(lambda a: a.calib_clips is not None and not a.int8,
                                  "--calib-clips is for INT8 calibration: add --int8"),
    "bound_needs_int8": Rule(lambda a: not a.int8 and (a.int8_min_agreement is not None or a.accept_int8_loss
                                                      or a.int8_max_logit_error is not None),
                             "--int8-min-agreement, --int8-max-logit-error and --accept-int8-loss are for INT8: add "
                             "--int8"),
    "agreement_fraction": Rule(lambda a: a.int8_min_agreement is not None and not 0 <= a.int8_min_agreement <= 1,
                               "--int8-min-agreement must be a fraction in [0, 1] (got {int8_min_agreement})"),
    "logit_error_positive": Rule(lambda a: a.int8_max_logit_error is not None
                                 and not 0 < a.int8_max_logit_error < float("inf"),
                                 "--int8-max-logit-error must be a number > 0 (got {int8_max_logit_error})"),
    "calib_clips_positive": Rule(lambda a: a.calib_clips is not None and a.calib_clips < 1,
                                 "--calib-clips must be >= 1 (got {calib_clips})"),
    "calib_dir_is_folder": Rule(lambda a: a.calib_dir is not None and not a.calib_dir.is_dir(),
                                "--calib-dir {calib_dir}: not a folder (calibration videos are searched "
                                "recursively in a folder)"),
    # with --onnx a derived graph needs no calibration, and --calib-cache may reuse the cache in --out:
    # export.pipeline raises this one by name for a standard --onnx graph
    "int8_needs_calib_dir": Rule(lambda a: a.int8 and not a.demo and a.onnx is None and a.calib_dir is None,
                                 "--int8 needs --calib-dir (a folder of videos like the deployment's)"),
    "workspace_positive": Rule(lambda a: a.workspace < 1, "--workspace must be >= 1 MiB (got {workspace})"),
    "batch_profile": Rule(lambda a: _bad_profile(a.profile),
                          "--batch must be min,opt,max with 1 <= min <= opt <= max (got {batch!r})"),
    "batch_needs_dynamic": Rule(lambda a: a.batch is not None and not a.dynamic_batch and a.onnx is None,
                                "--batch sets the profile of a dynamic batch axis: add --dynamic-batch"),
    "dla_core_positive": Rule(lambda a: a.dla_core is not None and a.dla_core < 0,
                              "--dla-core must be >= 0 (got {dla_core})"),
    "dla_static": Rule(lambda a: a.dla_core is not None and a.dynamic_batch,
                       "DLA needs static shapes: drop --dynamic-batch"),
    # with --onnx the graph's card may say the precision: check_dla_precision, when it is loaded
    "dla_precision": Rule(lambda a: a.dla_core is not None and a.onnx is None and not (a.fp16 or a.int8),
                          "DLA runs FP16 or INT8 only: add --fp16 or --int8"),
    "dla_int8_cache": Rule(lambda a: a.dla_core is not None and a.onnx is None and a.int8 and not a.calib_cache,
                           "INT8 on DLA needs implicit calibration (a calibration cache): add --calib-cache"),
    "onnx_not_dynamic": Rule(lambda a: a.onnx is not None and a.dynamic_batch,
                             "--dynamic-batch is an export option; an --onnx graph keeps its own batch axis"),
    "triton_needs_repo": Rule(lambda a: a.triton_repo is None and any(
        v is not None for v in (a.triton_max_batch, a.triton_preferred_batch, a.triton_queue_delay_us)),
        "--triton-max-batch, --triton-preferred-batch and --triton-queue-delay-us are for --triton-repo: add it"),
    "triton_repo_not_out": Rule(lambda a: a.triton_repo is not None and a.out is not None
                                and a.triton_repo.resolve() == a.out.resolve(),
                                "--triton-repo must be another folder than --out (a model repository holds "
                                "one folder per model)"),
    "plain_name": Rule(lambda a: a.name is not None and not _plain_stem(a.name),
                       "--name must be a plain file stem (got {name!r})"),
    "onnx_exists": Rule(lambda a: a.onnx is not None and not a.onnx.is_file(), "ONNX file not found: {onnx}"),
    "plugin_is_file": Rule(lambda a: a.plugin is not None and a.plugin.exists() and not a.plugin.is_file(),
                           "--plugin {plugin}: not a file (the plugin library, libtsi_plugins.so)"),
    # found where the name, the model or the --onnx graph's card is known (raised by name)
    "derived_name": Rule(None, "cannot derive a file stem from {source}: pass --name"),
    "plugin_needs_attention": Rule(None, "--plugin: this model has no saliency attention to replace"),
    "cache_to_reuse": Rule(None, "--calib-cache: no {cache} to reuse; pass --calib-dir to calibrate"),
    "step_graph_precision": Rule(None, "{onnx} is an online step graph ({precision}): its FP16 and INT8 variants "
                                       "come from python -m export.stream_export --fp16 / --int8 --calib-dir; pass "
                                       "that graph (each step graph is built as it is)"),
    "derived_precision": Rule(None, "{onnx} is the {precision} graph; --{wanted} asks for another precision "
                                    "(pass the standard <name>.onnx to derive it)"),
    "step_graph_calibration": Rule(None, "{onnx} is the {precision} graph, built as it is: calibration options do "
                                         "not apply (calibrate a step graph with python -m export.stream_export "
                                         "--int8 --calib-dir)"),
    "cpu_int8_needs_standard": Rule(None, "{onnx} is the {precision} graph, built as it is: --int8-target cpu "
                                          "quantizes the standard FP32 graph (pass <name>.onnx)"),
    "derived_calibration": Rule(None, "{onnx} is the {precision} graph, built as it is: calibration options do "
                                      "not apply (pass the standard <name>.onnx to calibrate)"),
}
DLA_PRECISION_RULES = ("dla_precision", "dla_int8_cache")
# the rules of python -m export.stream_export's options (the online export: no --onnx, DLA, batch)
ONLINE_RULES = ("calib_dir_needs_int8", "calib_clips_positive", "calib_dir_is_folder", "int8_needs_calib_dir",
                "plain_name")


def refusal(rule: str, **values) -> UsageError:
    """The :class:`UsageError` of rule ``rule`` (its message formatted with ``values``), for a caller
    that finds the broken combination itself."""
    return UsageError(RULES[rule].message.format(**values))


def check_rules(args: argparse.Namespace, names=None) -> None:
    """Raise :class:`UsageError` with the first rule ``args`` breaks (of ``names``: all by default)."""
    values = vars(args)
    for rule in RULES if names is None else names:
        if RULES[rule].broken is not None and RULES[rule].broken(args):
            raise UsageError(RULES[rule].message.format(**values))


def check_dla_precision(fp16: bool, int8: bool, calib_cache: bool) -> None:
    """The DLA precision rules, for an --onnx graph whose card says its precision."""
    check_rules(argparse.Namespace(dla_core=0, onnx=None, fp16=fp16, int8=int8, calib_cache=calib_cache),
                DLA_PRECISION_RULES)


def resolve(args: argparse.Namespace, argv_empty: bool) -> Options:
    """Check every rule, then resolve the defaults (no file is read or written here)."""
    demo = args.checkpoint is None and args.onnx is None
    full_demo = demo and argv_empty  # the bare command: FP16 and INT8
    a = argparse.Namespace(**vars(args))
    a.demo, a.fp16, a.int8, a.profile = demo, args.fp16 or full_demo, args.int8 or full_demo, _profile(args.batch)
    check_rules(a)
    checkpoint = args.checkpoint
    if demo and args.onnx is None:
        from tsi.assets import DEMO_CHECKPOINT

        checkpoint = Path(DEMO_CHECKPOINT)
    src = args.onnx if args.onnx is not None else checkpoint
    # <name>.online*.onnx (a step graph of export.stream_export) keeps ".online": its engines are
    # <name>.online.<precision>.engine, apart from the clip model's
    name = args.name or (DEMO_NAME if demo else stem_of(src))
    if not _plain_stem(name):
        raise refusal("derived_name", source=src.name)
    out = args.out or (DEMO_OUT if demo else Path("artifacts") / name)
    return Options(checkpoint=checkpoint, onnx=args.onnx, out=out, name=name, fp16=a.fp16, int8=a.int8,
                   int8_target=args.int8_target or TENSORRT, calib_cache=args.calib_cache, calib_dir=args.calib_dir,
                   calib_method=args.calib_method or AUTO, calib_clips=args.calib_clips or DEFAULT_MAX_CLIPS,
                   int8_bound=Bound(DEFAULT_MIN_AGREEMENT if args.int8_min_agreement is None else args.int8_min_agreement,
                                    DEFAULT_MAX_LOGIT_ERROR if args.int8_max_logit_error is None
                                    else args.int8_max_logit_error),
                   accept_int8_loss=args.accept_int8_loss,
                   plugin=args.plugin, dla_core=args.dla_core, timing_cache=args.timing_cache,
                   workspace=args.workspace, dynamic_batch=args.dynamic_batch, profile=a.profile, force=args.force,
                   demo=demo, triton_repo=args.triton_repo,
                   triton=serving_options(args) if args.triton_repo is not None else None,
                   int8_cpu_vnni=args.int8_cpu_vnni)
