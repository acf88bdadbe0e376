"""The FP16 ONNX graph, for strongly typed TensorRT builds (11.x takes FP16 only from the graph's
own types; 10.x can use it too, strongly typed).

Written with ``onnx`` alone (no onnxconverter-common): float32 initializers and constants become
float16, every node computes in float16, except Softmax and the nodes the caller keeps (the
attention MatMuls, which export finds by the MatMul-Softmax-MatMul pattern), which stay float32 with Casts around them. Engine I/O stays float32:
a Cast after the input ``clip`` and before the output ``logits``. Values beyond float16's range
are clipped (and counted in the log).
"""

from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)

FLOAT, FLOAT16 = 1, 10  # onnx.TensorProto.FLOAT / FLOAT16
KEEP_FP32_OPS = frozenset({"Softmax"})
# ops with float inputs that are parameters, not data (Resize scales, ...) or with subgraphs: this
# converter does not handle them (the TSI graphs have none) and refuses rather than guess
UNSUPPORTED_OPS = frozenset({"Resize", "Upsample", "RoiAlign", "Range", "RandomNormal", "RandomUniform",
                             "RandomNormalLike", "RandomUniformLike", "EyeLike", "Loop", "If", "Scan"})
FP16_MAX = float(np.finfo(np.float16).max)


def _to_fp16(arr: np.ndarray, what: str) -> np.ndarray:
    clipped = int(np.count_nonzero(np.abs(arr) > FP16_MAX))
    if clipped:
        log.warning("%s: %d value(s) beyond float16's range clipped to +-%g", what, clipped, FP16_MAX)
    return np.clip(arr, -FP16_MAX, FP16_MAX).astype(np.float16)


def convert_fp16(proto, *, keep_fp32_nodes):
    """Return an FP16 copy of ``proto`` (float32 graph I/O; Softmax and ``keep_fp32_nodes`` - the
    attention's nodes, which the caller finds: ``export.plugin_graph.attention_node_names`` - in
    float32)."""
    import onnx
    from onnx import helper, numpy_helper

    bad = [f"{n.name or '?'} ({n.op_type})" for n in proto.graph.node if n.op_type in UNSUPPORTED_OPS]
    if bad:
        raise ValueError(f"convert_fp16 does not handle {', '.join(bad[:5])}")
    keep = set(keep_fp32_nodes)
    model = onnx.shape_inference.infer_shapes(proto, strict_mode=True)
    g = model.graph
    elem = {vi.name: vi.type.tensor_type.elem_type
            for vi in list(g.input) + list(g.output) + list(g.value_info) if vi.type.HasField("tensor_type")}
    for init in g.initializer:
        elem[init.name] = init.data_type
    for n in g.node:  # Constant outputs may lack value_info
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    elem[n.output[0]] = a.t.data_type

    def is_fp32_node(n) -> bool:
        return n.op_type in KEEP_FP32_OPS or n.name in keep

    home: dict[str, int] = {}  # dtype each float tensor is produced in
    for vi in g.input:
        if elem.get(vi.name) == FLOAT:
            home[vi.name] = FLOAT
    consumers: dict[str, list] = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)

    # initializers: float16 when every consumer computes in float16
    for init in g.initializer:
        if init.data_type != FLOAT:
            continue
        users = consumers.get(init.name, [])
        if users and not any(is_fp32_node(u) for u in users):
            arr = _to_fp16(numpy_helper.to_array(init), init.name)
            init.CopyFrom(numpy_helper.from_array(arr, init.name))
            home[init.name] = FLOAT16
        else:
            home[init.name] = FLOAT

    for n in g.node:
        fp32 = is_fp32_node(n)
        if not fp32:
            if n.op_type == "Cast":
                for a in n.attribute:
                    if a.name == "to" and a.i == FLOAT:
                        a.i = FLOAT16
            for a in n.attribute:
                if a.name == "value" and a.t.data_type == FLOAT:  # Constant, ConstantOfShape
                    a.t.CopyFrom(numpy_helper.from_array(_to_fp16(numpy_helper.to_array(a.t), n.name), a.t.name))
        for o in n.output:
            if elem.get(o) == FLOAT:
                home[o] = FLOAT if fp32 else FLOAT16

    # Casts where a consumer wants the other float type
    new_nodes, casts = [], {}

    def cast_to(name: str, dtype: int) -> str:
        key = (name, dtype)
        if key not in casts:
            suffix = "fp16" if dtype == FLOAT16 else "fp32"
            out = f"{name}/cast_{suffix}"
            new_nodes.append(helper.make_node("Cast", [name], [out], name=f"{name}/Cast_{suffix}", to=dtype))
            casts[key] = out
        return casts[key]

    for n in list(g.node):
        want = FLOAT if is_fp32_node(n) else FLOAT16
        for idx, i in enumerate(n.input):
            if i in home and home[i] != want:
                n.input[idx] = cast_to(i, want)
        new_nodes.append(n)

    # graph outputs stay float32
    out_nodes = []
    for vo in g.output:
        if home.get(vo.name) == FLOAT16:
            inner = f"{vo.name}/fp16"
            for n in new_nodes:
                n.output[:] = [inner if o == vo.name else o for o in n.output]
                n.input[:] = [inner if i == vo.name else i for i in n.input]
            out_nodes.append(helper.make_node("Cast", [inner], [vo.name], name=f"{vo.name}/Cast_fp32", to=FLOAT))
    del g.node[:]
    g.node.extend(new_nodes + out_nodes)
    del g.value_info[:]
    # each Cast sits right before its first consumer, after the producer: still topological
    out = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    onnx.checker.check_model(out, full_check=True)
    n16 = sum(1 for n in out.graph.node if n.op_type == "Cast")
    log.info("FP16 graph: %d Casts, %d nodes kept in float32", n16, sum(1 for n in g.node if is_fp32_node(n)))
    return out
