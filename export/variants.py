"""The graph variants derived from a standard ONNX graph (clip or online step graph), each made one
way for every caller (``export.pipeline``, ``export.stream_export``, the benchmarks):

- :func:`fp16_graph`: FP16, the attention (MatMul-Softmax-MatMul) and graph I/O in float32;
- :func:`int8_ranges` then :func:`qdq_graph` ("INT8 with the attention in float"): activation
  ranges that skip the attention's scores and probabilities, then the Q/DQ graph with the attention
  nodes unquantized; :func:`int8_qdq_graph` is the two in one;
- :func:`plugin_variant`: the SaliencyAttention plugin variant ``<graph>.plugin.onnx`` beside a graph.

The attention is found by ``export.plugin_graph`` (the MatMul-Softmax-MatMul pattern); the variants
themselves come from :mod:`calib` (``fp16``, ``ranges``, ``qdq``). :func:`write_graph` writes any of
them with its card.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from export.names import plugin_graph
from runtime.card import ModelCard

log = logging.getLogger(__name__)


def load_graph(path: str | os.PathLike):
    import onnx

    return onnx.load(str(path))


def write_graph(proto, path: Path, card: ModelCard) -> Path:
    """Put ``card`` in ``proto``'s metadata, check and write it atomically; returns ``path``."""
    from export.onnx_export import save_onnx, set_card

    set_card(proto, card)
    save_onnx(proto, path)
    return Path(path)


def fp16_graph(proto):
    """The FP16 graph of ``proto`` (a ModelProto): the attention nodes and graph I/O stay float32."""
    from calib.fp16 import convert_fp16
    from export.plugin_graph import attention_node_names

    return convert_fp16(proto, keep_fp32_nodes=attention_node_names(proto))


def int8_excluded_tensors(proto) -> set[str]:
    """The tensors no range is collected for: the attention's scores and probabilities (float)."""
    from export.plugin_graph import attention_internal_tensors

    return attention_internal_tensors(proto)


def int8_ranges(model: str | os.PathLike, clips, method: str, *, feeds: list[dict] | None = None):
    """Activation ranges (``calib.ranges.Ranges``) of the ONNX file ``model`` over ``clips``
    (N, T, 3, S, S) or ready ``feeds`` (the step graph's frame + state), the attention's internal
    tensors skipped (they stay in float)."""
    from calib.ranges import compute_ranges

    return compute_ranges(model, clips, method, exclude=int8_excluded_tensors(load_graph(model)), feeds=feeds)


def qdq_graph(model: str | os.PathLike, ranges, *, float_layers=()):
    """The Q/DQ ModelProto of the ONNX file ``model`` from ``ranges``, the attention and the nodes
    ``float_layers`` in float (TensorRT's rules checked by ``calib.qdq.make_qdq``)."""
    from calib.qdq import make_qdq
    from export.plugin_graph import attention_node_names

    return make_qdq(model, ranges, float_nodes=[*attention_node_names(load_graph(model)), *float_layers])


def int8_qdq_graph(model: str | os.PathLike, clips, method: str, *, feeds: list[dict] | None = None):
    """:func:`int8_ranges` then :func:`qdq_graph`: "INT8 with the attention in float" in one call."""
    return qdq_graph(model, int8_ranges(model, clips, method, feeds=feeds))


def plugin_variant(src: Path, card: ModelCard, expected: int | None) -> Path | None:
    """``<src>.plugin.onnx`` beside ``src`` with ``card`` (None: the model has no saliency
    attention). ``expected``: the number of SME modules the count must equal (when known)."""
    from export.plugin_graph import make_plugin_graph

    proto, count = make_plugin_graph(load_graph(src), expected=expected)
    if count == 0:
        log.info("%s has no saliency attention: no plugin variant", Path(src).name)
        return None
    return write_graph(proto, Path(src).with_name(plugin_graph(src)), card)
