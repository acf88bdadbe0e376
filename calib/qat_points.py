"""Where a Q/DQ graph quantizes, named as the model's layers: the bridge between the graph the builder
writes and quantization-aware fine-tuning in PyTorch (``tsi.qat``), and back again.

The TorchScript exporter names a node after the module that made it:
``/backbone/stages/stages.2/stages.2.1/unit/motion/pyramid.0/Conv`` is the Conv of the module
``backbone.stages.2.1.unit.motion.pyramid.0`` (a container's children repeat its name as a prefix,
``stages.2`` then ``stages.2.1``). An activation's range is the scale of its ``QuantizeLinear``
times ``calib.qdq.QMAX`` (symmetric int8, as :func:`calib.qdq.with_ranges` writes it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from calib.graph_maps import graph_maps
from calib.qdq import QMAX, QUANT_OP_TYPES
from runtime.common.errors import CalibrationError



def module_of_node(name: str) -> str | None:
    """The dotted module name of an exported node's scope; ``None`` for a node outside any module."""
    scopes = name.strip("/").split("/")[:-1]
    kept = [s for s, nxt in zip(scopes, scopes[1:] + [""]) if not nxt.startswith(s + ".")]
    return ".".join(kept) or None


@dataclass(frozen=True)
class Point:
    """One quantized activation: the tensor, its amax in the graph, the weighted layers that read it
    through a Q/DQ pair (module names) and the module whose node made it (``""`` for the input)."""

    tensor: str
    amax: float
    readers: tuple[str, ...]
    source: str

    @property
    def key(self) -> tuple:
        """The point by its modules: the same in every export of the model (tensor names need not be)."""
        return tuple(sorted(self.readers)), self.source


def activation_points(proto) -> list[Point]:
    """Every activation the Q/DQ graph ``proto`` quantizes, by tensor (each reader has its own pair,
    DedicatedQDQPair, all at one scale). Raises :class:`CalibrationError` for a graph with no Q/DQ
    pair (a float graph) or a pair in front of a weighted layer no module made."""
    from onnx import numpy_helper

    g = proto.graph
    inits = {i.name: i for i in g.initializer}
    producer, consumers = graph_maps(proto)
    points: dict[str, Point] = {}
    for q in g.node:
        if q.op_type != "QuantizeLinear" or q.input[0] in inits or q.input[1] not in inits:
            continue
        readers = [n for dq in consumers.get(q.output[0], []) if dq.op_type == "DequantizeLinear"
                   for n in consumers.get(dq.output[0], [])]
        weighted = [n for n in readers if n.op_type in QUANT_OP_TYPES]
        modules = tuple(module_of_node(n.name) for n in weighted)
        if None in modules:
            raise CalibrationError(f"the Q/DQ graph quantizes the input of {weighted[modules.index(None)].name}, "
                                   "which no module of the model made (not a graph this project exported)")
        made = producer.get(q.input[0])
        scale = float(np.asarray(numpy_helper.to_array(inits[q.input[1]])).ravel()[0])
        seen = points.get(q.input[0])
        points[q.input[0]] = Point(q.input[0], scale * QMAX, (seen.readers if seen else ()) + modules,
                                   (module_of_node(made.name) or "") if made is not None else "")
    if not points:
        raise CalibrationError("no activation is quantized in this graph: give the builder's INT8 Q/DQ graph "
                               "(*.int8.qdq.onnx), not a float one")
    return list(points.values())


def tensor_amax(proto, learnt: list[dict]) -> dict[str, float]:
    """The ranges a fine-tuning learnt (``tsi.qat``: one ``{"readers", "source", "amax"}`` per point)
    as ranges of the Q/DQ graph ``proto``'s tensors, the points matched by their modules."""
    by_key = {(tuple(sorted(p["readers"])), p["source"]): float(p["amax"]) for p in learnt}
    return {p.tensor: by_key[p.key] for p in activation_points(proto) if p.key in by_key}
