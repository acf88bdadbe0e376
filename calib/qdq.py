"""The explicit-INT8 (Q/DQ) ONNX graph, for TensorRT 10.x and 11.x.

``onnxruntime.quantization.quantize_static`` with the settings design/deployment.md lists — QDQ,
QInt8 activations and weights, per-channel weights, ActivationSymmetric, WeightSymmetric,
AddQDQPairToWeight, DedicatedQDQPair — plus ``QuantizeBias=False``: by default onnxruntime also
quantizes Conv/Gemm biases to int32 with a DequantizeLinear, which TensorRT's parser does not take
(DequantizeLinear is INT8/FP8/INT4 only; TensorRT fuses a float bias itself). Quantized ops:
Conv, MatMul, Gemm, except the nodes the caller keeps in float (the attention MatMuls: export finds
them by the MatMul-Softmax-MatMul pattern) passed as ``nodes_to_exclude``; Softmax is not quantized:
attention stays in float.

The ranges are the ones :mod:`calib.ranges` computed (handed to ``quantize_static`` through its
calibration-cache file, so one calibration pass serves the Q/DQ graph and the TensorRT cache).
:func:`verify_qdq` then checks what TensorRT needs: zero points all 0 (int8), weights per-channel on
axis 0, activations per-tensor, attention unquantized (export then runs ``export.trt_check`` on it,
as on every graph it writes).
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from calib.ranges import Ranges, ort_method
from runtime.errors import CalibrationError

log = logging.getLogger(__name__)

QUANT_OP_TYPES = ("Conv", "MatMul", "Gemm")
EXTRA_OPTIONS = {"ActivationSymmetric": True, "WeightSymmetric": True, "AddQDQPairToWeight": True,
                 "DedicatedQDQPair": True, "QuantizeBias": False}


def preprocess_for_quantization(model_path: str | os.PathLike, out_path: str | os.PathLike) -> Path:
    """onnxruntime's ``quant_pre_process`` without its graph optimisation: shape inference and the
    "pre-processed" mark only, so every tensor keeps its name (the ranges are keyed by name)."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    quant_pre_process(str(model_path), str(out_path), skip_optimization=True)
    return Path(out_path)


def quantize_qdq(model_path: str | os.PathLike, ranges: Ranges, *, float_nodes):
    """Return the Q/DQ ``ModelProto`` of the standard ONNX at ``model_path`` (not yet written);
    ``float_nodes`` (node names) stay unquantized."""
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.calibrate import save_tensors_data

    excluded = [n for n in float_nodes if n]
    with tempfile.TemporaryDirectory(prefix="tsi_qdq_") as tmp:
        pre = preprocess_for_quantization(model_path, Path(tmp) / "pre.onnx")
        cache = Path(tmp) / "ranges.json"
        save_tensors_data(ranges.tensors_data, cache)
        out = Path(tmp) / "qdq.onnx"
        quantize_static(str(pre), str(out), None, quant_format=QuantFormat.QDQ,
                        op_types_to_quantize=list(QUANT_OP_TYPES), per_channel=True,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        nodes_to_exclude=excluded, calibrate_method=ort_method(ranges.method),
                        extra_options=dict(EXTRA_OPTIONS), calibration_cache_path=str(cache))
        qdq = onnx.load(str(out))
    keep = [p for p in qdq.metadata_props if p.key != "onnx.quant.pre_process"]
    del qdq.metadata_props[:]
    qdq.metadata_props.extend(keep)
    return qdq


def verify_qdq(proto, float_nodes) -> list[str]:
    """Problems of a Q/DQ graph for TensorRT (empty list = fine); ``float_nodes`` must have no
    quantized input."""
    from onnx import numpy_helper

    g = proto.graph
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    producer = {o: n for n in g.node for o in n.output}
    consumers: dict[str, list] = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    problems = []
    qdq_nodes = [n for n in g.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    if not qdq_nodes:
        problems.append("no QuantizeLinear/DequantizeLinear node: nothing was quantized")
    for n in qdq_nodes:
        zp = inits.get(n.input[2]) if len(n.input) > 2 else None
        if zp is None or zp.dtype != np.int8 or np.any(zp != 0):
            problems.append(f"{n.name}: zero point {None if zp is None else (zp.dtype, zp.ravel()[:3].tolist())}, "
                            "expected int8 0")
        scale = inits.get(n.input[1])
        axis = next((a.i for a in n.attribute if a.name == "axis"), 1)
        src = n.input[0]
        is_weight = src in inits or (src in producer and producer[src].op_type == "QuantizeLinear"
                                     and producer[src].input[0] in inits)
        if scale is None:
            problems.append(f"{n.name}: scale is not an initializer")
        elif is_weight and n.op_type == "DequantizeLinear":
            w = inits.get(src) if src in inits else inits[producer[src].input[0]]
            if scale.size != w.shape[0] or axis != 0:
                problems.append(f"{n.name}: weight scale of size {scale.size} on axis {axis}, expected "
                                f"per-channel axis 0 ({w.shape[0]} channels)")
        elif not is_weight and scale.size != 1:
            problems.append(f"{n.name}: activation scale of size {scale.size}, expected per-tensor")
    by_name = {n.name: n for n in g.node}
    for name in float_nodes:
        node = by_name.get(name)
        if node is None:
            problems.append(f"attention node {name} is missing from the Q/DQ graph")
            continue
        if any(i in producer and producer[i].op_type == "DequantizeLinear" for i in node.input):
            problems.append(f"attention node {name} ({node.op_type}) has quantized inputs")
    return problems


def make_qdq(model_path: str | os.PathLike, ranges: Ranges, *, float_nodes):
    """Quantize (``float_nodes`` kept in float) and verify; raises CalibrationError listing every
    problem."""
    float_nodes = list(float_nodes)
    qdq = quantize_qdq(model_path, ranges, float_nodes=float_nodes)
    problems = verify_qdq(qdq, float_nodes)
    if problems:
        raise CalibrationError(f"the Q/DQ graph of {model_path} is not TensorRT-ready:\n  - " + "\n  - ".join(problems))
    n_q = sum(1 for n in qdq.graph.node if n.op_type == "QuantizeLinear")
    log.info("Q/DQ graph: %d QuantizeLinear, attention kept in float", n_q)
    return qdq
