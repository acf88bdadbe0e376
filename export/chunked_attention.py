"""A CPU form of the standard ONNX: each long saliency attention with its queries split into
blocks of ``rows`` (``Split`` -> per block MatMul-Softmax-MatMul -> ``Concat``).

The standard graph's MatMul-Softmax-MatMul materialises the (B, L, L) scores and probabilities:
for TSI-R50 at 224² that is 3136 x 3136 floats per frame pair at stage 2, far beyond a CPU's
caches, so the softmax and the second MatMul stream the matrix from memory. Softmax is per row
and both MatMuls are row-independent in the queries, so a block of query rows gives exactly its
rows of the output: the blocks compute the same function, each over a (B, rows, L) score block
that stays in cache. Every runtime runs the form (plain ONNX ops); it is for CPU targets
(onnxruntime, OpenVINO). TensorRT gets the standard graph, whose attention it fuses itself.
"""

from __future__ import annotations

import logging

from runtime.common.errors import ExportError

log = logging.getLogger(__name__)

CHUNK_ROWS = 64  # query rows per block: (B, 64, L) scores, 0.8 MiB per frame pair at L = 3136


def make_chunked_attention_graph(proto, rows: int = CHUNK_ROWS):
    """Return ``(variant_proto, count)``: ``proto`` with every attention over more than ``rows``
    positions computed in blocks of at most ``rows`` query rows (see the module docstring); ``proto``
    itself when there is none."""
    import numpy as np
    import onnx_graphsurgeon as gs

    from export.plugin_graph import find_attention

    if rows < 1:
        raise ExportError(f"attention blocks need at least 1 query row (got {rows})")
    graph = gs.import_onnx(proto)
    tmap = graph.tensors()
    nodes = {n.name: n for n in graph.nodes}
    count = 0
    for i, m in enumerate(find_attention(graph)):
        q, kt, v, out = tmap[m.q], tmap[m.k_transposed], tmap[m.v], tmap[m.output]
        length = q.shape[1] if q.shape is not None and len(q.shape) == 3 else None
        if not isinstance(length, int) or length <= rows:
            continue  # short (or of unknown length): one block is the whole attention
        axis = nodes[m.softmax].attrs.get("axis", -1)
        sizes = [rows] * (length // rows) + ([length % rows] if length % rows else [])
        batch, depth, width = q.shape[0], q.shape[2], v.shape[-1] if v.shape is not None else None
        blocks = [gs.Variable(f"attn{i}_q{j}", q.dtype, [batch, n, depth]) for j, n in enumerate(sizes)]
        for name in (m.matmul_qk, m.softmax, m.matmul_pv):
            nodes[name].outputs.clear()
        split = gs.Constant(f"attn{i}_rows", np.array(sizes, np.int64))
        graph.nodes.append(gs.Node("Split", f"attn{i}_split", {"axis": 1}, [q, split], blocks))
        outs = []
        for j, (qj, n) in enumerate(zip(blocks, sizes)):
            s, p = (gs.Variable(f"attn{i}_{x}{j}", q.dtype, [batch, n, length]) for x in "sp")
            o = gs.Variable(f"attn{i}_o{j}", q.dtype, [batch, n, width])
            graph.nodes += [gs.Node("MatMul", f"attn{i}_qk{j}", inputs=[qj, kt], outputs=[s]),
                            gs.Node("Softmax", f"attn{i}_softmax{j}", {"axis": axis}, [s], [p]),
                            gs.Node("MatMul", f"attn{i}_pv{j}", inputs=[p, v], outputs=[o])]
            outs.append(o)
        graph.nodes.append(gs.Node("Concat", f"attn{i}_concat", {"axis": 1}, outs, [out]))
        count += 1
    if count == 0:
        return proto, 0
    graph.cleanup().toposort()
    out_proto = gs.export_onnx(graph)
    out_proto.metadata_props.extend(proto.metadata_props)
    out_proto.producer_name, out_proto.doc_string = proto.producer_name, proto.doc_string
    log.info("split %d saliency attentions into blocks of %d query rows", count, rows)
    return out_proto, count
