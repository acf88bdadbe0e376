"""The onnxruntime MultiHeadAttention variant: same logits as the standard graph."""

import onnx
import pytest

from export.errors import ExportError
from export.ort_attention import MHA_OP, MS_DOMAIN, check_ort_attention_parity, make_ort_attention_graph
from export.plugin_graph import find_attention


def test_variant_replaces_every_attention_and_matches(tiny_onnx, clips):
    import onnx_graphsurgeon as gs

    path, model, _ = tiny_onnx
    proto = onnx.load(str(path))
    n_attn = len(find_attention(gs.import_onnx(proto)))
    variant, count = make_ort_attention_graph(proto, expected=n_attn)
    assert count == n_attn > 0
    mha = [n for n in variant.graph.node if n.op_type == MHA_OP]
    assert len(mha) == count and all(n.domain == MS_DOMAIN for n in mha)
    assert not find_attention(gs.import_onnx(variant))  # no MatMul-Softmax-MatMul left
    agreement = check_ort_attention_parity(path, variant, clips)
    assert agreement.top1 == 1.0 and agreement.rel < 1e-5


def test_variant_parity_failure_is_reported(tiny_onnx, clips):
    path, _, _ = tiny_onnx
    variant, _ = make_ort_attention_graph(onnx.load(str(path)))
    # break the variant: a wrong scale changes the attention weights
    for n in variant.graph.node:
        if n.op_type == MHA_OP:
            for a in n.attribute:
                if a.name == "scale":
                    a.f = 50.0
    with pytest.raises(ExportError, match="disagrees"):
        check_ort_attention_parity(path, variant, clips)


def test_variant_refuses_a_graph_without_attention(tmp_path):
    from onnx import TensorProto, helper

    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    with pytest.raises(ExportError, match="nothing to replace"):
        make_ort_attention_graph(helper.make_model(g))
