"""What a saliency-attention subgraph of an ONNX graph is, stated once: a MatMul -> Softmax (last
axis) -> MatMul chain whose inner tensors (the scores and the probabilities) have no other consumer.

The rule reads plain node records (:class:`Node`), so the runtime applies it to an ``onnx``
ModelProto (:func:`proto_nodes`, for the CPU kernel's sessions) and ``export.plugin_graph`` to an
onnx-graphsurgeon graph (for the plugin, the MultiHeadAttention, block and Q/DQ variants).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

__all__ = ["AttentionMatch", "Node", "find_attention", "proto_nodes", "proto_ranks"]


@dataclass(frozen=True)
class Node:
    op: str
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    axis: int = -1  # Softmax's


@dataclass(frozen=True)
class AttentionMatch:
    """One MatMul-Softmax-MatMul subgraph (node names, and the tensors around it)."""

    matmul_qk: str
    softmax: str
    matmul_pv: str
    q: str
    k_transposed: str  # MatMul 1's B input: k^T
    v: str
    output: str
    scores: str = ""  # q k^T, Softmax's input
    probabilities: str = ""  # Softmax's output


def find_attention(nodes: Iterable[Node], ranks: Mapping[str, int] | None = None) -> list[AttentionMatch]:
    """Every attention chain among ``nodes`` (``ranks``: tensor name -> rank where known; a Softmax
    over a non-negative axis counts only where its input's rank says it is the last)."""
    nodes = list(nodes)
    ranks = ranks or {}
    producer = {o: n for n in nodes for o in n.outputs}
    consumers: dict[str, list[Node]] = {}
    for n in nodes:
        for i in n.inputs:
            consumers.setdefault(i, []).append(n)
    matches = []
    for sm in nodes:
        if sm.op != "Softmax" or len(sm.inputs) != 1 or len(sm.outputs) != 1:
            continue
        scores, probs = sm.inputs[0], sm.outputs[0]
        mm1 = producer.get(scores)
        if mm1 is None or mm1.op != "MatMul" or len(consumers.get(scores, [])) != 1:
            continue
        after = consumers.get(probs, [])
        if len(after) != 1 or after[0].op != "MatMul" or after[0].inputs[0] != probs:
            continue
        rank = ranks.get(scores)
        if not (sm.axis == -1 or (rank is not None and sm.axis == rank - 1)):
            continue
        mm2 = after[0]
        matches.append(AttentionMatch(mm1.name, sm.name, mm2.name, mm1.inputs[0], mm1.inputs[1], mm2.inputs[1],
                                      mm2.outputs[0], scores, probs))
    return matches


def proto_nodes(graph) -> list[Node]:
    """The :class:`Node` records of an ``onnx`` GraphProto's nodes (top level)."""
    out = []
    for n in graph.node:
        axis = next((a.i for a in n.attribute if a.name == "axis"), -1) if n.op_type == "Softmax" else -1
        out.append(Node(n.op_type, n.name, tuple(n.input), tuple(n.output), axis))
    return out


def proto_ranks(graph) -> dict[str, int]:
    """Tensor name -> rank, from a GraphProto's inputs, outputs and value_info where they have a shape."""
    return {v.name: len(v.type.tensor_type.shape.dim) for v in (*graph.input, *graph.output, *graph.value_info)
            if v.type.tensor_type.HasField("shape")}
