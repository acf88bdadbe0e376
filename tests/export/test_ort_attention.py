"""The onnxruntime MultiHeadAttention variant: same logits as the standard graph."""

import onnx
import pytest

from runtime.common.errors import ExportError
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


def test_multiheadattention_at_the_stage2_shape_is_as_exact_as_the_standard_form():
    """TSI-R50's stage 2 (L = 56 x 56 = 3136, head size 4): onnxruntime's MultiHeadAttention and the
    exported MatMul-Softmax-MatMul against float64, on the same inputs."""
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from tests.export.plugin_reference import saliency_attention_ref

    b, length, d = 2, 3136, 4

    def session(nodes, contrib=False):
        io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [b, length, d]) for n in "qkvo"]
        opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid(MS_DOMAIN, 1)] if contrib else [])
        model = helper.make_model(helper.make_graph(nodes, "attention", io[:3], io[3:]), opset_imports=opsets)
        return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])

    standard = session([helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 2, 1]),
                        helper.make_node("MatMul", ["q", "kt"], ["s"]),
                        helper.make_node("Softmax", ["s"], ["p"], axis=-1),
                        helper.make_node("MatMul", ["p", "v"], ["o"])])
    mha = session([helper.make_node(MHA_OP, ["q", "k", "v"], ["o"], domain=MS_DOMAIN, num_heads=1, scale=1.0)], True)
    rng = np.random.default_rng(0)
    q, k, v = (s * rng.standard_normal((b, length, d)).astype(np.float32) for s in (5.0, 5.0, 1.0))
    ref = saliency_attention_ref(q.astype(np.float64), k.astype(np.float64), v.astype(np.float64))
    err_standard = np.abs(standard.run(None, dict(q=q, k=k, v=v))[0] - ref).max()
    err_mha = np.abs(mha.run(None, dict(q=q, k=k, v=v))[0] - ref).max()
    assert err_mha < 1e-4 and err_mha <= 2 * err_standard
