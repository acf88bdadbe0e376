import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from runtime.common.errors import ExportError
from export.friendly import count_sme_modules
from export.parity import compare_logits, run_onnx
from export.plugin_graph import (PLUGIN_DOMAIN, PLUGIN_NAMESPACE, PLUGIN_OP, PLUGIN_VERSION, find_attention,
                                 make_plugin_graph, read_plugin_identity)
from export.trt_check import check_graph
from tests.export.plugin_reference import (expand_plugin_nodes, plugin_nodes, reference_evaluator,
                                           saliency_attention_ref)
from tsi.modules.attention import attention_matmul, attention_sdpa


@pytest.fixture(scope="module")
def plugin(tiny_onnx):
    path, model, _ = tiny_onnx
    proto = onnx.load(path)
    return proto, *make_plugin_graph(proto, expected=count_sme_modules(model))


def test_one_node_per_sme_with_attributes(plugin, tiny_onnx):
    standard, proto, count = plugin
    nodes = plugin_nodes(proto)
    assert count == len(nodes) == count_sme_modules(tiny_onnx[1]) == 8
    for n in nodes:
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        assert attrs == {"plugin_namespace": PLUGIN_NAMESPACE.encode(), "plugin_version": PLUGIN_VERSION.encode(),
                         "scale": 1.0}
        assert n.domain == PLUGIN_DOMAIN and len(n.input) == 3 and len(n.output) == 1
    assert any(o.domain == PLUGIN_DOMAIN and o.version == 1 for o in proto.opset_import)
    # no Softmax of attention left: the remaining ones are CTI's (2-branch softmax), none fed by a MatMul
    producer = {o: n for n in proto.graph.node for o in n.output}
    softmax = [n for n in proto.graph.node if n.op_type == "Softmax"]
    assert len(softmax) == sum(n.op_type == "Softmax" for n in standard.graph.node) - count
    assert not any(producer[s.input[0]].op_type == "MatMul" for s in softmax)
    assert not any(n.op_type == "MatMul" for n in proto.graph.node)
    assert check_graph(proto) == [] and check_graph(proto, dla=True) == []
    onnx.checker.check_model(proto)


def test_plugin_graph_runs_with_the_numpy_node(plugin, clips):
    """The plugin graph itself, run by onnx.reference with the NumPy SaliencyAttention, against
    onnxruntime on the standard graph."""
    standard, proto, _ = plugin
    ev = reference_evaluator(proto)
    with np.errstate(over="ignore", invalid="ignore"):  # onnx.reference's Sigmoid evaluates both branches
        got = np.concatenate([ev.run(None, {"clip": clips[i:i + 1]})[0] for i in range(3)])
    a = compare_logits(run_onnx(standard, clips[:3]), got)
    print(f"\nplugin graph (onnx.reference + NumPy node) vs standard (onnxruntime): {a}")
    assert a.rel <= 1e-5 and a.top1 == 1.0


def test_expanded_back_is_the_standard_graph(plugin, clips):
    standard, proto, _ = plugin
    expanded = expand_plugin_nodes(proto)
    onnx.checker.check_model(expanded, full_check=True)
    assert np.array_equal(run_onnx(expanded, clips), run_onnx(standard, clips))


def test_numpy_reference_on_the_model_attention(plugin, clips):
    """The node's reference on the real (q, k, v) of every attention subgraph equals the subgraph
    onnxruntime ran: cut the graph at the plugin's inputs/output."""
    import onnx_graphsurgeon as gs

    standard, proto, _ = plugin
    matches = find_attention(gs.import_onnx(standard))
    names = []
    for p in plugin_nodes(proto):
        names += list(p.input) + list(p.output)
    model = onnx.ModelProto()
    model.CopyFrom(standard)
    known = {o.name for o in model.graph.output}
    vi = {v.name: v for v in model.graph.value_info}
    for n in dict.fromkeys(names):
        if n not in known:
            model.graph.output.append(vi[n])
    from export.parity import ort_session

    sess = ort_session(model)
    outs = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {"clip": clips[:1]})))
    worst = 0.0
    for p, m in zip(plugin_nodes(proto), matches):
        q, k, v = (outs[i] for i in p.input)
        ref = saliency_attention_ref(q, k, v, 1.0)
        got = outs[p.output[0]]
        assert p.output[0] == m.output and p.input[0] == m.q
        assert q.ndim == 3 and k.shape == v.shape and q.shape[-1] == k.shape[-1]
        worst = max(worst, float(np.abs(ref - got).max() / (np.abs(got).max() + 1e-12)))
    print(f"\nNumPy node vs onnxruntime subgraph, {len(matches)} attention sites: max rel error {worst:.2e}")
    assert worst <= 1e-5


@pytest.mark.parametrize("shape", [(1, 1, 1), (2, 16, 4), (3, 49, 8), (6, 196, 16), (4, 7, 32)])
def test_numpy_reference_sweep(shape):
    """NumPy reference vs the PyTorch attention (SDPA and the exported MatMul form) over shapes."""
    g = torch.Generator().manual_seed(sum(shape))
    q, k, v = (torch.randn(*shape, generator=g) for _ in range(3))
    scale = 1.0 / np.sqrt(shape[-1])
    ref = saliency_attention_ref((q * scale).numpy(), k.numpy(), v.numpy(), 1.0)
    assert np.allclose(ref, saliency_attention_ref(q.numpy(), k.numpy(), v.numpy(), scale), atol=1e-6)
    for impl in (attention_sdpa, attention_matmul):
        assert np.allclose(ref, impl(q, k, v).numpy(), atol=1e-5, rtol=1e-5)


def _toy_attention(kind: str):
    """MatMul(q, B) -> Softmax -> MatMul(., v) where B is Transpose(k) ('transpose'), a plain input
    holding k^T with v an unrelated input ('plain'), or k^T with v = Transpose(k^T) ('shared')."""
    B, L, D = 2, 5, 3
    f = TensorProto.FLOAT
    inputs = [helper.make_tensor_value_info("q", f, [B, L, D])]
    nodes = []
    if kind == "transpose":
        inputs += [helper.make_tensor_value_info("k", f, [B, L, D]), helper.make_tensor_value_info("v", f, [B, L, D])]
        nodes.append(helper.make_node("Transpose", ["k"], ["kT"], name="T", perm=[0, 2, 1]))
    elif kind == "plain":
        inputs += [helper.make_tensor_value_info("kT", f, [B, D, L]), helper.make_tensor_value_info("v", f, [B, L, D])]
    else:
        inputs += [helper.make_tensor_value_info("kT", f, [B, D, L])]
        nodes.append(helper.make_node("Transpose", ["kT"], ["v"], name="Tv", perm=[0, 2, 1]))
    nodes += [helper.make_node("MatMul", ["q", "kT"], ["s"], name="mm1"),
              helper.make_node("Softmax", ["s"], ["p"], name="sm", axis=-1),
              helper.make_node("MatMul", ["p", "v"], ["out"], name="mm2")]
    graph = helper.make_graph(nodes, kind, inputs, [helper.make_tensor_value_info("out", f, [B, L, D])])
    return onnx.shape_inference.infer_shapes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))


@pytest.mark.parametrize("kind", ["transpose", "plain", "shared"])
def test_transposed_b_patterns(kind):
    proto = _toy_attention(kind)
    plugin_proto, count = make_plugin_graph(proto, expected=1)
    (node,) = plugin_nodes(plugin_proto)
    assert count == 1 and node.op_type == PLUGIN_OP
    if kind == "transpose":
        assert list(node.input) == ["q", "k", "v"]  # k: the Transpose's input, the Transpose removed
        assert not any(n.op_type == "Transpose" for n in plugin_proto.graph.node)
    if kind == "shared":
        assert list(node.input) == ["q", "v", "v"]  # k is v (SME: key = value)
    feeds = {i.name: np.random.default_rng(0).standard_normal(
        [d.dim_value for d in i.type.tensor_type.shape.dim]).astype(np.float32) for i in proto.graph.input}
    want = run_onnx_feeds(proto, feeds)
    got = reference_evaluator(plugin_proto).run(None, feeds)[0]
    assert np.allclose(want, got, atol=1e-6)
    assert np.allclose(run_onnx_feeds(expand_plugin_nodes(plugin_proto), feeds), want, atol=1e-6)


def run_onnx_feeds(proto, feeds):
    from export.parity import ort_session

    return ort_session(proto).run(None, feeds)[0]


def test_count_must_match_sme_modules(plugin):
    standard, _, count = plugin
    with pytest.raises(ExportError, match=f"found {count} saliency-attention subgraphs, expected {count + 1}"):
        make_plugin_graph(standard, expected=count + 1)


def test_plugin_identity_comes_from_the_cpp_header(tmp_path):
    """The identity is read from the header the C++ plugin is compiled with; a header without it is
    refused rather than guessed."""
    assert (PLUGIN_OP, PLUGIN_NAMESPACE, PLUGIN_VERSION) == read_plugin_identity()
    header = tmp_path / "plugin_identity.h"
    header.write_text('#define TSI_PLUGIN_NAME "X"\n#define TSI_PLUGIN_NAMESPACE "ns"\n#define TSI_PLUGIN_VERSION "7"\n')
    assert read_plugin_identity(header) == ("X", "ns", "7")
    header.write_text('#define TSI_PLUGIN_NAME "X"\n')
    with pytest.raises(RuntimeError, match="TSI_PLUGIN_NAMESPACE"):
        read_plugin_identity(header)
