"""An onnxruntime-only variant of the standard ONNX: each saliency attention as one
``com.microsoft.MultiHeadAttention`` node (onnxruntime's contrib operator, CPU and CUDA kernels).

The standard graph's MatMul-Softmax-MatMul materialises the (B, L, L) scores and probabilities:
for TSI-R50 at 224² that is 3136 x 3136 floats per frame pair at stage 2. onnxruntime's fused
attention kernel computes the same softmax(q k^T) v without keeping the whole matrix. The node is
found and wired exactly as for the TensorRT plugin (``export.plugin_graph.make_plugin_graph``):
``MultiHeadAttention(query=q, key=k, value=v)`` with ``num_heads=1`` and ``scale=1.0`` (q is
already scaled by 1/sqrt(d) in the exported form). The graph runs in onnxruntime only (TensorRT
and other runtimes do not know the contrib op): it is for onnxruntime targets.
"""

from __future__ import annotations

import logging
import os

import numpy as np

from runtime.common.errors import ExportError
from export.parity import FP32_REL_TOL, Agreement, compare_onnx

log = logging.getLogger(__name__)

MS_DOMAIN = "com.microsoft"
MHA_OP = "MultiHeadAttention"


def make_ort_attention_graph(proto, *, expected: int | None = None):
    """Return ``(variant_proto, count)``: ``proto`` with every saliency attention replaced by a
    ``com.microsoft.MultiHeadAttention`` node."""
    from onnx import helper

    from export.plugin_graph import PLUGIN_DOMAIN, PLUGIN_OP, make_plugin_graph

    out, count = make_plugin_graph(proto, expected=expected)
    for node in out.graph.node:
        if node.op_type == PLUGIN_OP and node.domain == PLUGIN_DOMAIN:
            node.op_type, node.domain = MHA_OP, MS_DOMAIN
            del node.attribute[:]
            node.attribute.extend([helper.make_attribute("num_heads", 1), helper.make_attribute("scale", 1.0)])
    opsets = [o for o in out.opset_import if o.domain not in (PLUGIN_DOMAIN, MS_DOMAIN)]
    del out.opset_import[:]
    out.opset_import.extend(opsets + [helper.make_opsetid(MS_DOMAIN, 1)])
    if count == 0:
        raise ExportError("no saliency-attention subgraph found: nothing to replace (a TSN/TSM graph?)")
    log.info("replaced %d saliency-attention subgraphs by %s.%s", count, MS_DOMAIN, MHA_OP)
    return out, count


def check_ort_attention_parity(reference: str | os.PathLike, variant, clips: np.ndarray, *,
                               tol: float = FP32_REL_TOL) -> Agreement:
    """onnxruntime on the standard graph vs the MultiHeadAttention variant over ``clips``: the FP32
    tolerance (``tol`` of the logit range, 100% top-1), else ExportError."""
    agreement = compare_onnx(reference, variant, clips)
    log.info("parity MultiHeadAttention variant vs standard graph: %s", agreement)
    if agreement.rel > tol or agreement.top1 < 1.0:
        raise ExportError(f"the MultiHeadAttention variant disagrees with the standard graph ({agreement}; "
                          f"tolerance {tol:g} of the logit range, 100% top-1)")
    return agreement
