"""Export the streaming step of a causal model (``tsi.streaming``) to ONNX, with its state as
explicit graph inputs and outputs (as TSM's online demo does).

The graph (opset ``export.names.OPSET``, batch 1, every shape static; with ``--dynamic-batch`` the
first axis N of every input and output is dynamic, one row per stream, for one step over several
streams):

    inputs   frame (1, 3, S, S) float32, then every state tensor by name (tsi.streaming.state_spec)
    outputs  logits (1, classes): frame t's logits, then every state as ``<name>.next``

The caller starts from all-zero state tensors (``primed`` = 0) and feeds each ``.next`` output back
as the same-named input of the next call; zeroing them again is a reset. The model card inside
(``metadata_props["tsi.model_card"]``, and ``<name>.online.json`` beside the graph) has
``mode="online"``. What is written, from a checkpoint of a causal model, into a staging folder inside
``--out`` and moved into place when every graph is made and checked (``export.outputs.run_staged``, as
the clip build; the same closing report lists the files, the parity notes and the commands that build
the engines), with the names of ``export.names`` for the stem ``<name>.online``:

    <name>.online.onnx           the FP32 step graph (BatchNorm folded, MatMul-Softmax-MatMul attention)
    <name>.online.json           its card
    <name>.online.plugin.onnx    --plugin: each block's attention (one frame pair) as the
                                 SaliencyAttention plugin node
    <name>.online.fp16.onnx      --fp16: FP16 graph (attention and Softmax in FP32, I/O float32)
    <name>.online.int8.qdq.onnx  --int8 --calib-dir: explicit-INT8 (Q/DQ) graph, attention in float

INT8 calibration (:func:`step_feeds`): each calibration clip (T frames sampled from a video as the
card says, ``calib.clips``) is run as a stream from the zero state through the FP32 step graph; the
ranges (``calib.ranges``, ``feeds=``) are collected over every step's inputs — the frame *and* the
state it meets — so the state tensors, which the Q/DQ graph quantizes where a conv reads them, get
ranges from real streams. The variants are ``export.variants``' (as the clip build's): FP16 and Q/DQ
with the attention in float, TensorRT's Q/DQ rules checked by ``calib.qdq``.

Every graph passes ``export.trt_check`` (the target TensorRT's parser rules); the FP32 graph must agree
with PyTorch over 2T steps from the zero state (:func:`check_step_parity`), the FP16 graph is
compared with it over the same steps. CLI: ``python -m export.stream_export --checkpoint ck.pt``.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import sys
from pathlib import Path

import numpy as np

from calib.ranges import DEFAULT_METHOD, METHODS
from export import names
from export.names import OPSET
from export.options import ONLINE_RULES, check_rules, refusal
from export.outputs import Written, claim_out, run_staged, stage, user_errors
from runtime.card import ModelCard, card_path_for
from runtime.step_graph import FRAME_INPUT, LOGITS_OUTPUT, STATE_OUT_SUFFIX
from runtime.common.files import file_sha256
from runtime.common.errors import ExportError

log = logging.getLogger(__name__)

DEFAULT_CALIB_CLIPS = 64  # streams of T steps: 64 x T (frame, state) inputs


def online_card(card: ModelCard) -> ModelCard:
    return card.replace(mode="online")


def export_step_onnx(model, card: ModelCard, out_path: str | os.PathLike, *, source_sha256: str,
                     opset: int = OPSET, simplify: bool = True, dynamic_batch: bool = False) -> Path:
    """Export the streaming step of ``model`` (a causal TSINet, export-friendly, eval) to
    ``out_path``; the card is written with ``mode="online"``, ``precision="fp32"``.
    ``dynamic_batch``: the first axis of every input and output is dynamic (``N``)."""
    import onnx
    import torch

    from export.onnx_export import save_onnx, set_card, simplify_onnx, torchscript_export
    from tsi.streaming import StreamingTSI

    if model.training:
        raise ValueError("export needs a model in eval mode")
    if not model.cfg.causal:
        raise ExportError("the online (streaming) export needs a causal model (TSIConfig.causal=True); "
                          "this checkpoint's model looks at future frames: export it with tsi-build-engine")
    s = card.input_size
    if model.cfg.input_size != s:
        raise ValueError(f"card input_size {s} does not match the model's {model.cfg.input_size}")
    step = StreamingTSI(model).eval()
    batch = 2 if dynamic_batch else 1  # (a traced batch of 1 could bake 1 into a reshape)
    state = step.zero_state(batch)
    names = step.state_names
    dummy = (torch.randn(batch, 3, s, s), *state.values())
    io_names = [FRAME_INPUT, *names, LOGITS_OUTPUT, *(n + STATE_OUT_SUFFIX for n in names)]
    buf = io.BytesIO()
    with torchscript_export():
        torch.onnx.export(step, dummy, buf, input_names=[FRAME_INPUT, *names],
                          output_names=[LOGITS_OUTPUT, *(n + STATE_OUT_SUFFIX for n in names)],
                          opset_version=opset, do_constant_folding=True, dynamo=False,
                          dynamic_axes={n: {0: "N"} for n in io_names} if dynamic_batch else None)
    proto = onnx.load_from_string(buf.getvalue())
    if simplify:
        proto = simplify_onnx(proto)
    got = [i.name for i in proto.graph.input]
    if got != [FRAME_INPUT, *names]:  # a state the step never reads would be pruned by the exporter
        raise ExportError(f"the exported step graph's inputs {got[:4]}... are not frame + the {len(names)} states")
    proto.producer_name = "tsi-edge"
    proto.doc_string = (f"{card.arch} online step: {FRAME_INPUT} ({'N' if dynamic_batch else 1},3,{s},{s}) + "
                        f"{len(names)} state tensors "
                        f"-> {LOGITS_OUTPUT} + each state as <name>{STATE_OUT_SUFFIX}")
    set_card(proto, online_card(card).replace(source_sha256=source_sha256, precision="fp32"))
    return save_onnx(proto, out_path)


def state_inputs(session) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """``{state name: (shape, dtype)}`` of a step graph's onnxruntime session (every input but the
    frame; a dynamic batch axis as 1: one stream)."""
    dtypes = {"tensor(float)": np.float32, "tensor(float16)": np.float16}
    return {i.name: ((1, *i.shape[1:]), dtypes[i.type]) for i in session.get_inputs() if i.name != FRAME_INPUT}


def run_step_onnx(session, frames: np.ndarray) -> np.ndarray:
    """Feed ``frames`` (steps, 3, S, S) one by one from the zero state; returns (steps, classes)."""
    spec = state_inputs(session)
    state = {k: np.zeros(shape, dtype) for k, (shape, dtype) in spec.items()}
    outs = [LOGITS_OUTPUT, *(k + STATE_OUT_SUFFIX for k in spec)]
    logits = []
    for f in np.ascontiguousarray(frames, dtype=np.float32):
        res = session.run(outs, {FRAME_INPUT: f[None], **state})
        logits.append(res[0][0])
        state = dict(zip(spec, res[1:]))
    return np.stack(logits)


def torch_step_logits(model, frames: np.ndarray) -> np.ndarray:
    import torch

    from tsi.streaming import TSIStream

    stream = TSIStream(model)
    return np.stack([stream.push(torch.from_numpy(np.ascontiguousarray(f[None], dtype=np.float32)))[0].numpy()
                     for f in frames])


def check_step_parity(onnx_path, model, frames: np.ndarray, *, tol: float | None = None):
    """onnxruntime (the step graph) vs the PyTorch step over ``frames`` from the zero state;
    raises ExportError beyond ``tol`` of the logit range (default: export.parity's FP32 tolerance)
    or with any top-1 disagreement."""
    from export.parity import FP32_REL_TOL, compare_logits, ort_session

    tol = FP32_REL_TOL if tol is None else tol
    agreement = compare_logits(torch_step_logits(model, frames), run_step_onnx(ort_session(onnx_path), frames))
    log.info("step parity onnxruntime vs PyTorch: %s", agreement)
    if agreement.rel > tol or agreement.top1 < 1.0:
        raise ExportError(f"{onnx_path}: onnxruntime disagrees with PyTorch over {len(frames)} steps "
                          f"({agreement}; tolerance {tol:g} of the logit range, 100% top-1)")
    return agreement


BATCH_TOL = 1e-5  # the batched step against each stream stepped alone: largest |logit difference|


def check_batched_step(path, frames: np.ndarray) -> float:
    """The dynamic-batch step graph ``path`` stepping the streams of ``frames`` (streams, steps,
    3, S, S) together (``runtime``'s :meth:`~runtime.step_graph.StepModel.run_batch`: the states
    gathered into one batch, each stream's row handed back; stream i joins at step i, so the
    batches grow and each row carries its own history) against each stream stepped alone; returns
    the largest logit difference, ExportError beyond :data:`BATCH_TOL` or for a graph of batch 1
    (whose run_batch steps the streams one by one: nothing batched to check)."""
    from runtime.backends.onnxruntime_step import OnnxRuntimeStep

    if frames.ndim != 5 or len(frames) < 2:
        raise ValueError(f"frames must be (streams >= 2, steps, 3, S, S); got {tuple(frames.shape)}")
    step = OnnxRuntimeStep(path)
    if step.fixed_batch is not None:
        raise ExportError(f"{path}: a step graph of batch {step.fixed_batch}, not a dynamic batch: "
                          "export it with --dynamic-batch to step several streams in one inference")
    n, steps = frames.shape[:2]
    alone = [step.new_state() for _ in range(n)]
    together = [step.new_state() for _ in range(n)]
    worst = 0.0
    for t in range(steps + n - 1):
        rows = [i for i in range(n) if 0 <= t - i < steps]
        batch = np.stack([frames[i, t - i] for i in rows])
        logits, states = step.run_batch(batch, [together[i] for i in rows])
        for r, i in enumerate(rows):
            ref, alone[i] = step.run(batch[r], alone[i])
            together[i] = states[r]
            worst = max(worst, float(np.abs(logits[r] - ref).max()))
    if worst > BATCH_TOL:
        raise ExportError(f"{path}: the batched step differs from the per-stream steps by {worst:.2e} "
                          f"(tolerance {BATCH_TOL:g})")
    return worst


def compare_step_onnx(ref_path, test_path, frames: np.ndarray):
    """Two step graphs (e.g. FP32 vs FP16) over the same frames from the zero state."""
    from export.parity import compare_logits, ort_session

    return compare_logits(run_step_onnx(ort_session(ref_path), frames),
                          run_step_onnx(ort_session(test_path), frames))


def random_frames(card: ModelCard, steps: int, seed: int = 0) -> np.ndarray:
    s = card.input_size
    return np.random.default_rng(seed).standard_normal((steps, 3, s, s)).astype(np.float32)


def step_feeds(step_path, clips: np.ndarray) -> list[dict[str, np.ndarray]]:
    """Each clip (N, T, 3, S, S) as a stream from the zero state through the step graph: the input
    dict (frame + state) of every step, N·T of them."""
    from export.parity import ort_session

    session = ort_session(step_path)
    spec = state_inputs(session)
    outs = [LOGITS_OUTPUT, *(k + STATE_OUT_SUFFIX for k in spec)]
    feeds = []
    for clip in np.asarray(clips, dtype=np.float32):
        state = {k: np.zeros(shape, dtype) for k, (shape, dtype) in spec.items()}
        for f in clip:
            feed = {FRAME_INPUT: np.ascontiguousarray(f[None]), **state}
            feeds.append(feed)
            state = dict(zip(spec, session.run(outs, feed)[1:]))
    return feeds


def int8_step_graph(base: Path, card: ModelCard, clips: np.ndarray, out_path: Path, *,
                    method: str) -> tuple[Path, object]:
    """Calibrate the step graph ``base`` on ``clips`` (N, T, 3, S, S), each streamed from the zero
    state (:func:`step_feeds`), and write the Q/DQ graph (``export.variants``: the attention in
    float); returns (path, agreement of INT8 vs FP32 over two calibration clips streamed back to back)."""
    from export.variants import int8_qdq_graph, write_graph

    with stage("calibration clips (streamed)"):
        feeds = step_feeds(base, clips)
    with stage(f"Q/DQ step ONNX ({method})") as files:
        path = write_graph(int8_qdq_graph(base, None, method, feeds=feeds), out_path, card.replace(precision="int8"))
        files.append(path)
    frames = np.concatenate(list(clips[:2]))  # 2T real frames, one stream
    return path, compare_step_onnx(base, path, frames)


def online_graphs(stg: Path, checkpoint: Path, stem: str, *, fp16: bool, plugin: bool, int8: bool,
                  calib_dir: Path | None, calib_method: str, calib_clips: int | None,
                  dynamic_batch: bool = False) -> tuple[Written]:
    """Every online graph of ``checkpoint`` into the staging folder ``stg`` (file stem ``stem``)."""
    from export.friendly import count_sme_modules, export_friendly_model
    from export.onnx_export import read_card_from_onnx
    from export.pipeline import check_graphs
    from export.variants import fp16_graph, load_graph, plugin_variant, write_graph

    with stage("load checkpoint"):
        model, card = export_friendly_model(checkpoint)
    if not model.cfg.causal:
        raise ExportError(f"{checkpoint}: not a causal model (TSIConfig.causal is False); the online "
                          "export needs one trained with causal=True")
    if int8:  # before the export: a folder that cannot calibrate is refused before the heavy work
        from export.pipeline import calibration_clips

        calib = calibration_clips(calib_dir, card, calib_clips).clips
    base = stg / names.standard_graph(stem)
    done = Written(graphs={"fp32": base})
    with stage("export step ONNX") as files:
        export_step_onnx(model, card, base, source_sha256=file_sha256(checkpoint), dynamic_batch=dynamic_batch)
        card_online = read_card_from_onnx(base)
        files += [base, card_online.save(card_path_for(base))]
        done.files += files
    frames = random_frames(card, 2 * card.frames)
    with stage("step parity onnxruntime vs PyTorch"):
        done.notes.append(f"FP32 step parity ({len(frames)} steps): {check_step_parity(base, model, frames)}")
    if dynamic_batch:
        with stage("batched step vs per-stream steps"):
            streams = frames.reshape(2, card.frames, *frames.shape[1:])
            done.notes.append(f"batched step ({len(streams)} streams x {card.frames} steps) vs per-stream steps: "
                              f"max |logit difference| {check_batched_step(base, streams):.1e}")
    if plugin:
        with stage("plugin step ONNX") as files:
            path = plugin_variant(base, card_online, count_sme_modules(model))
            if path is None:
                raise refusal("plugin_needs_attention")
            files.append(path)
        done += Written([path], {"fp32.plugin": path})
    if fp16:
        with stage("FP16 step ONNX") as files:
            path = write_graph(fp16_graph(load_graph(base)), stg / names.precision_graph(stem, "fp16"),
                               card_online.replace(precision="fp16"))
            files.append(path)
        done += Written([path], {"fp16": path}, [f"FP16 vs FP32 step (onnxruntime, {len(frames)} steps): "
                                                 f"{compare_step_onnx(base, path, frames)}"])
    if int8:
        path, agreement = int8_step_graph(base, card_online, calib, stg / names.precision_graph(stem, "int8"),
                                          method=calib_method)
        done += Written([path], {"int8": path},
                        [f"INT8 Q/DQ vs FP32 step (onnxruntime, 2 calibration clips streamed): {agreement}"])
    check_graphs(done.graphs, dla=False)
    return (done,)


def export_online(checkpoint: str | os.PathLike, out: str | os.PathLike, name: str, *, fp16: bool = False,
                  plugin: bool = False, force: bool = False, int8: bool = False, dynamic_batch: bool = False,
                  calib_dir: str | os.PathLike | None = None, calib_method: str = DEFAULT_METHOD,
                  calib_clips: int | None = DEFAULT_CALIB_CLIPS) -> dict[str, Path]:
    """Checkpoint of a causal model -> the online graphs in ``out`` (see the module docstring), built
    in a staging folder and moved into ``out`` when all are made; returns ``{kind: path}`` (kinds
    ``fp32``, ``card``, ``fp32.plugin``, ``fp16``, ``int8``). Existing files are replaced only with
    ``force``."""
    import time

    from export.report import report_lines
    from export.target_commands import build_engine_cmd
    from runtime.trt_version import TARGET_TRT

    t0 = time.perf_counter()
    checkpoint, out = Path(checkpoint), Path(out)
    calib_dir = None if calib_dir is None else Path(calib_dir)
    check_rules(argparse.Namespace(int8=int8, demo=False, onnx=None, calib_dir=calib_dir, calib_clips=calib_clips,
                                   name=name), ONLINE_RULES)
    stem = names.online_stem(name)
    targets = [names.standard_graph(stem), names.card_file(stem)]
    if plugin:
        targets.append(names.plugin_graph(names.standard_graph(stem)))
    if fp16:
        targets.append(names.precision_graph(stem, "fp16"))
    if int8:
        targets.append(names.precision_graph(stem, "int8"))
    with claim_out(out, targets):  # held until the files are in place
        existing = [str(out / t) for t in targets if (out / t).exists()]
        if existing and not force:
            raise ExportError(f"would overwrite {', '.join(existing)}; pass --force or another --out/--name")
        (done,), written = run_staged(out, lambda stg: online_graphs(
            stg, checkpoint, stem, fp16=fp16, plugin=plugin, int8=int8, calib_dir=calib_dir,
            calib_method=calib_method, calib_clips=calib_clips, dynamic_batch=dynamic_batch))
    final = {kind: out / path.name for kind, path in done.graphs.items()}
    finish = [build_engine_cmd(p, out, stem, ["--plugin", "LIB"] if kind.endswith(names.PLUGIN_TAG) else [])
              for kind, p in final.items()]
    for line in report_lines(out, written, done.notes, time.perf_counter() - t0, finish=finish,
                             heading=f"Build each step graph's engine on the target (TensorRT {TARGET_TRT}; "
                                     "--plugin: the plugin library):"):
        log.info("%s", line)
    return {**final, "card": card_path_for(final["fp32"])}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="tsi-export-online", description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", required=True, type=Path, help="checkpoint of a causal model")
    ap.add_argument("--out", type=Path, default=Path("artifacts/online"))
    ap.add_argument("--name", default=None, help="file name stem (default: the checkpoint's)")
    ap.add_argument("--dynamic-batch", action="store_true",
                    help="a dynamic batch axis N: one step over several streams (tsi-live batches them)")
    ap.add_argument("--fp16", action="store_true", help="also the FP16 step graph")
    ap.add_argument("--plugin", action="store_true", help="also the saliency-attention plugin variant")
    ap.add_argument("--int8", action="store_true", help="also the INT8 Q/DQ step graph, calibrated on --calib-dir")
    ap.add_argument("--calib-dir", type=Path, help="videos for INT8 calibration (class folders or flat)")
    ap.add_argument("--calib-method", default=DEFAULT_METHOD, choices=METHODS)
    ap.add_argument("--calib-clips", type=int, default=DEFAULT_CALIB_CLIPS,
                    help="calibration clips, each streamed from the zero state (default %(default)s)")
    ap.add_argument("--force", action="store_true", help="replace existing outputs")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import tsi.checkpoint  # noqa: F401  (its CheckpointError is a user error)

    try:
        export_online(args.checkpoint, args.out, args.name or args.checkpoint.stem,
                                fp16=args.fp16, plugin=args.plugin, force=args.force, int8=args.int8,
                                calib_dir=args.calib_dir, calib_method=args.calib_method,
                                calib_clips=args.calib_clips, dynamic_batch=args.dynamic_batch)
    except user_errors() + (ValueError,) as e:
        log.error("error: %s", str(e).splitlines()[0])
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
