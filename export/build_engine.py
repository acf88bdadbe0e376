"""Checkpoint -> ONNX graphs -> TensorRT engines, one command.

    python export/build_engine.py                       # the demo: tsi/assets/demo_tsi_r18.pt -> artifacts/demo
    python export/build_engine.py --checkpoint run/best.pt --fp16 --int8 --calib-dir data/synth/train
    python export/build_engine.py --onnx artifacts/demo/tsi_demo.int8.qdq.onnx   # on the Jetson

Pipeline (every stage logged with its time and the size of what it wrote; a failing stage is logged
and re-raised): checkpoint -> export-friendly model -> standard ONNX ``<name>.onnx`` (card inside,
also ``<name>.json``) -> onnxruntime vs PyTorch parity -> plugin variant ``<name>.plugin.onnx`` ->
precision graphs (``<name>.fp16.onnx``, ``<name>.int8.qdq.onnx`` or the keyed calibration cache
``<name>.int8.calib.cache``) -> ``export.trt_check`` on each graph -> with TensorRT: engines
``<name>.<precision>.engine`` with their card ``<name>.<precision>.json``; without TensorRT: exit 0 with
the list of files and the commands that finish the job on the target.

Everything is built in a staging folder beside ``--out`` and moved into place at the end: a bad input
(missing/corrupt checkpoint or ONNX, empty or too small calibration folder, a card that does not
match the checkpoint, ...) exits with code 2, one line naming the problem, and leaves ``--out`` as it
was. Files in ``--out`` made from another source are not replaced without ``--force``.
``--onnx`` needs neither torch nor (for the FP16/Q/DQ graphs) onnxruntime: it runs on a Jetson.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # `python export/build_engine.py`: import the packages from the repo root
    _here, _root = Path(__file__).resolve().parent, str(Path(__file__).resolve().parents[1])
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _here]
    sys.path.insert(0, _root)

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import shlex  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402

import numpy as np  # noqa: E402

from export.errors import ExportError, OnnxModelError  # noqa: E402
from export.outputs import check_out, finalize, human_size, stage  # noqa: E402
from runtime.card import CardError, ModelCard, card_path_for  # noqa: E402

log = logging.getLogger("export.build_engine")

REPO_ROOT = Path(__file__).resolve().parents[1]
DEMO_CHECKPOINT = REPO_ROOT / "tsi" / "assets" / "demo_tsi_r18.pt"
DEMO_OUT = REPO_ROOT / "artifacts" / "demo"
DEMO_NAME = "tsi_demo"
DEMO_CALIB_PER_CLASS = 12  # synthetic calibration videos per class (11 classes -> 132 clips)
DEFAULT_CALIB_CLIPS = 256
PARITY_CLIPS = 4
DEFAULT_PROFILE = (1, 1, 8)


class UsageError(ExportError):
    """Options that do not go together (rejected loudly, never rewritten)."""


# -- options ---------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python export/build_engine.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--checkpoint", type=Path, help="TSI checkpoint (default: the demo, tsi/assets/demo_tsi_r18.pt)")
    src.add_argument("--onnx", type=Path, help="an ONNX graph this tool wrote (standard, FP16, Q/DQ or plugin variant)")
    p.add_argument("--out", type=Path, help="output folder (default artifacts/<name>)")
    p.add_argument("--name", help="file stem of every output (default: the checkpoint's/ONNX's stem; demo: tsi_demo)")
    p.add_argument("--fp16", action="store_true", help="FP16 graph and engine")
    p.add_argument("--int8", action="store_true", help="INT8: explicit Q/DQ graph (TensorRT 10.x and 11.x)")
    p.add_argument("--calib-cache", action="store_true",
                   help="INT8 by implicit calibration instead (TensorRT 10.x, and DLA): "
                        "write/use <name>.int8.calib.cache")
    p.add_argument("--calib-dir", type=Path, help="folder of calibration videos (recursive)")
    p.add_argument("--calib-method", choices=("entropy", "percentile", "minmax"), default=None,
                   help="activation ranges (default entropy, as TensorRT's IInt8EntropyCalibrator2)")
    p.add_argument("--calib-clips", type=int, default=None, help=f"use at most N clips (default {DEFAULT_CALIB_CLIPS})")
    p.add_argument("--plugin", type=Path, metavar="LIB",
                   help="build from the plugin variant (SaliencyAttention nodes) with this plugin library")
    p.add_argument("--dla-core", type=int,
                   help="build for this DLA core (GPU fallback; FP16, or INT8 with --calib-cache)")
    p.add_argument("--timing-cache", type=Path, help="TensorRT timing cache file (read and updated)")
    p.add_argument("--workspace", type=int, default=1024, metavar="MiB", help="builder workspace (MiB)")
    p.add_argument("--dynamic-batch", action="store_true", help="export with a dynamic batch axis N")
    p.add_argument("--batch", help=f"min,opt,max batch of the optimisation profile (dynamic batch; default "
                                   f"{','.join(map(str, DEFAULT_PROFILE))})")
    p.add_argument("--force", action="store_true", help="replace files in --out made from another source")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


@dataclass
class Plan:
    checkpoint: Path | None
    onnx: Path | None
    out: Path
    name: str
    fp16: bool
    int8: bool
    calib_cache: bool
    calib_dir: Path | None
    calib_method: str
    calib_clips: int
    plugin: Path | None
    dla_core: int | None
    timing_cache: Path | None
    workspace: int
    dynamic_batch: bool
    profile: tuple[int, int, int] | None
    force: bool
    demo: bool
    staged: list[Path] = field(default_factory=list)  # staged outputs (moved into out at the end)
    notes: list[str] = field(default_factory=list)


def check_dla_precision(fp16: bool, int8: bool, calib_cache: bool) -> None:
    if not (fp16 or int8):
        raise UsageError("DLA runs FP16 or INT8 only: add --fp16 or --int8")
    if int8 and not calib_cache:
        raise UsageError("INT8 on DLA needs implicit calibration (a calibration cache): add --calib-cache")


def make_plan(args: argparse.Namespace, argv_empty: bool) -> Plan:
    demo = args.checkpoint is None and args.onnx is None
    full_demo = demo and argv_empty
    fp16, int8 = args.fp16 or full_demo, args.int8 or full_demo
    if args.calib_cache and not int8:
        raise UsageError("--calib-cache makes INT8 engines: add --int8")
    for opt, val in (("--calib-dir", args.calib_dir), ("--calib-method", args.calib_method),
                     ("--calib-clips", args.calib_clips)):
        if val is not None and not int8:
            raise UsageError(f"{opt} is for INT8 calibration: add --int8")
    if args.calib_clips is not None and args.calib_clips < 1:
        raise UsageError(f"--calib-clips must be >= 1 (got {args.calib_clips})")
    if args.workspace < 1:
        raise UsageError(f"--workspace must be >= 1 MiB (got {args.workspace})")
    profile = None
    if args.batch is not None:
        try:
            profile = tuple(int(v) for v in args.batch.split(","))
        except ValueError:
            profile = ()
        if len(profile) != 3 or not 1 <= profile[0] <= profile[1] <= profile[2]:
            raise UsageError(f"--batch must be min,opt,max with 1 <= min <= opt <= max (got {args.batch!r})")
        if not args.dynamic_batch and args.onnx is None:
            raise UsageError("--batch sets the profile of a dynamic batch axis: add --dynamic-batch")
    if args.dla_core is not None:
        if args.dla_core < 0:
            raise UsageError(f"--dla-core must be >= 0 (got {args.dla_core})")
        if args.dynamic_batch:
            raise UsageError("DLA needs static shapes: drop --dynamic-batch")
        if args.onnx is None:  # with --onnx the graph's card may say the precision: checked on loading
            check_dla_precision(fp16, int8, args.calib_cache)
    if args.onnx is not None and args.dynamic_batch:
        raise UsageError("--dynamic-batch is an export option; an --onnx graph keeps its own batch axis")
    checkpoint = args.checkpoint if not demo else (DEMO_CHECKPOINT if args.onnx is None else None)
    src = args.onnx if args.onnx is not None else checkpoint
    name = args.name or (DEMO_NAME if demo else src.name.split(".")[0])
    if not name or "/" in name or name.startswith("."):
        raise UsageError(f"--name must be a plain file stem (got {name!r})")
    out = args.out or (DEMO_OUT if demo else Path("artifacts") / name)
    return Plan(checkpoint=checkpoint, onnx=args.onnx, out=out, name=name, fp16=fp16, int8=int8,
                calib_cache=args.calib_cache, calib_dir=args.calib_dir, calib_method=args.calib_method or "entropy",
                calib_clips=args.calib_clips or DEFAULT_CALIB_CLIPS, plugin=args.plugin, dla_core=args.dla_core,
                timing_cache=args.timing_cache, workspace=args.workspace, dynamic_batch=args.dynamic_batch,
                profile=profile, force=args.force, demo=demo)


# -- pipeline --------------------------------------------------------------------------------------
def _random_clips(card: ModelCard, n: int) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((n, *card.input_shape)).astype(np.float32)


def demo_calibration_dir(plan: Plan) -> Path:
    """The demo calibrates on synthetic videos (tsi.data.synthetic, seed 1, train split)."""
    from tsi.data.synthetic import MARKER, generate

    root = plan.out / "calib_videos"
    marker = root / MARKER
    done = marker.is_file() and json.loads(marker.read_text()).get("complete") is True
    if not done:
        with stage("synthetic calibration videos"):
            generate(root, train=DEMO_CALIB_PER_CLASS, val=0, seed=1)
    return root / "train"


def standard_onnx_from_checkpoint(plan: Plan, stg: Path, sha: str):
    from export.friendly import count_sme_modules, export_friendly_model
    from export.onnx_export import export_onnx
    from export.parity import check_fp32_parity
    from tsi.checkpoint import load_model

    with stage("load checkpoint"):
        model, card = export_friendly_model(plan.checkpoint)
        reference, _ = load_model(plan.checkpoint)  # as trained: its own attention, BN unfolded
    card = card.replace(source_sha256=sha, precision="fp32")
    path = stg / f"{plan.name}.onnx"
    with stage("export ONNX") as files:
        export_onnx(model, card, path, source_sha256=sha, dynamic_batch=plan.dynamic_batch)
        card.save(stg / f"{plan.name}.json")
        files += [path, stg / f"{plan.name}.json"]
    with stage("parity onnxruntime vs PyTorch"):
        clips = _random_clips(card, 3 if plan.dynamic_batch else PARITY_CLIPS)
        plan.notes.append(f"FP32 parity: {check_fp32_parity(path, reference, clips)}")
    plan.staged += [path, stg / f"{plan.name}.json"]
    return path, card, count_sme_modules(model)


def write_graph(proto, path: Path, card: ModelCard, plan: Plan, files: list) -> Path:
    from export.onnx_export import save_onnx, set_card

    set_card(proto, card)
    save_onnx(proto, path)
    files.append(path)
    plan.staged.append(path)
    return path


def plugin_variant(src: Path, plan: Plan, card: ModelCard, expected: int | None, files: list) -> Path | None:
    import onnx

    from export.plugin_graph import make_plugin_graph

    proto, count = make_plugin_graph(onnx.load(str(src)), expected=expected)
    if count == 0:
        log.info("%s has no saliency attention: no plugin variant", src.name)
        return None
    return write_graph(proto, src.with_name(src.name[:-len(".onnx")] + ".plugin.onnx"), card, plan, files)


def precision_graphs(plan: Plan, stg: Path, standard: Path, card: ModelCard, sme: int | None, caps) -> dict:
    """The plugin variant, FP16 graph, Q/DQ graph or calibration cache; returns {kind: path}."""
    graphs: dict[str, Path] = {"fp32": standard}
    with stage("plugin ONNX") as files:
        p = plugin_variant(standard, plan, card, sme, files)
        if p is not None:
            graphs["fp32.plugin"] = p
        elif plan.plugin:
            raise UsageError("--plugin: this model has no saliency attention to replace")
    if plan.fp16:
        graphs.update(fp16_graph(plan, stg, standard, card, sme))
    if plan.int8 and plan.calib_cache and plan.calib_dir is None and plan.onnx is not None:
        graphs.update(reuse_cache(plan, stg, card))
    elif plan.int8:
        graphs.update(int8_artefacts(plan, stg, standard, card, sme, caps))
    return graphs


def fp16_graph(plan: Plan, stg: Path, standard: Path, card: ModelCard, sme: int | None) -> dict:
    import onnx

    from calib.fp16 import convert_fp16
    from export.parity import compare_onnx

    graphs = {}
    with stage("FP16 ONNX") as files:
        path = write_graph(convert_fp16(onnx.load(str(standard))), stg / f"{plan.name}.fp16.onnx",
                           card.replace(precision="fp16"), plan, files)
        graphs["fp16"] = path
        agreement = compare_onnx(standard, path, _random_clips(card, PARITY_CLIPS))
        plan.notes.append(f"FP16 vs FP32 (onnxruntime, {PARITY_CLIPS} random clips): {agreement}")
        if plan.plugin:
            graphs["fp16.plugin"] = plugin_variant(path, plan, card.replace(precision="fp16"), sme, files)
    return graphs


def int8_artefacts(plan: Plan, stg: Path, standard: Path, card: ModelCard, sme: int | None, caps) -> dict:
    """Calibrate on --calib-dir (the demo: synthetic videos), then the Q/DQ graph or the cache."""
    from calib.clips import load_calibration_clips
    from calib.ranges import compute_ranges

    calib_dir = plan.calib_dir
    if calib_dir is None:
        if not plan.demo:
            raise UsageError("--int8 needs --calib-dir (a folder of videos like the deployment's)")
        calib_dir = demo_calibration_dir(plan)
    with stage("calibration clips"):
        clips = load_calibration_clips(calib_dir, card, max_clips=plan.calib_clips)
    with stage(f"activation ranges ({plan.calib_method})"):
        ranges = compute_ranges(standard, clips.clips, plan.calib_method)
    if plan.calib_cache:
        from calib.cache import DEFAULT_VERSION_INT, key_path, sha256_file, write_cache

        path = stg / f"{plan.name}.int8.calib.cache"
        with stage("calibration cache") as files:
            write_cache(path, ranges.amax, onnx_sha256=sha256_file(standard), card=card, method=plan.calib_method,
                        num_clips=len(clips), version_int=caps.version_int if caps else DEFAULT_VERSION_INT)
            files += [path, key_path(path)]
            plan.staged += [path, key_path(path)]
        return {"int8.cache": path}
    from calib.qdq import make_qdq
    from export.parity import compare_onnx

    graphs = {}
    with stage("Q/DQ ONNX") as files:
        path = write_graph(make_qdq(standard, ranges), stg / f"{plan.name}.int8.qdq.onnx",
                           card.replace(precision="int8"), plan, files)
        graphs["int8"] = path
        n = min(len(clips), 16)
        plan.notes.append(f"INT8 Q/DQ vs FP32 (onnxruntime, {n} calibration clips): "
                          f"{compare_onnx(standard, path, clips.clips[:n])}")
        if plan.plugin:
            graphs["int8.plugin"] = plugin_variant(path, plan, card.replace(precision="int8"), sme, files)
    return graphs


def reuse_cache(plan: Plan, stg: Path, card: ModelCard) -> dict:
    """--onnx + --int8 --calib-cache without --calib-dir: the keyed cache already in --out."""
    from calib.cache import check_key, key_path, sha256_file

    cache = plan.out / f"{plan.name}.int8.calib.cache"
    if not cache.is_file():
        raise UsageError(f"--calib-cache: no {cache} to reuse; pass --calib-dir to calibrate")
    with stage("calibration cache (reused)"):
        check_key(cache, onnx_sha256=sha256_file(plan.onnx), card=card)
    for p in (cache, key_path(cache)):
        shutil.copyfile(p, stg / p.name)
        plan.staged.append(stg / p.name)
    return {"int8.cache": stg / cache.name}


def check_graphs(plan: Plan, graphs: dict) -> None:
    from export.trt_check import assert_trt_compatible

    with stage("TensorRT 10.3 compatibility"):
        for kind, path in graphs.items():
            if path.suffix == ".onnx":
                assert_trt_compatible(path, dla=plan.dla_core is not None)
                log.info("  %s: OK%s", path.name, " (DLA: static shapes)" if plan.dla_core is not None else "")


def engine_targets(plan: Plan, graphs: dict, caps) -> list[tuple[str, Path, bool]]:
    """(precision, graph, implicit_int8) of every engine to build."""
    plugin = ".plugin" if plan.plugin else ""
    targets = []
    if plan.fp16:
        route = caps.precision_route("fp16") if caps else "flags"
        targets.append(("fp16", graphs[("fp16" if route == "strongly_typed" else "fp32") + plugin], False))
    if plan.int8:
        targets.append(("int8", graphs["fp32" + plugin], True) if plan.calib_cache
                       else ("int8", graphs["int8" + plugin], False))
    if not targets:
        targets.append(("fp32", graphs["fp32" + plugin], False))
    return targets


def build_engines(plan: Plan, stg: Path, graphs: dict, card: ModelCard, standard: Path, targets) -> None:
    import onnx

    from export.plugin_graph import attention_node_names
    from calib.cache import sha256_file
    from export.trt_build import EngineSpec, build_engine

    fp32_layers = attention_node_names(onnx.load(str(standard)))
    for precision, graph, implicit in targets:
        path = stg / f"{plan.name}.{precision}.engine"
        with stage(f"TensorRT engine {path.name}") as files:
            build_engine(EngineSpec(onnx_path=graph, engine_path=path, precision=precision, card=card,
                                    implicit_int8=implicit, calib_cache=graphs.get("int8.cache"),
                                    onnx_sha256=sha256_file(standard), plugin_lib=plan.plugin,
                                    dla_core=plan.dla_core, timing_cache=plan.timing_cache,
                                    workspace_mib=plan.workspace, batch_profile=plan.profile or DEFAULT_PROFILE,
                                    fp32_layers=fp32_layers))
            files += [path, card_path_for(path)]
            plan.staged += [path, card_path_for(path)]


def _derived_graph(plan: Plan, proto, card: ModelCard) -> str | None:
    """'fp16' / 'int8' / 'plugin' for a graph this tool derived (built as it is), None for the standard one."""
    has_qdq = any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in proto.graph.node)
    has_plugin = any(n.domain == "tsi" for n in proto.graph.node)
    if card.precision == "int8" and not has_qdq:
        raise OnnxModelError(f"{plan.onnx}: card says int8 but the graph has no Q/DQ node")
    if card.precision == "fp32" and not has_plugin:
        if plan.dla_core is not None:
            check_dla_precision(plan.fp16, plan.int8, plan.calib_cache)
        return None
    wanted = "int8" if plan.int8 else "fp16" if plan.fp16 else None
    if wanted is not None and wanted != card.precision:
        raise UsageError(f"{plan.onnx} is the {card.precision} graph; --{wanted} asks for another precision "
                         "(pass the standard <name>.onnx to derive it)")
    if plan.calib_cache or plan.calib_dir is not None:
        raise UsageError(f"{plan.onnx} is the {card.precision} graph, built as it is: calibration options "
                         "do not apply (pass the standard <name>.onnx to calibrate)")
    if plan.dla_core is not None:
        check_dla_precision(card.precision == "fp16", card.precision == "int8", False)
    if has_plugin and not plan.plugin:
        log.warning("%s has SaliencyAttention nodes: building it needs --plugin LIB", plan.onnx)
    return card.precision


def _load_source(plan: Plan):
    """(card or None, source sha256, derived precision or None) of the checkpoint / ONNX."""
    if plan.onnx is not None:
        from export.onnx_export import get_card, load_onnx

        with stage("load ONNX"):
            proto = load_onnx(plan.onnx, custom_domains=("tsi",))
            card = get_card(proto, str(plan.onnx))
        return card, card.source_sha256, _derived_graph(plan, proto, card)
    if not plan.checkpoint.is_file():
        from tsi.checkpoint import CheckpointError

        hint = " (the demo checkpoint is not there yet: train one or pass --checkpoint)" if plan.demo else ""
        raise CheckpointError(f"checkpoint not found: {plan.checkpoint}{hint}")
    from calib.cache import sha256_file

    return None, sha256_file(plan.checkpoint), None


def _pipeline(plan: Plan, stg: Path, card: ModelCard | None, sha: str, derived: str | None,
              caps) -> tuple[dict, ModelCard]:
    """Stage every output in ``stg``; returns ({kind: graph path}, card)."""
    if derived is not None:  # a derived graph (FP16 / Q/DQ / plugin variant) is built as it is
        graphs = {derived + (".plugin" if plan.plugin else ""): plan.onnx}
        check_graphs(plan, graphs)
        if caps is not None:
            build_engines(plan, stg, graphs, card, plan.onnx, [(card.precision, plan.onnx, False)])
        return graphs, card
    if plan.onnx is not None:
        standard, sme = stg / f"{plan.name}.onnx", None
        shutil.copyfile(plan.onnx, standard)
        card.save(stg / f"{plan.name}.json")
        plan.staged += [standard, stg / f"{plan.name}.json"]
        plan.notes.append("FP32 parity vs PyTorch: not rerun (--onnx; it was checked at export)")
    else:
        standard, card, sme = standard_onnx_from_checkpoint(plan, stg, sha)
    graphs = precision_graphs(plan, stg, standard, card, sme, caps)
    check_graphs(plan, graphs)
    if caps is not None:
        build_engines(plan, stg, graphs, card, standard, engine_targets(plan, graphs, caps))
    return graphs, card


def run(plan: Plan) -> int:
    from export.trt_version import capabilities, tensorrt_available

    t0 = time.perf_counter()
    caps = capabilities() if tensorrt_available() else None
    if plan.plugin is not None and not plan.plugin.is_file():
        if caps is not None:
            raise ExportError(f"plugin library not found: {plan.plugin}")
        log.warning("plugin library %s is not here; the commands below need it on the target", plan.plugin)
    card, sha, derived = _load_source(plan)
    keep = plan.onnx if plan.onnx is not None and (plan.out / plan.onnx.name).resolve() == plan.onnx.resolve() else None
    check_out(plan.out, plan.name, sha, force=plan.force, keep=keep)
    plan.out.parent.mkdir(parents=True, exist_ok=True)
    stg = Path(tempfile.mkdtemp(prefix=f".{plan.out.name}.staging-", dir=plan.out.parent))
    try:
        graphs, card = _pipeline(plan, stg, card, sha, derived, caps)
        written = finalize(plan.staged, plan.out, keep)
    finally:
        shutil.rmtree(stg, ignore_errors=True)
    _report(plan, written, graphs, card, caps is not None, derived, time.perf_counter() - t0)
    return 0


def _report(plan: Plan, written: list[Path], graphs: dict, card: ModelCard, have_trt: bool,
            derived: str | None, dt: float) -> None:
    lines = [f"done in {dt:.1f}s; files written to {plan.out}:"]
    for p in sorted(set(written)):
        lines.append(f"  {p.name:<40} {human_size(p.stat().st_size):>10}")
    if not written:
        lines.append("  (none)")
    lines += [f"  {note}" for note in plan.notes]
    if not have_trt:
        lines += ["No engine was built: TensorRT is not installed here (on a Jetson it comes with JetPack, on a "
                  "desktop from NVIDIA's wheels). Finish on the target (JetPack 6: TensorRT 10.3), with this "
                  "folder copied there:"]
        if derived is not None:
            cmd = ["python", "export/build_engine.py", "--onnx", str(plan.onnx), "--out", str(plan.out),
                   "--name", plan.name] + (["--plugin", str(plan.plugin)] if plan.plugin else [])
            lines.append("  " + " ".join(shlex.quote(c) for c in cmd))
        else:
            from export.target_commands import finish_commands

            final = {k: plan.out / v.name for k, v in graphs.items()}
            lines += [f"  {c}" for c in finish_commands(
                final, card, out=plan.out, name=plan.name, fp16=plan.fp16, int8=plan.int8,
                calib_cache=plan.calib_cache, plugin=plan.plugin, dla_core=plan.dla_core,
                workspace=plan.workspace, timing_cache=plan.timing_cache, profile=plan.profile,
                dynamic_batch=plan.dynamic_batch)]
    for ln in lines:
        log.info("%s", ln)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return run(make_plan(args, argv_empty=not argv))
    except _input_errors() as e:
        # a bad input: one line naming the problem (a compatibility error lists its nodes below it)
        log.debug("details", exc_info=True)
        print(f"error: {e}", file=sys.stderr)
        return 2


def _input_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [ExportError, CardError]
    ckpt = sys.modules.get("tsi.checkpoint")  # only raised once imported (it imports torch)
    if ckpt is not None:
        errors.append(ckpt.CheckpointError)
    return tuple(errors)


if __name__ == "__main__":
    sys.exit(main())
