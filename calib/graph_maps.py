"""Producer / consumer maps of an ONNX graph, read with onnx-graphsurgeon (its tensors know the nodes
that make and read them), handed back as the graph's own ``NodeProto`` objects so a caller may edit
the graph in place. Used by :mod:`calib.qdq` and ``export.trt_check``."""

from __future__ import annotations


def graph_maps(proto) -> tuple[dict, dict[str, list]]:
    """``({tensor: producing node}, {tensor: consuming nodes})`` of ``proto``'s main graph, by tensor
    name; a node that reads a tensor twice is listed twice."""
    import onnx_graphsurgeon as gs

    graph = gs.import_onnx(proto)
    nodes = list(proto.graph.node)
    if len(graph.nodes) != len(nodes) or any(a.op != b.op_type for a, b in zip(graph.nodes, nodes)):
        raise ValueError("onnx-graphsurgeon did not import the graph's nodes one to one")
    proto_of = {id(gn): n for gn, n in zip(graph.nodes, nodes)}
    producer, consumers = {}, {}
    for name, tensor in graph.tensors().items():
        if tensor.inputs:
            producer[name] = proto_of[id(tensor.inputs[0])]
        if tensor.outputs:
            consumers[name] = [proto_of[id(n)] for n in tensor.outputs]
    return producer, consumers
