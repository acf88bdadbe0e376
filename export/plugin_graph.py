"""The plugin variant of the ONNX graph: each saliency-attention subgraph becomes one node.

Standard graph (what ``attention="matmul"`` exports; Q is pre-scaled by 1/sqrt(d) before it)::

    q ──────────────────────┐
    kT = Transpose(k) ─── MatMul ── Softmax(axis=-1) ── MatMul ── out
    v ─────────────────────────────────────────────────────┘

onnxsim may cancel the Transpose against the one that made k, leaving MatMul's B a plain (B, D, L)
tensor ("transposed-B" form); then k is found as the Transpose of that tensor feeding the second
MatMul (in SME, k and v are the same tensor), or a Transpose node is added.

Plugin graph: ``SaliencyAttention(q, k, v) -> out`` with attributes ``plugin_namespace="tsi"``,
``plugin_version="1"``, ``scale=1.0`` (Q already scaled), node domain ``tsi`` (TensorRT 10.3 reads the
namespace from the attribute, 10.10+ from the domain: both say "tsi"). The name, namespace and
version are read from ``plugin/plugin_identity.h``, the header the C++ plugin is compiled with.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from runtime.attention_graph import AttentionMatch, Node
from runtime.attention_graph import find_attention as match_attention
from runtime.common.errors import ExportError

log = logging.getLogger(__name__)

IDENTITY_HEADER = Path(__file__).resolve().parent / "plugin" / "plugin_identity.h"  # shipped as package data


def read_plugin_identity(header: Path = IDENTITY_HEADER) -> tuple[str, str, str]:
    """(name, namespace, version) from the C++ header that the plugin itself is compiled with."""
    text = header.read_text(encoding="utf-8")
    values = {}
    for key in ("NAME", "NAMESPACE", "VERSION"):
        m = re.search(rf'^#define TSI_PLUGIN_{key} "([^"]+)"$', text, re.MULTILINE)
        if m is None:
            raise RuntimeError(f"{header}: no '#define TSI_PLUGIN_{key} \"...\"' line")
        values[key] = m.group(1)
    return values["NAME"], values["NAMESPACE"], values["VERSION"]


PLUGIN_OP, PLUGIN_NAMESPACE, PLUGIN_VERSION = read_plugin_identity()
PLUGIN_DOMAIN = PLUGIN_NAMESPACE  # the node domain says the namespace too (TensorRT >= 10.10 reads it)


def _swaps_last_two(perm: list[int], rank: int) -> bool:
    expected = list(range(rank))
    expected[-1], expected[-2] = expected[-2], expected[-1]
    return list(perm) == expected


def find_attention(graph) -> list[AttentionMatch]:
    """Every attention chain (:func:`runtime.attention_graph.find_attention`, the one rule) in a
    graphsurgeon graph. Works on the standard ONNX (and the Q/DQ graph, where these stay float)."""
    nodes = [Node(n.op, n.name, tuple(t.name for t in n.inputs), tuple(t.name for t in n.outputs),
                  n.attrs.get("axis", -1) if n.op == "Softmax" else -1) for n in graph.nodes]
    ranks = {name: len(t.shape) for name, t in graph.tensors().items() if t.shape is not None}
    return match_attention(nodes, ranks)


def attention_node_names(proto) -> list[str]:
    """Names of the MatMul and Softmax nodes of every attention subgraph of an ONNX model (used to
    keep them in float in the Q/DQ and FP16 graphs)."""
    import onnx_graphsurgeon as gs

    names = []
    for m in find_attention(gs.import_onnx(proto)):
        names += [m.matmul_qk, m.softmax, m.matmul_pv]
    return names


def attention_internal_tensors(proto) -> set[str]:
    """The (B, L, L) scores and probabilities inside every attention subgraph: the largest tensors of
    the network, never quantized (attention stays in float), so calibration skips them."""
    import onnx_graphsurgeon as gs

    return {t for m in find_attention(gs.import_onnx(proto)) for t in (m.scores, m.probabilities)}


def _key_tensor(graph, kt, v, tmap, index: int):
    """k from k^T: the Transpose's input, the v tensor if v = Transpose(k^T), or a new Transpose."""
    import onnx_graphsurgeon as gs

    rank = len(kt.shape) if kt.shape is not None else 3
    producer = kt.inputs[0] if len(kt.inputs) == 1 else None
    if producer is not None and producer.op == "Transpose" and _swaps_last_two(producer.attrs.get("perm", []), rank):
        return kt.inputs[0].inputs[0]
    if len(v.inputs) == 1 and v.inputs[0].op == "Transpose" and v.inputs[0].inputs[0] is kt \
            and _swaps_last_two(v.inputs[0].attrs.get("perm", []), rank):
        return v
    perm = list(range(rank))
    perm[-1], perm[-2] = perm[-2], perm[-1]
    k = gs.Variable(f"saliency_attention_{index}/k", dtype=kt.dtype)
    graph.nodes.append(gs.Node("Transpose", f"saliency_attention_{index}/Transpose", {"perm": perm}, [kt], [k]))
    return k


def make_plugin_graph(proto, *, expected: int | None = None, domain: str = PLUGIN_DOMAIN):
    """Return ``(plugin_proto, count)``: a copy of ``proto`` with every attention subgraph replaced
    by one ``SaliencyAttention`` node. ``expected`` (the number of SME modules) must equal the count
    when given."""
    import onnx
    import onnx_graphsurgeon as gs

    graph = gs.import_onnx(proto)
    tmap = graph.tensors()
    matches = find_attention(graph)
    if expected is not None and len(matches) != expected:
        raise ExportError(f"found {len(matches)} saliency-attention subgraphs, expected {expected} "
                          "(one per SME module attending over more than one position)")
    nodes = {n.name: n for n in graph.nodes}
    for i, m in enumerate(matches):
        q, kt, v, out = tmap[m.q], tmap[m.k_transposed], tmap[m.v], tmap[m.output]
        for t, what in ((q, "q"), (kt, "k^T"), (v, "v")):
            if t.shape is not None and len(t.shape) != 3:
                raise ExportError(f"{m.matmul_qk}: attention input {what} has rank {len(t.shape)}, "
                                  "the plugin takes (B, L, D)")
        k = _key_tensor(graph, kt, v, tmap, i)
        for name in (m.matmul_qk, m.softmax, m.matmul_pv):
            nodes[name].outputs.clear()
        graph.nodes.append(gs.Node(PLUGIN_OP, f"saliency_attention_{i}",
                                   {"plugin_namespace": PLUGIN_NAMESPACE, "plugin_version": PLUGIN_VERSION,
                                    "scale": 1.0},
                                   [q, k, v], [out], domain=domain))
    graph.cleanup().toposort()
    out_proto = gs.export_onnx(graph)
    if domain and not any(o.domain == domain for o in out_proto.opset_import):
        out_proto.opset_import.append(onnx.helper.make_opsetid(domain, 1))
    out_proto.metadata_props.extend(proto.metadata_props)
    out_proto.producer_name = proto.producer_name
    out_proto.doc_string = proto.doc_string
    log.info("replaced %d saliency-attention subgraphs by %s nodes", len(matches), PLUGIN_OP)
    return out_proto, len(matches)
