"""An onnx GraphProto's nodes indexed by position (a graph's nodes need not be named): who makes and
who reads each tensor, its constants (an initializer or a Constant node's value) and its attributes,
for the CPU rewrites of :mod:`runtime.backends.kernel_session` and :mod:`runtime.backends.cti_graph`."""

from __future__ import annotations

import numpy as np

__all__ = ["GraphIndex"]


class GraphIndex:
    def __init__(self, graph) -> None:
        from onnx import numpy_helper

        self._np = numpy_helper
        self.nodes = list(graph.node)
        self.producer = {o: i for i, n in enumerate(self.nodes) for o in n.output}
        self.readers: dict[str, list[int]] = {}
        for i, n in enumerate(self.nodes):
            for name in n.input:
                self.readers.setdefault(name, []).append(i)
        self.inits = {t.name: t for t in graph.initializer}
        self.outputs = {o.name for o in graph.output}
        self.types = {v.name: v.type.tensor_type.elem_type for v in (*graph.input, *graph.output, *graph.value_info)}

    def made_by(self, name: str, op: str):
        """(position, node) of the ``op`` node making ``name``, or None."""
        i = self.producer.get(name)
        return (i, self.nodes[i]) if i is not None and self.nodes[i].op_type == op else None

    def const(self, name: str) -> np.ndarray | None:
        """The value of an initializer or a Constant node's output, or None."""
        if name in self.inits:
            return self._np.to_array(self.inits[name])
        hit = self.made_by(name, "Constant")
        if hit is None:
            return None
        return next((self._np.to_array(a.t) for a in hit[1].attribute if a.name == "value"), None)

    def scalar(self, name: str) -> float | None:
        """A one-element constant's value, or None."""
        value = self.const(name)
        return float(value.reshape(-1)[0]) if value is not None and value.size == 1 else None

    @staticmethod
    def attr(node, name, default=None):
        from onnx import helper

        return next((helper.get_attribute_value(a) for a in node.attribute if a.name == name), default)
