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

from calib.graph_maps import graph_maps
from calib.ranges import Ranges, ort_method
from runtime.common.errors import CalibrationError

log = logging.getLogger(__name__)

QUANT_OP_TYPES = ("Conv", "MatMul", "Gemm")
EXTRA_OPTIONS = {"ActivationSymmetric": True, "WeightSymmetric": True, "AddQDQPairToWeight": True,
                 "DedicatedQDQPair": True, "QuantizeBias": False,
                 # TensorRT's placement: Q/DQ on the inputs of weighted layers, never on their outputs
                 "OpTypesToExcludeOutputQuantization": list(QUANT_OP_TYPES)}
QMAX = 127  # symmetric int8: scale = amax / QMAX (activations and weights, as TensorRT reads them)
FUSABLE_OP_TYPES = ("Conv",)  # TensorRT fuses Conv + (residual) Add when the Conv output has one consumer


def _through_qdq(tensor: str, producer: dict) -> tuple[str, bool]:
    """(the float tensor behind ``DequantizeLinear(QuantizeLinear(x))``, whether it was quantized)."""
    dq = producer.get(tensor)
    if dq is not None and dq.op_type == "DequantizeLinear":
        q = producer.get(dq.input[0])
        if q is not None and q.op_type == "QuantizeLinear":
            return q.input[0], True
    return tensor, False


def residual_adds(proto) -> list[tuple[str, str, str]]:
    """``(add, branch, identity)`` of every residual Add of a graph (float or Q/DQ): a two-input Add
    with an input made by a Conv that feeds nothing else (the branch TensorRT fuses into the Conv);
    the other input is the identity (a shortcut Conv's output counts as identity)."""
    g = proto.graph
    producer, consumers = graph_maps(proto)
    inits = {i.name for i in g.initializer}

    def float_consumers(t: str) -> int:  # consumers of t, looking through its Q/DQ pairs
        n = 0
        for c in consumers.get(t, []):
            if c.op_type == "QuantizeLinear":
                for dq in consumers.get(c.output[0], []):
                    n += len(consumers.get(dq.output[0], []))
            else:
                n += 1
        return n

    out = []
    for add in g.node:
        if add.op_type != "Add" or len(add.input) != 2:
            continue
        src = [_through_qdq(i, producer)[0] for i in add.input]
        if any(s in inits or s not in producer or producer[s].op_type == "Constant" for s in src):
            continue
        branch = [k for k, s in enumerate(src) if producer[s].op_type in FUSABLE_OP_TYPES and float_consumers(s) == 1]
        if branch:
            b = branch[0]
            out.append((add.name, src[b], src[1 - b]))
    return out


def residual_add_problems(proto) -> list[str]:
    """TensorRT's residual rule on a Q/DQ graph: the branch (a Conv's output) enters the Add in float,
    so TensorRT fuses Conv + Add; the identity enters quantized. Names every Conv whose output is
    quantized before a residual Add, and every Add whose identity is not quantized."""
    g = proto.graph
    producer, _ = graph_maps(proto)
    by_name = {n.name: n for n in g.node}
    problems = []
    for add_name, _, _ in residual_adds(proto):
        add = by_name[add_name]
        seen = [_through_qdq(i, producer) for i in add.input]
        convs = [(s, q) for s, q in seen if producer[s].op_type in FUSABLE_OP_TYPES]
        if convs and all(q for _, q in convs):
            for s, _ in convs:
                problems.append(f"Conv {producer[s].name}: output quantized before the residual Add {add_name} "
                                "(TensorRT cannot fuse Conv + Add there)")
        if sum(q for _, q in seen) != 1:
            problems.append(f"residual Add {add_name}: {sum(q for _, q in seen)} quantized inputs, expected the "
                            "identity only")
    return problems


def place_residual_qdq(proto, ranges: Ranges) -> tuple[int, int]:
    """Apply the residual rule to onnxruntime's Q/DQ graph in place: each residual Add reads its branch
    (the Conv output) in float and its identity through a Q/DQ pair (per-tensor, the identity's
    calibrated range). Returns (identity pairs added, branch pairs bypassed)."""
    import onnx
    from onnx import helper, numpy_helper

    g = proto.graph
    producer, consumers = graph_maps(proto)
    by_name = {n.name: n for n in g.node}
    added = bypassed = 0
    new_nodes = []
    zp_name = "residual_qdq/zero_point"
    for add_name, branch, identity in residual_adds(proto):
        add = by_name[add_name]
        for k, t in enumerate(add.input):
            src, quantized = _through_qdq(t, producer)
            if src == branch and quantized:
                add.input[k] = branch
                bypassed += 1
            elif src == identity and not quantized:
                amax = ranges.amax.get(identity)
                if amax is None:
                    log.warning("residual Add %s: no range for its identity %s; left in float", add_name, identity)
                    continue
                scale = np.float32(max(float(amax), float(np.finfo(np.float32).tiny) * QMAX) / QMAX)
                p = f"{add_name}/identity"
                g.initializer.append(numpy_helper.from_array(np.array(scale, np.float32), f"{p}/scale"))
                if added == 0:
                    g.initializer.append(numpy_helper.from_array(np.array(0, np.int8), zp_name))
                new_nodes.append((add, [
                    helper.make_node("QuantizeLinear", [identity, f"{p}/scale", zp_name], [f"{p}/quantized"],
                                     name=f"{p}/QuantizeLinear"),
                    helper.make_node("DequantizeLinear", [f"{p}/quantized", f"{p}/scale", zp_name],
                                     [f"{p}/dequantized"], name=f"{p}/DequantizeLinear")]))
                add.input[k] = f"{p}/dequantized"
                added += 1
    # insert each new pair right before its Add (keeps the order topological)
    order = []
    pending = {id(add): pair for add, pair in new_nodes}
    for n in g.node:
        order += pending.get(id(n), [])
        order.append(n)
    del g.node[:]
    g.node.extend(order)
    _drop_unused_qdq(g)
    onnx.checker.check_model(proto)
    return added, bypassed


def _drop_unused_qdq(g) -> None:
    """Remove the Q/DQ nodes nothing reads any more, then the initializers nothing reads."""
    order = list(g.node)
    used = {i for n in order for i in n.input} | {o.name for o in g.output}
    while True:
        dead = [n for n in order if n.op_type in ("QuantizeLinear", "DequantizeLinear")
                and not any(o in used for o in n.output)]
        if not dead:
            break
        order = [n for n in order if n not in dead]
        used = {i for n in order for i in n.input} | {o.name for o in g.output}
    del g.node[:]
    g.node.extend(order)
    names = {i for n in g.node for i in n.input}
    keep = [i for i in g.initializer if i.name in names]
    del g.initializer[:]
    g.initializer.extend(keep)


def with_ranges(qdq, ranges: Ranges):
    """A copy of the Q/DQ graph ``qdq`` with every activation scale set from ``ranges`` (amax / :data:`QMAX`,
    as ``quantize_static`` and :func:`place_residual_qdq` set them): the graph another range method
    gives, without quantizing again (the Q/DQ nodes do not depend on the ranges)."""
    import onnx
    from onnx import numpy_helper

    out = onnx.ModelProto()
    out.CopyFrom(qdq)
    inits = {i.name: i for i in out.graph.initializer}
    for n in out.graph.node:
        amax = ranges.amax.get(n.input[0]) if n.op_type == "QuantizeLinear" else None
        if amax is not None and amax > 0 and n.input[1] in inits:
            inits[n.input[1]].CopyFrom(numpy_helper.from_array(np.array(amax / QMAX, np.float32), n.input[1]))
    return out


def keep_in_float(qdq, nodes):
    """A copy of the Q/DQ graph ``qdq`` in which ``nodes`` (names) read their inputs and weights in
    float: each ``DequantizeLinear(QuantizeLinear(x))`` they read is replaced by ``x`` (every consumer
    has its own pair: DedicatedQDQPair), and the pairs nothing reads any more are removed."""
    import onnx

    out = onnx.ModelProto()
    out.CopyFrom(qdq)
    producer, _ = graph_maps(out)
    wanted = set(nodes)
    for n in out.graph.node:
        if n.name in wanted:
            for k, t in enumerate(n.input):
                n.input[k] = _through_qdq(t, producer)[0]
    _drop_unused_qdq(out.graph)
    return out


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
    added, bypassed = place_residual_qdq(qdq, ranges)
    log.info("residual Adds: %d identity inputs quantized, %d Conv branches left in float", added, bypassed)
    return qdq


def verify_qdq(proto, float_nodes) -> list[str]:
    """Problems of a Q/DQ graph for TensorRT (empty list = fine); ``float_nodes`` must have no
    quantized input."""
    from onnx import numpy_helper

    g = proto.graph
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    producer, consumers = graph_maps(proto)
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
            problems.append(f"float node {name} is missing from the Q/DQ graph")
            continue
        if any(i in producer and producer[i].op_type == "DequantizeLinear" for i in node.input):
            problems.append(f"float node {name} ({node.op_type}) has quantized inputs")
    problems += residual_add_problems(proto)
    # weighted layers' outputs stay float (TensorRT fuses what follows), except where the output is a
    # residual Add's identity (a shortcut Conv) or another weighted layer's input
    identity_adds = {(add, identity) for add, _, identity in residual_adds(proto)}
    for n in g.node:
        if n.op_type not in QUANT_OP_TYPES:
            continue
        for o in n.output:
            for q in (c for c in consumers.get(o, []) if c.op_type == "QuantizeLinear"):
                users = [u for dq in consumers.get(q.output[0], []) for u in consumers.get(dq.output[0], [])]
                bad = [u for u in users if u.op_type not in QUANT_OP_TYPES and (u.name, o) not in identity_adds]
                if bad:
                    problems.append(f"{n.op_type} {n.name}: output quantized for {bad[0].op_type} {bad[0].name}, "
                                    "which is neither a weighted layer nor a residual Add's identity")
    return problems


def make_qdq(model_path: str | os.PathLike, ranges: Ranges, *, float_nodes):
    """Quantize (``float_nodes`` kept in float) and verify; raises CalibrationError listing every
    problem."""
    float_nodes = list(float_nodes)
    return checked_qdq(quantize_qdq(model_path, ranges, float_nodes=float_nodes), float_nodes, str(model_path))


def checked_qdq(qdq, float_nodes, source: str):
    """``qdq`` after :func:`verify_qdq`; raises CalibrationError listing every problem."""
    problems = verify_qdq(qdq, list(float_nodes))
    if problems:
        raise CalibrationError(f"the Q/DQ graph of {source} is not TensorRT-ready:\n  - " + "\n  - ".join(problems))
    n_q = sum(1 for n in qdq.graph.node if n.op_type == "QuantizeLinear")
    log.info("Q/DQ graph: %d QuantizeLinear, %d node(s) kept in float", n_q, len(list(float_nodes)))
    return qdq
