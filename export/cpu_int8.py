"""INT8 for CPUs: the FP32 graph quantized by NNCF for OpenVINO (``--int8 --int8-target cpu``).

The Q/DQ graph of ``export.int8_choice`` is written for TensorRT; on a CPU it runs slower than FP32.
Here the standard FP32 ONNX is read by OpenVINO and quantized by NNCF's post-training quantization
(``nncf.quantize``, target device CPU) on the calibration part of the clips, split as
``calib.clips.split_clips`` splits them; the attention (MatMul-Softmax-MatMul,
``export.plugin_graph.attention_node_names``, with the reshapes and the scaling on its way in:
:func:`attention_float_scope`) stays in float through NNCF's ignored scope, and the
weights keep NNCF's overflow fix on every layer (7-bit weight ranges, so the IR runs correctly on
CPUs without VNNI as well, where the 8-bit products can saturate), unless the build is told the
target has VNNI (``vnni=True``, ``--int8-cpu-vnni``: full 8-bit weights; :func:`overflow_fix`).
The card's quantization entry records which (``overflow_fix``), and the runtime's OpenVINO backend
warns when an IR without the fix opens on a CPU without VNNI. The IR
``<n>.int8.cpu.xml`` is saved with its float parts in FP32 and its card (precision int8, the
``quantization`` entry of ``export.int8_choice.card_entry``, method ``nncf``) beside it; it is then
opened on the runtime's OpenVINO backend, as deployed, and compared with the FP32 graph
(onnxruntime) on the held-out clips against the build's :class:`export.int8_choice.Bound`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from calib.clips import split_clips
from calib.graph_maps import graph_maps
from export.int8_choice import Bound, card_entry
from export.names import ir_weights
from export.parity import Agreement, compare_logits, ort_session, run_onnx
from runtime.card import ModelCard, card_path_for
from runtime.common.errors import ExportError

log = logging.getLogger(__name__)

METHOD = "nncf"  # the card's quantization method
FIX, NO_FIX = "enable", "disable"  # nncf.OverflowFix values: on every layer / none (a CPU with VNNI)
PASS_THROUGH = ("Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten", "Identity")  # ONNX ops
SCALES = ("Mul", "Div")  # by a constant: the attention's scaling, kept in float with it


@dataclass
class CpuInt8:
    files: list[Path]  # the IR, its weights, its card
    agreement: Agreement  # vs FP32 on the held-out clips
    entry: dict  # the card's quantization
    notes: list[str] = field(default_factory=list)


def _modules():
    """(nncf, openvino), or one line saying how to install them."""
    try:
        import nncf
        import openvino
    except ImportError as e:
        raise ExportError(f'--int8-target cpu needs NNCF and OpenVINO ({e.name} is missing): '
                          'pip install ".[openvino]"') from None
    return nncf, openvino


def attention_float_scope(proto, attention: list[str]) -> list[str]:
    """The ``attention`` nodes and the ops that only reshape or scale a tensor on its way into one of
    its MatMuls (Reshape, Transpose, ..., a Mul/Div by a constant: the query's scaling): NNCF quantizes
    a Multiply's input, so without them a FakeQuantize would sit upstream of the attention's query."""
    producer, _ = graph_maps(proto)
    consts = {i.name for i in proto.graph.initializer} | {o for n in proto.graph.node if n.op_type == "Constant"
                                                          for o in n.output}
    nodes = {n.name: n for n in proto.graph.node}
    scope = list(attention)
    for name in attention:
        if nodes[name].op_type != "MatMul":
            continue
        for tensor in nodes[name].input:
            node = producer.get(tensor)
            while node is not None and (node.op_type in PASS_THROUGH
                                        or node.op_type in SCALES and any(i in consts for i in node.input)):
                if node.name not in scope:
                    scope.append(node.name)
                data = [i for i in node.input if i not in consts]
                node = producer.get(data[0]) if len(data) == 1 else None
    return scope


def overflow_fix(vnni: bool) -> str:
    """NNCF's overflow fix for a target CPU with (``vnni``) or without VNNI: without, every layer's
    weights take 7-bit ranges, so the 8-bit products of AVX2 / AVX-512 without VNNI cannot saturate."""
    return NO_FIX if vnni else FIX


def weights_of(fix: str | None) -> str:
    """What a card's ``overflow_fix`` says of the IR's weights (None: a card without the entry)."""
    if fix == NO_FIX:
        return "full 8-bit weights, for CPUs with VNNI (--int8-cpu-vnni)"
    return "the overflow fix on every layer (7-bit weights, for any x86 CPU)" if fix == FIX else "no overflow-fix entry"


def quantized_model(standard: str | os.PathLike, calib: np.ndarray, floats: list[str], *, vnni: bool = False):
    """The OpenVINO model of ``standard`` quantized by NNCF on ``calib`` (N, T, 3, S, S), the nodes
    ``floats`` (:func:`attention_float_scope`) kept in float, for a CPU with or without VNNI."""
    nncf, _ = _modules()
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix
    from runtime.backends.base import BackendError
    from runtime.backends.openvino_backend import read_model

    logging.getLogger("nncf").setLevel(max(logging.WARNING, log.getEffectiveLevel()))
    try:
        model = read_model(Path(standard))
    except BackendError as e:
        raise ExportError(str(e)) from None
    static = model.inputs[0].get_partial_shape()[0].is_static
    batch = model.inputs[0].get_partial_shape()[0].get_length() if static else 1
    items = [calib[i:i + batch] for i in range(0, len(calib) - batch + 1, batch)]
    return nncf.quantize(model, nncf.Dataset(items), target_device=nncf.TargetDevice.CPU, subset_size=len(items),
                         ignored_scope=nncf.IgnoredScope(names=list(floats)),
                         advanced_parameters=AdvancedQuantizationParameters(overflow_fix=OverflowFix(overflow_fix(vnni))))


def ir_logits(xml: Path, clips: np.ndarray, card: ModelCard) -> np.ndarray:
    """Logits of ``clips`` from the IR ``xml`` (card ``card``) on the runtime's OpenVINO backend."""
    from runtime.backends.openvino_backend import OpenVINOBackend

    backend = OpenVINOBackend().load(xml, card)
    try:
        b = backend.fixed_batch or len(clips)
        return np.concatenate([backend.infer(clips[i:i + b]) for i in range(0, len(clips), b)])
    finally:
        backend.close()


def write_cpu_int8_ir(standard: str | os.PathLike, calib: np.ndarray, xml: Path, *, proto=None,
                      vnni: bool = False) -> Path:
    """``standard`` (the FP32 ONNX file; ``proto``: it already loaded) quantized for CPUs (``vnni``:
    ones with VNNI) on ``calib`` with the attention in float (:func:`attention_float_scope`), saved as
    the IR ``xml`` with its float parts in FP32; returns ``xml``."""
    from export.plugin_graph import attention_node_names
    from export.variants import load_graph

    _, openvino = _modules()
    fp32 = load_graph(standard) if proto is None else proto
    model = quantized_model(standard, calib, attention_float_scope(fp32, attention_node_names(fp32)), vnni=vnni)
    openvino.save_model(model, str(xml), compress_to_fp16=False)
    return Path(xml)


def build_cpu_int8(standard: str | os.PathLike, clips: np.ndarray, xml: Path, card: ModelCard, *,
                   bound: Bound = Bound(), vnni: bool = False) -> CpuInt8:
    """Quantize ``standard`` (the FP32 ONNX file, card ``card``) for CPUs on part of ``clips``, write
    the IR ``xml`` (its ``.bin`` and card beside it) and measure it on the rest (module docstring)."""
    from export.variants import load_graph

    calib, held = split_clips(clips)
    fp32 = load_graph(standard)
    ref = run_onnx(None, held, session=ort_session(fp32))
    write_cpu_int8_ir(standard, calib, xml, proto=fp32, vnni=vnni)
    agreement = compare_logits(ref, ir_logits(xml, held, card.replace(precision="int8")))
    entry = {**card_entry(METHOD, agreement, bound, len(calib), len(held)), "overflow_fix": overflow_fix(vnni)}
    card_file = card.replace(precision="int8", quantization=entry).save(card_path_for(xml))
    verdict = "within" if bound.holds(agreement) else "OUTSIDE"
    notes = [f"INT8 for CPUs (NNCF, OpenVINO IR {xml.name}; attention in float, {weights_of(entry['overflow_fix'])}) vs "
             f"FP32 on {len(held)} held-out calibration clips (calibrated on the other {len(calib)}): "
             f"{agreement} ({verdict} the bound: {bound})"]
    return CpuInt8([xml, xml.with_name(ir_weights(xml)), card_file], agreement, entry, notes)
