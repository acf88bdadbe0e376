"""The stages of ``tsi-build-engine``: each one writes into the staging folder and returns what it
wrote (:class:`Written`: the files, the graphs by kind, notes for the report); :func:`run_pipeline`
adds them up. Export drives calibration: it finds the attention (kept in float) and hands it to
:mod:`calib`, and runs the TensorRT check on every graph.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np

from export import names
from export.options import CPU, DEMO_CALIB_PER_CLASS, TENSORRT, Options, check_dla_precision, refusal
from export.outputs import Written, stage
from export.variants import fp16_graph, load_graph, plugin_variant, write_graph
from runtime.trt_version import TARGET_TRT
from runtime.card import ModelCard, card_path_for
from runtime.common.files import file_sha256
from runtime.common.errors import OnnxModelError

log = logging.getLogger("export.build_engine")

PARITY_CLIPS = 4


def _random_clips(card: ModelCard, n: int) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((n, *card.input_shape)).astype(np.float32)


# -- sources ---------------------------------------------------------------------------------------
def load_source(opts: Options):
    """(card or None, source sha256, derived precision or None) of the checkpoint / ONNX."""
    if opts.onnx is not None:
        from export.onnx_export import get_card, load_onnx
        from export.plugin_graph import PLUGIN_DOMAIN

        with stage("load ONNX"):
            proto = load_onnx(opts.onnx, custom_domains=(PLUGIN_DOMAIN,))
            card = get_card(proto, str(opts.onnx))
        return card, card.source_sha256, derived_graph(opts, proto, card)
    if not opts.checkpoint.is_file():
        from tsi.checkpoint import CheckpointError

        hint = " (the demo checkpoint is not there: reinstall the package or pass --checkpoint)" if opts.demo else ""
        raise CheckpointError(f"checkpoint not found: {opts.checkpoint}{hint}")
    return None, file_sha256(opts.checkpoint), None


def derived_graph(opts: Options, proto, card: ModelCard) -> str | None:
    """'fp16' / 'int8' / 'fp32' (plugin) for a graph this tool derived or an online step graph (built
    as it is), None for the standard one."""
    from export.plugin_graph import PLUGIN_DOMAIN

    has_qdq = any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in proto.graph.node)
    has_plugin = any(n.domain == PLUGIN_DOMAIN for n in proto.graph.node)
    if card.precision == "int8" and not has_qdq:
        raise OnnxModelError(f"{opts.onnx}: card says int8 but the graph has no Q/DQ node")
    online = card.mode == "online"  # a step graph: export.stream_export derived its variants already
    if card.precision == "fp32" and not has_plugin and not online:
        if opts.dla_core is not None:
            check_dla_precision(opts.fp16, opts.int8, opts.calib_cache)
        return None
    if opts.int8 and opts.int8_target == CPU:
        raise refusal("cpu_int8_needs_standard", onnx=opts.onnx, precision=card.precision)
    wanted = "int8" if opts.int8 else "fp16" if opts.fp16 else None
    if wanted is not None and wanted != card.precision:
        raise refusal("step_graph_precision" if online else "derived_precision", onnx=opts.onnx,
                      precision=card.precision, wanted=wanted)
    if opts.calib_cache or opts.calib_dir is not None:
        raise refusal("step_graph_calibration" if online else "derived_calibration", onnx=opts.onnx,
                      precision=card.precision)
    if opts.dla_core is not None:
        check_dla_precision(card.precision == "fp16", card.precision == "int8", False)
    if has_plugin and not opts.plugin:
        log.warning("%s has SaliencyAttention nodes: building it needs --plugin LIB", opts.onnx)
    return card.precision


def standard_from_onnx(onnx: Path, stg: Path, name: str, card: ModelCard) -> tuple[Written, Path]:
    standard = stg / names.standard_graph(name)
    shutil.copyfile(onnx, standard)
    card_file = card.save(stg / names.card_file(name))
    return Written([standard, card_file], {"fp32": standard},
                   ["FP32 parity vs PyTorch: not rerun (--onnx; it was checked at export)"]), standard


def standard_from_checkpoint(checkpoint: Path, stg: Path, name: str, sha: str, *, dynamic_batch: bool,
                             clips_of=None) -> tuple[Written, Path, ModelCard, int, object]:
    """The standard graph of ``checkpoint``; ``clips_of(card)`` (the calibration clips) runs once the
    card is known, before the export: a calibration folder that cannot calibrate is found before
    the heavy work. Returns (written, graph, card, SME count, what ``clips_of`` returned or None)."""
    from export.friendly import count_sme_modules, export_friendly_model
    from export.onnx_export import export_onnx
    from export.parity import check_fp32_parity
    from tsi.checkpoint import load_model

    with stage("load checkpoint"):
        model, card = export_friendly_model(checkpoint)
        reference, _ = load_model(checkpoint)  # as trained: its own attention, BN unfolded
    card = card.replace(source_sha256=sha, precision="fp32")
    calib = clips_of(card) if clips_of is not None else None
    path, card_file = stg / names.standard_graph(name), stg / names.card_file(name)
    with stage("export ONNX") as files:
        export_onnx(model, card, path, source_sha256=sha, dynamic_batch=dynamic_batch)
        card.save(card_file)
        files += [path, card_file]
    with stage("parity onnxruntime vs PyTorch"):
        clips = _random_clips(card, 3 if dynamic_batch else PARITY_CLIPS)
        note = f"FP32 parity: {check_fp32_parity(path, reference, clips)}"
    return Written([path, card_file], {"fp32": path}, [note]), path, card, count_sme_modules(model), calib


# -- derived graphs (export.variants) ----------------------------------------------------------------
def plugin_stage(standard: Path, card: ModelCard, sme: int | None, *, required: bool) -> Written:
    """The plugin variant of the standard graph (``required``: --plugin, a model without saliency
    attention is refused)."""
    with stage("plugin ONNX") as files:
        p = plugin_variant(standard, card, sme)
        if p is None:
            if required:
                raise refusal("plugin_needs_attention")
            return Written()
        files.append(p)
    return Written([p], {"fp32.plugin": p})


def fp16_stage(stg: Path, name: str, standard: Path, card: ModelCard, sme: int | None, *, plugin: bool) -> Written:
    from export.parity import compare_onnx

    out = Written()
    with stage("FP16 ONNX") as files:
        card16 = card.replace(precision="fp16")
        path = write_graph(fp16_graph(load_graph(standard)), stg / names.precision_graph(name, "fp16"), card16)
        out.files.append(path)
        out.graphs["fp16"] = path
        agreement = compare_onnx(standard, path, _random_clips(card, PARITY_CLIPS))
        out.notes.append(f"FP16 vs FP32 (onnxruntime, {PARITY_CLIPS} random clips): {agreement}")
        if plugin:
            p = plugin_variant(path, card16, sme)
            out.files.append(p)
            out.graphs["fp16.plugin"] = p
        files += out.files
    return out


def demo_calibration_dir(out: Path, stg: Path) -> Path:
    """The demo calibrates on synthetic videos (tsi.data.synthetic, seed 1, train split), generated
    once into ``--out/calib_videos`` (through the staging folder, like every output)."""
    from tsi.data.synthetic import MARKER, generate

    marker = out / names.DEMO_CALIB_VIDEOS / MARKER
    if marker.is_file() and json.loads(marker.read_text()).get("complete") is True:
        return names.demo_calibration_videos(out)
    with stage("synthetic calibration videos"):
        generate(stg / names.DEMO_CALIB_VIDEOS, train=DEMO_CALIB_PER_CLASS, val=0, seed=1)
    return names.demo_calibration_videos(stg)


def calibration_clips(calib_dir: Path, card: ModelCard, max_clips: int | None):
    """The calibration clips (``calib.clips.ClipSet``) of ``calib_dir`` for ``card``."""
    from calib.clips import load_calibration_clips

    with stage("calibration clips"):
        return load_calibration_clips(calib_dir, card, max_clips=max_clips)


def learnt_ranges(checkpoint: Path | None) -> list | None:
    """The INT8 ranges a quantization-aware fine-tuning of ``checkpoint`` learnt (``tsi.qat``), if any."""
    if checkpoint is None:
        return None
    from tsi.qat import learnt_points

    return learnt_points(checkpoint)


def int8_stage(stg: Path, name: str, standard: Path, card: ModelCard, sme: int | None, caps, *, clips,
               method: str, bound, cache: bool, plugin: bool, learnt: list | None = None) -> Written:
    """Calibrate on part of ``clips`` (:func:`calibration_clips`) and choose by measuring on the rest
    (``export.int8_choice``; the attention stays in float; ``learnt``: the ranges of a
    quantization-aware fine-tuning, one more candidate), then the Q/DQ graph or, with ``cache``, the
    keyed calibration cache of the same choice."""
    from export.int8_choice import choose_int8

    with stage(f"INT8 calibration ({method}), measured on held-out clips"):
        choice = choose_int8(standard, clips.clips, method=method, bound=bound, learnt=learnt)
    out = Written(notes=choice.notes(), quantization=choice.card_entry())
    if cache:
        from calib.cache import DEFAULT_VERSION_INT, key_path, write_cache

        path = stg / names.calib_cache(name)
        with stage("calibration cache") as files:
            write_cache(path, choice.all_ranges().amax, onnx_sha256=file_sha256(standard), card=card,
                        method=choice.best.label, num_clips=choice.calibrated, quantization=choice.card_entry(),
                        version_int=caps.version_int if caps else DEFAULT_VERSION_INT)
            files += [path, key_path(path)]
        out.files += [path, key_path(path)]
        out.graphs["int8.cache"] = path
        return out
    with stage("Q/DQ ONNX") as files:
        card8 = card.replace(precision="int8", quantization=choice.card_entry())
        path = write_graph(choice.qdq, stg / names.precision_graph(name, "int8"), card8)
        out.files.append(path)
        out.graphs["int8"] = path
        if plugin:
            p = plugin_variant(path, card8, sme)
            out.files.append(p)
            out.graphs["int8.plugin"] = p
        files.extend(f for f in out.files if f.is_file())
    return out


def cpu_int8_stage(stg: Path, name: str, standard: Path, card: ModelCard, *, clips, bound,
                   vnni: bool = False) -> Written:
    """INT8 for CPUs (``export.cpu_int8``): the OpenVINO IR NNCF quantized on part of ``clips``,
    measured on the rest on the runtime's OpenVINO backend."""
    from export.cpu_int8 import build_cpu_int8

    with stage("INT8 for CPUs (NNCF, OpenVINO IR), measured on held-out clips") as files:
        built = build_cpu_int8(standard, clips.clips, stg / names.cpu_int8_ir(name), card, bound=bound, vnni=vnni)
        files += built.files
    return Written(built.files, {"int8.cpu": built.files[0]}, built.notes, built.entry)


def reuse_cache_stage(out: Path, stg: Path, name: str, onnx: Path, card: ModelCard, caps) -> Written:
    """--onnx + --int8 --calib-cache without --calib-dir: the keyed cache already in --out."""
    from calib.cache import check_key, key_path

    cache = out / names.calib_cache(name)
    if not cache.is_file():
        raise refusal("cache_to_reuse", cache=cache)
    with stage("calibration cache (reused)"):
        key = check_key(cache, onnx_sha256=file_sha256(onnx), card=card,
                        version_int=caps.version_int if caps is not None else None)
    files = []
    for p in (cache, key_path(cache)):
        shutil.copyfile(p, stg / p.name)
        files.append(stg / p.name)
    return Written(files, {"int8.cache": stg / cache.name}, quantization=key.get("quantization") or {})


def check_graphs(graphs: dict[str, Path], *, dla: bool) -> None:
    from export.trt_check import assert_trt_compatible

    with stage(f"TensorRT {TARGET_TRT} compatibility"):
        for path in graphs.values():
            if path.suffix == names.ONNX_SUFFIX:
                assert_trt_compatible(path, dla=dla)
                log.info("  %s: OK%s", path.name, " (DLA: static shapes)" if dla else "")


# -- engines ---------------------------------------------------------------------------------------
def engine_targets(opts: Options, graphs: dict[str, Path], caps) -> list[tuple[str, Path, bool]]:
    """(precision, graph, implicit_int8) of every engine to build."""
    plugin = names.PLUGIN_TAG if opts.plugin else ""
    targets = []
    if opts.fp16:
        route = caps.precision_route("fp16") if caps else "flags"
        targets.append(("fp16", graphs[("fp16" if route == "strongly_typed" else "fp32") + plugin], False))
    if opts.int8 and opts.int8_target == TENSORRT:
        targets.append(("int8", graphs["fp32" + plugin], True) if opts.calib_cache
                       else ("int8", graphs["int8" + plugin], False))
    if not targets and not opts.int8:  # --int8-target cpu alone: no engine
        targets.append(("fp32", graphs["fp32" + plugin], False))
    return targets


def builder_options(opts: Options) -> dict:
    """The :class:`export.trt_build.EngineSpec` fields every engine of this run shares."""
    from export.trt_build import DEFAULT_BATCH_PROFILE

    return {"plugin_lib": opts.plugin, "dla_core": opts.dla_core, "timing_cache": opts.timing_cache,
            "workspace_mib": opts.workspace, "batch_profile": opts.profile or DEFAULT_BATCH_PROFILE}


def engines_stage(stg: Path, name: str, graphs: dict[str, Path], card: ModelCard, standard: Path, targets,
                  builder: dict, quantization: dict | None = None) -> Written:
    """An engine ``<name>.<precision>.engine`` (+ its card) per target, with the ``builder`` options;
    ``quantization`` (the INT8 choice): its float layers are pinned to FP32 in the implicit route
    (the Q/DQ graph has them unquantized already) and it goes into the INT8 engine's card."""
    from export.plugin_graph import attention_node_names
    from export.trt_build import EngineSpec, build_engine

    quantization = quantization or {}
    out = Written()
    for precision, graph, implicit in targets:
        path = stg / names.engine(name, precision)
        fp32_layers = attention_node_names(load_graph(standard))
        engine_card = card
        if precision == "int8":
            fp32_layers += list(quantization.get("float_layers", ()))
            engine_card = card.replace(quantization=quantization)
        with stage(f"TensorRT engine {path.name}") as files:
            build_engine(EngineSpec(onnx_path=graph, engine_path=path, precision=precision, card=engine_card,
                                    implicit_int8=implicit, calib_cache=graphs.get("int8.cache"),
                                    onnx_sha256=file_sha256(standard), fp32_layers=fp32_layers, **builder))
            files += [path, card_path_for(path)]
        out.files += [path, card_path_for(path)]
    return out


def run_pipeline(opts: Options, stg: Path, card: ModelCard | None, sha: str, derived: str | None,
                 caps) -> tuple[Written, ModelCard]:
    """Every stage, writing into ``stg``; returns (what they wrote, the card)."""
    dla = opts.dla_core is not None
    if derived is not None:  # a derived graph (FP16 / Q/DQ / plugin variant) is built as it is
        done = Written(graphs={derived + (names.PLUGIN_TAG if opts.plugin else ""): opts.onnx})
        check_graphs(done.graphs, dla=dla)
        if caps is not None:
            done += engines_stage(stg, opts.name, done.graphs, card, opts.onnx, [(card.precision, opts.onnx, False)],
                                  builder_options(opts))
        return done, card
    reuse = opts.int8 and opts.calib_cache and opts.calib_dir is None and opts.onnx is not None
    calib_dir = None
    if opts.int8 and not reuse:
        calib_dir = opts.calib_dir
        if calib_dir is None:
            if not opts.demo:
                raise refusal("int8_needs_calib_dir")
            calib_dir = demo_calibration_dir(opts.out, stg)
    clips_of = None if calib_dir is None else lambda c: calibration_clips(calib_dir, c, opts.calib_clips)
    if opts.onnx is not None:
        done, standard = standard_from_onnx(opts.onnx, stg, opts.name, card)
        sme, clips = None, clips_of(card) if clips_of is not None else None
    else:
        done, standard, card, sme, clips = standard_from_checkpoint(
            opts.checkpoint, stg, opts.name, sha, dynamic_batch=opts.dynamic_batch, clips_of=clips_of)
    if calib_dir is not None and calib_dir.is_relative_to(stg):
        done.files.append(stg / names.DEMO_CALIB_VIDEOS)
    done += plugin_stage(standard, card, sme, required=opts.plugin is not None)
    if opts.fp16:
        done += fp16_stage(stg, opts.name, standard, card, sme, plugin=opts.plugin is not None)
    if reuse:
        done += reuse_cache_stage(opts.out, stg, opts.name, opts.onnx, card, caps)
    elif clips is not None and opts.int8_target == CPU:
        done += cpu_int8_stage(stg, opts.name, standard, card, clips=clips, bound=opts.int8_bound,
                               vnni=opts.int8_cpu_vnni)
    elif clips is not None:
        done += int8_stage(stg, opts.name, standard, card, sme, caps, clips=clips, method=opts.calib_method,
                           bound=opts.int8_bound, cache=opts.calib_cache, plugin=opts.plugin is not None,
                           learnt=learnt_ranges(opts.checkpoint))
    check_graphs(done.graphs, dla=dla)
    if caps is not None:
        done += engines_stage(stg, opts.name, done.graphs, card, standard, engine_targets(opts, done.graphs, caps),
                              builder_options(opts), done.quantization)
    return done, card
