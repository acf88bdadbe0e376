"""Test-side references for the plugin graph: the NumPy ``SaliencyAttention``, the plugin graph run
by ``onnx.reference`` with it, and the plugin nodes expanded back to standard ops (so onnxruntime can
run the plugin graph's wiring)."""

from __future__ import annotations

import numpy as np

from export.plugin_graph import PLUGIN_DOMAIN, PLUGIN_NAMESPACE, PLUGIN_OP, PLUGIN_VERSION


def saliency_attention_ref(q: np.ndarray, k: np.ndarray, v: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """NumPy reference of the node: softmax(scale * q @ k^T, axis=-1) @ v, (B, L, D) x3 -> (B, L, D).
    Computed in float64 and returned in q's dtype."""
    if q.ndim != 3 or k.ndim != 3 or v.ndim != 3:
        raise ValueError(f"expected (B, L, D) inputs, got {q.shape}, {k.shape}, {v.shape}")
    s = scale * np.matmul(q.astype(np.float64), np.swapaxes(k.astype(np.float64), -1, -2))
    s -= s.max(axis=-1, keepdims=True)
    p = np.exp(s)
    p /= p.sum(axis=-1, keepdims=True)
    return np.matmul(p, v.astype(np.float64)).astype(q.dtype)


def plugin_nodes(proto) -> list:
    return [n for n in proto.graph.node if n.op_type == PLUGIN_OP]


def expand_plugin_nodes(proto):
    """Inverse of :func:`make_plugin_graph`: each ``SaliencyAttention(q, k, v)`` node becomes
    ``[Mul(scale)] -> MatMul(q, Transpose(k)) -> Softmax -> MatMul(., v)`` in standard ops, so
    onnxruntime runs the plugin graph's wiring."""
    import onnx
    from onnx import helper

    out = onnx.ModelProto()
    out.CopyFrom(proto)
    nodes = []
    for n in out.graph.node:
        if n.op_type != PLUGIN_OP:
            nodes.append(n)
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        scale = float(attrs.get("scale", 1.0))
        q, k, v = n.input
        p = f"{n.name}/expanded"
        if scale != 1.0:
            out.graph.initializer.append(helper.make_tensor(f"{p}/scale", onnx.TensorProto.FLOAT, [], [scale]))
            nodes.append(helper.make_node("Mul", [q, f"{p}/scale"], [f"{p}/q"], name=f"{p}/Mul"))
            q = f"{p}/q"
        nodes += [
            helper.make_node("Transpose", [k], [f"{p}/kT"], name=f"{p}/Transpose", perm=[0, 2, 1]),
            helper.make_node("MatMul", [q, f"{p}/kT"], [f"{p}/scores"], name=f"{p}/MatMul"),
            helper.make_node("Softmax", [f"{p}/scores"], [f"{p}/probs"], name=f"{p}/Softmax", axis=-1),
            helper.make_node("MatMul", [f"{p}/probs", v], list(n.output), name=f"{p}/MatMul_1"),
        ]
    del out.graph.node[:]
    out.graph.node.extend(nodes)
    keep = [o for o in out.opset_import if o.domain != PLUGIN_DOMAIN]
    del out.opset_import[:]
    out.opset_import.extend(keep)
    return out


def reference_evaluator(proto):
    """An ``onnx.reference.ReferenceEvaluator`` for the plugin graph, running ``SaliencyAttention``
    with :func:`saliency_attention_ref` (pure NumPy; slow, for tests on small models)."""
    from onnx.reference import ReferenceEvaluator
    from onnx.reference.op_run import OpRun

    class SaliencyAttention(OpRun):
        op_domain = PLUGIN_DOMAIN

        def _run(self, q, k, v, plugin_namespace=None, plugin_version=None, scale=1.0):
            if plugin_namespace != PLUGIN_NAMESPACE or plugin_version != PLUGIN_VERSION:
                raise ValueError(f"unexpected plugin attributes {plugin_namespace!r}/{plugin_version!r}")
            return (saliency_attention_ref(q, k, v, scale),)

    return ReferenceEvaluator(proto, new_ops=[SaliencyAttention])
