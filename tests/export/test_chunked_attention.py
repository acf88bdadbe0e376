"""export.chunked_attention: every attention over more than ``rows`` positions computed in blocks of
query rows gives the standard graph's logits (onnxruntime), the blocks wired as Split -> per block
MatMul-Softmax-MatMul -> Concat; short attentions left alone; a bad block size refused."""

import numpy as np
import onnx
import pytest

from export.chunked_attention import make_chunked_attention_graph
from export.plugin_graph import find_attention
from runtime.common.errors import ExportError


@pytest.fixture(scope="module")
def tiny_graph(tmp_path_factory):
    from export.friendly import export_friendly_model
    from export.onnx_export import export_onnx
    from tests.export.helpers import make_checkpoint

    tmp = tmp_path_factory.mktemp("chunked")
    model, card = export_friendly_model(make_checkpoint(tmp / "m.pt"))
    return export_onnx(model, card, tmp / "m.onnx", source_sha256="t")


def lengths(proto):
    import onnx_graphsurgeon as gs

    graph = gs.import_onnx(proto)
    return [graph.tensors()[m.q].shape[1] for m in find_attention(graph)]


def logits(proto, clip):
    import onnxruntime as ort

    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: clip})[0]


@pytest.mark.parametrize("rows", [1, 5, 16])
def test_blocks_give_the_standard_graphs_logits(tiny_graph, rows):
    proto = onnx.load(str(tiny_graph))
    long = [n for n in lengths(proto) if n > rows]
    assert long  # the tiny model has attentions longer than the block (its first stage: 16 x 16 positions)
    blocks, count = make_chunked_attention_graph(proto, rows)
    assert count == len(long)
    names = [n.name for n in blocks.graph.node]
    assert sum(n.endswith("_split") and n.startswith("attn") for n in names) == count
    def softmaxes(m):
        return sum(n.op_type == "Softmax" for n in m.graph.node)

    assert softmaxes(blocks) - softmaxes(proto) == sum(-(-n // rows) for n in long) - count  # ceil(L / rows) blocks each
    assert max(lengths(blocks)) <= rows  # every attention left is one block (or an attention no longer)
    clip = np.random.default_rng(rows).standard_normal((1, 4, 3, 64, 64)).astype(np.float32)
    ref, got = logits(proto, clip), logits(blocks, clip)
    assert np.abs(got - ref).max() <= 1e-5 * max(1.0, float(np.ptp(ref)))
    assert dict((p.key, p.value) for p in blocks.metadata_props) == dict((p.key, p.value) for p in proto.metadata_props)


def test_attentions_no_longer_than_a_block_are_left_alone(tiny_graph):
    proto = onnx.load(str(tiny_graph))
    same, count = make_chunked_attention_graph(proto, max(lengths(proto)))
    assert count == 0 and [n.op_type for n in same.graph.node] == [n.op_type for n in proto.graph.node]
    with pytest.raises(ExportError, match="at least 1 query row"):
        make_chunked_attention_graph(proto, 0)
