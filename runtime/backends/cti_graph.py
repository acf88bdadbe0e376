"""CTI units of an exported TSI graph as one node of the onnxruntime operation
``tsi.cpu::CrossTemporal`` (``runtime/kernels/ort_cross_temporal_op.cpp``).

onnxruntime runs a CTI unit (``tsi/modules/cti.py``, the clip form: non-causal, cross-perception)
as a Split, per group a Reshape-Transpose-Conv-Transpose-Reshape (the temporal conv on the
(N, C, T, HW) view), the cross-perception's pooling, FC, softmax and blend, and a Concat: each a
pass through memory, and around each conv a reorder out of and back into its blocked layout. The
operation does the unit in one pass over its groups.

:func:`find_cti` matches the export's form exactly (every node's attributes and constants checked,
every inner tensor read inside the unit only, float32); anything else -- the causal form, the ablations'
"independent" and "addition", a graph a tool rewrote differently -- is left to onnxruntime.
:func:`with_cti_nodes` replaces each match by one node and drops the initializers nothing reads
any more.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from runtime.backends.graph_index import GraphIndex

__all__ = ["CTIMatch", "find_cti", "with_cti_nodes"]

_PERM = [0, 2, 1, 3]  # (N, T, c, HW) <-> (N, c, T, HW)
_FLOAT = 1  # onnx TensorProto.FLOAT


@dataclass(frozen=True)
class CTIMatch:
    nodes: tuple[int, ...]  # the unit's nodes, by position in the graph
    concat: int  # where the operation's node goes
    x: str
    output: str
    frames: int
    tconv: np.ndarray  # (G-1, c, 3)
    ci: np.ndarray  # (G-2, 2c, c+1): FC weight columns, then bias


def _tconv(g: GraphIndex, name: str, c: int, used: list[int]):
    """(weights (c, 3), frames, input) of the temporal conv making ``name``, or None."""
    chain = []
    for op in ("Reshape", "Transpose", "Conv", "Transpose", "Reshape"):
        hit = g.made_by(name, op)
        if hit is None:
            return None
        chain.append(hit)
        name = hit[1].input[0]
    (_, back), (_, tr2), (_, conv), (_, tr1), (_, view) = chain
    if g.attr(tr1, "perm") != _PERM or g.attr(tr2, "perm") != _PERM or len(conv.input) != 2:
        return None
    w = g.const(conv.input[1])
    shape, back_shape = g.const(view.input[1]), g.const(back.input[1])
    if (w is None or w.shape != (c, 1, 3, 1) or w.dtype != np.float32 or g.attr(conv, "group") != c
            or list(g.attr(conv, "kernel_shape", [3, 1])) != [3, 1] or list(g.attr(conv, "pads", [])) != [1, 0, 1, 0]
            or list(g.attr(conv, "strides", [1, 1])) != [1, 1] or list(g.attr(conv, "dilations", [1, 1])) != [1, 1]
            or g.attr(conv, "auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET")
            or shape is None or shape.shape != (4,) or shape[2] != c or shape[1] < 1
            or back_shape is None or back_shape.shape != (4,) or back_shape[1] != c):
        return None
    used.extend(i for i, _ in chain)
    return w.reshape(c, 3).astype(np.float32), int(shape[1]), name


def _blend(g: GraphIndex, name: str, prev: str, x: str, c: int, used: list[int]) -> np.ndarray | None:
    """CI's FC (2c, c+1) where ``name`` is a x + (1 - a) prev with a = softmax(FC(GAP(prev + x)))[0]."""
    add = g.made_by(name, "Add")
    muls = [g.made_by(i, "Mul") for i in add[1].input] if add else []
    if len(muls) != 2 or None in muls:
        return None
    by_other = {}
    for hit in muls:  # {the tensor it scales: the factor}
        a, b = hit[1].input
        by_other.update({a: b} if a in (x, prev) else {b: a} if b in (x, prev) else {})
    if set(by_other) != {x, prev}:
        return None
    sub = g.made_by(by_other[prev], "Sub")
    if sub is None or g.scalar(sub[1].input[0]) != 1.0 or sub[1].input[1] != by_other[x]:
        return None
    chain, name = [], by_other[x]
    for op in ("Reshape", "Gather", "Softmax", "Reshape", "Gemm", "Flatten", "GlobalAveragePool", "Add"):
        hit = g.made_by(name, op)
        if hit is None:
            return None
        chain.append(hit)
        name = hit[1].input[0]
    (_, per_channel), (_, gather), (_, soft), (_, pair), (_, gemm), (_, flat), _, (_, mixed) = chain
    index, pair_shape, a_shape = g.const(gather.input[1]), g.const(pair.input[1]), g.const(per_channel.input[1])
    w, bias = (g.const(gemm.input[1]), g.const(gemm.input[2])) if len(gemm.input) == 3 else (None, None)
    if (index is None or index.size != 1 or int(index.reshape(-1)[0]) != 0 or g.attr(gather, "axis", 0) != 1
            or g.attr(soft, "axis") != 1 or pair_shape is None or list(pair_shape[1:]) != [2, c]
            or a_shape is None or list(a_shape[1:]) != [c, 1, 1]
            or g.attr(gemm, "transB", 0) != 1 or g.attr(gemm, "transA", 0) != 0
            or g.attr(gemm, "alpha", 1.0) != 1.0 or g.attr(gemm, "beta", 1.0) != 1.0
            or w is None or w.shape != (2 * c, c) or bias is None or bias.shape != (2 * c,) or w.dtype != np.float32
            or g.attr(flat, "axis", 1) != 1 or set(mixed.input) != {x, prev}):
        return None
    used.extend([add[0], muls[0][0], muls[1][0], sub[0]] + [i for i, _ in chain])
    return np.concatenate([w, bias[:, None]], axis=1).astype(np.float32)


def _match(g: GraphIndex, at: int) -> CTIMatch | None:
    concat = g.nodes[at]
    groups = len(concat.input)
    split = g.made_by(concat.input[0], "Split") if groups >= 3 and g.attr(concat, "axis") == 1 else None
    if split is None or g.attr(split[1], "axis") != 1 or split[1].output[0] != concat.input[0] \
            or len(split[1].output) != groups:
        return None
    sizes = g.const(split[1].input[1]) if len(split[1].input) > 1 else g.attr(split[1], "split")
    if sizes is None or len(set(int(s) for s in sizes)) != 1 or len(sizes) != groups:
        return None
    c, xs, used = int(sizes[0]), list(split[1].output), [split[0]]
    first = _tconv(g, concat.input[1], c, used)
    if first is None or first[2] != xs[1]:
        return None
    weights, frames, fcs = [first[0]], first[1], []
    for k in range(2, groups):
        hit = _tconv(g, concat.input[k], c, used)
        fc = _blend(g, hit[2], concat.input[k - 1], xs[k], c, used) if hit else None
        if fc is None or hit[1] != frames:
            return None
        weights.append(hit[0])
        fcs.append(fc)
    if g.types.get(split[1].input[0], _FLOAT) != _FLOAT:  # the operation takes float32 (weights checked above)
        return None
    inside = set(used) | {at}
    inner = {o for i in used for o in g.nodes[i].output}
    if len(inside) != len(used) + 1 or any(o in g.outputs or not set(g.readers.get(o, [])) <= inside for o in inner):
        return None
    return CTIMatch(nodes=tuple(sorted(used)), concat=at, x=split[1].input[0], output=concat.output[0], frames=frames,
                    tconv=np.stack(weights), ci=np.stack(fcs))


def find_cti(graph) -> list[CTIMatch]:
    """The CTI units of an onnx GraphProto in the export's clip form."""
    g = GraphIndex(graph)
    return [m for i, n in enumerate(g.nodes) if n.op_type == "Concat" and (m := _match(g, i)) is not None]


def with_cti_nodes(proto, matches: list[CTIMatch], domain: str, op: str):
    """A copy of ``proto`` with each match one ``domain``::``op`` node in its Concat's place (the
    domain imported where it is not yet), and the units' initializers nothing reads any more dropped."""
    import onnx
    from onnx import numpy_helper

    out = onnx.ModelProto()
    out.CopyFrom(proto)
    g = out.graph
    nodes, drop, put = list(g.node), set(), {}
    weights = {i for m in matches for k in m.nodes for i in nodes[k].input}
    for k, m in enumerate(matches):
        name = nodes[m.concat].name or f"cti_{k}"
        tw, cw = f"{name}_tconv", f"{name}_ci"
        g.initializer.extend([numpy_helper.from_array(m.tconv, tw), numpy_helper.from_array(m.ci, cw)])
        put[m.concat] = onnx.helper.make_node(op, [m.x, tw, cw], [m.output], name=f"{name}_cti", domain=domain,
                                              frames=m.frames)
        drop.update(m.nodes)
    kept = [put.get(i, n) for i, n in enumerate(nodes) if i not in drop]
    del g.node[:]
    g.node.extend(kept)
    read = {i for n in kept for i in n.input} | {o.name for o in g.output} | {i.name for i in g.input}
    inits = [t for t in g.initializer if t.name in read or t.name not in weights]
    del g.initializer[:]
    g.initializer.extend(inits)
    if not any(o.domain == domain for o in out.opset_import):
        out.opset_import.append(onnx.helper.make_opsetid(domain, 1))
    return out
