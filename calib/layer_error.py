"""Which quantized layers cost the most: each weighted layer's error against FP32, layer by layer.

Both graphs (the FP32 standard graph and its Q/DQ graph) are run on the same clips with every
quantized layer's float input and float output marked as graph outputs (the Q/DQ graph keeps the
names: a layer reads ``DequantizeLinear(QuantizeLinear(x))`` and writes ``y``), as Polygraphy's
``--onnx-outputs mark all`` comparison does. For each layer the relative error
``||y_int8 - y_fp32|| / ||y_fp32||`` is compared with the error its input already had: the increase
is what quantizing that layer (its input and its weights) added. The layers with the largest
increase are the ones to keep in float first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from calib.graph_maps import graph_maps
from calib.qdq import QUANT_OP_TYPES

log = logging.getLogger(__name__)

MAX_CLIPS = 8  # clips run with every layer's tensors marked (one at a time)


@dataclass(frozen=True)
class LayerError:
    node: str
    op_type: str
    input_error: float  # relative error of the layer's float input, before its quantization
    output_error: float  # relative error of its output

    @property
    def added(self) -> float:
        return self.output_error - self.input_error

    def __str__(self) -> str:
        return (f"{self.node} ({self.op_type}): output error {self.output_error:.3f}, "
                f"+{self.added:.3f} over its input's")


def quantized_layers(qdq) -> list[tuple[str, str, str, str]]:
    """(node, op type, float input, output) of every weighted layer whose activation input is
    quantized in the Q/DQ graph ``qdq``."""
    producer, _ = graph_maps(qdq)
    out = []
    for n in qdq.graph.node:
        if n.op_type not in QUANT_OP_TYPES or not n.input:
            continue
        dq = producer.get(n.input[0])
        if dq is None or dq.op_type != "DequantizeLinear":
            continue
        q = producer.get(dq.input[0])
        if q is not None and q.op_type == "QuantizeLinear":
            out.append((n.name, n.op_type, q.input[0], n.output[0]))
    return out


def _marked_session(proto, tensors: list[str]):
    import onnx
    import onnxruntime as ort

    from runtime.backends.onnxruntime_backend import session_options

    m = onnx.ModelProto()
    m.CopyFrom(proto)
    have = {o.name for o in m.graph.output}
    for t in tensors:
        if t not in have:
            m.graph.output.append(onnx.helper.make_tensor_value_info(t, onnx.TensorProto.FLOAT, None))
            have.add(t)
    return ort.InferenceSession(m.SerializeToString(), session_options(), providers=["CPUExecutionProvider"])


def layer_errors(fp32, qdq, clips: np.ndarray, *, max_clips: int = MAX_CLIPS) -> list[LayerError]:
    """Every quantized layer of ``qdq`` (ModelProto) against ``fp32`` (ModelProto) over up to
    ``max_clips`` of ``clips``, largest added error first."""
    layers = quantized_layers(qdq)
    tensors = sorted({t for _, _, x, y in layers for t in (x, y)})
    if not tensors:
        return []
    sessions = [_marked_session(p, tensors) for p in (fp32, qdq)]
    name = sessions[0].get_inputs()[0].name
    err = dict.fromkeys(tensors, 0.0)
    ref = dict.fromkeys(tensors, 0.0)
    for clip in clips[:max_clips]:
        feed = {name: np.ascontiguousarray(clip[None], dtype=np.float32)}
        outs = []
        for sess in sessions:
            names = [o.name for o in sess.get_outputs()]
            outs.append(dict(zip(names, sess.run(None, feed))))
        for t in tensors:
            f = outs[0][t].astype(np.float64)
            err[t] += float(np.sum((outs[1][t] - f) ** 2))
            ref[t] += float(np.sum(f ** 2))
    rel = {t: np.sqrt(err[t] / ref[t]) if ref[t] > 0 else 0.0 for t in tensors}
    result = [LayerError(n, op, rel[x], rel[y]) for n, op, x, y in layers]
    result.sort(key=lambda e: e.added, reverse=True)
    if result:
        log.info("largest INT8 layer error: %s", result[0])
    return result
