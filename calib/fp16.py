"""The FP16 ONNX graph, for strongly typed TensorRT builds (11.x takes FP16 only from the graph's
own types; 10.x can use it too, strongly typed).

onnxruntime's float16 converter does the conversion (``onnxruntime.transformers.float16``):
float32 weights and constants become float16 and every node computes in float16, except Softmax
and the nodes the caller keeps (the saliency attention's MatMul-Softmax-MatMul, which export finds:
``export.plugin_graph.attention_node_names``), which stay float32 with Casts around them; the graph's
input ``clip`` and output ``logits`` stay float32 (``keep_io_types``). Values beyond float16's
range are clipped to +-65504 (counted in the log), non-zero values below its smallest subnormal
become +-5.96e-08 rather than 0.

One correction: between two kept nodes (MatMul -> Softmax -> MatMul) the converter casts the
float32 tensor to float16 and straight back, which would round the attention's scores and
probabilities to float16 after all; those round trips are removed (onnx-graphsurgeon), leaving the
graph ``benchmarks/results/fp16_converter.md`` compares with the hand-written converter this module
used to hold: the same nodes, the same Casts, the same float32 nodes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np

log = logging.getLogger(__name__)

FLOAT = 1  # onnx.TensorProto.FLOAT
KEEP_FP32_OPS = ("Softmax",)
FP16_MAX = float(np.finfo(np.float16).max)


def _count_beyond_fp16(proto) -> int:
    """Float32 weight and constant values that float16 cannot hold (they get clipped)."""
    from onnx import numpy_helper

    tensors = list(proto.graph.initializer)
    tensors += [a.t for n in proto.graph.node if n.op_type == "Constant" for a in n.attribute if a.name == "value"]
    return sum(int(np.count_nonzero(np.abs(numpy_helper.to_array(t)) > FP16_MAX))
               for t in tensors if t.data_type == FLOAT)


def drop_cast_round_trips(proto):
    """Feed the consumers of ``Cast(to float32)(Cast(to float16)(x))``, x float32, with x itself."""
    import onnx_graphsurgeon as gs

    graph = gs.import_onnx(proto)
    dropped = 0
    for back in [n for n in graph.nodes if n.op == "Cast" and n.attrs.get("to") == FLOAT]:
        down = back.inputs[0].inputs[0] if back.inputs[0].inputs else None
        if down is None or down.op != "Cast" or down.inputs[0].dtype != np.float32:
            continue
        x, y = down.inputs[0], back.outputs[0]
        if y in graph.outputs:
            continue
        for consumer in list(y.outputs):
            for i, t in enumerate(consumer.inputs):
                if t is y:
                    consumer.inputs[i] = x
        dropped += 1
    log.debug("removed %d float32 -> float16 -> float32 Cast round trips", dropped)
    return gs.export_onnx(graph.cleanup().toposort())


def convert_fp16(proto, *, keep_fp32_nodes: Iterable[str]):
    """Return an FP16 copy of ``proto``: float32 graph I/O; Softmax and the nodes named in
    ``keep_fp32_nodes`` (the caller's: export passes the attention's) in float32."""
    import onnx
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    keep = sorted(set(keep_fp32_nodes))
    clipped = _count_beyond_fp16(proto)
    if clipped:
        log.warning("%d weight/constant value(s) beyond float16's range clipped to +-%g", clipped, FP16_MAX)
    converted = convert_float_to_float16(proto, keep_io_types=True, node_block_list=keep,
                                         op_block_list=list(DEFAULT_OP_BLOCK_LIST) + list(KEEP_FP32_OPS))
    out = onnx.shape_inference.infer_shapes(drop_cast_round_trips(converted), strict_mode=True)
    onnx.checker.check_model(out, full_check=True)
    names = set(keep)
    kept = sum(1 for n in out.graph.node if n.op_type in KEEP_FP32_OPS or n.name in names)
    casts = sum(1 for n in out.graph.node if n.op_type == "Cast")
    log.info("FP16 graph: %d Casts, %d nodes kept in float32", casts, kept)
    return out
