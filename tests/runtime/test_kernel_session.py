"""onnxruntime with the saliency attentions on the C++ kernel (runtime.backends.kernel_session),
both ways -- the kernel's operation in the graph, and the graph cut around the kernel: the same
logits as onnxruntime's own graph for clip and step graphs, skip connections across the
attentions, and when neither is used."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from runtime.assets import DEMO_ONNX
from runtime.backends import kernel_session as ks
from runtime.backends import open_backend, open_step
from runtime.backends.onnxruntime_backend import open_session, session_options
from runtime.kernels import cpu_attention, ort_op
from tests.runtime.helpers import check_steps_against_onnxruntime

pytestmark = pytest.mark.skipif(not cpu_attention.available(),
                                reason=f"no CPU attention kernel: {cpu_attention.unavailable_reason()}")


def every_attention_on_the_kernel(monkeypatch):
    monkeypatch.setattr(cpu_attention, "MIN_KEYS", 1)
    monkeypatch.setattr(ks, "CUT_MIN_KEYS", 1)


@pytest.fixture(params=["in_graph", "cut"])
def way(request, monkeypatch):
    """Each test below both ways: the kernel's onnxruntime operation (where it builds) and the cut."""
    if request.param == "in_graph" and not ort_op.available():
        pytest.skip(f"no onnxruntime kernel operation: {ort_op.unavailable_reason()}")
    if request.param == "cut":
        monkeypatch.setattr(ort_op, "available", lambda: False)
    return request.param


def on_the_kernel(session, way) -> bool:
    return isinstance(session, ks.KernelSession) == (way == "cut") and isinstance(
        session, (ks.KernelSession, ort.InferenceSession))


def plain(path):
    return ort.InferenceSession(str(path), session_options(1), providers=["CPUExecutionProvider"])


def test_a_graph_of_short_attentions_and_no_cti_is_left_to_onnxruntime(monkeypatch, tmp_path):
    """An attention over 256 keys (the demo's longest, 64² at stage 1) is below the cut's and the
    operation's least: with no CTI unit either, nothing is taken and the kernel is not even looked
    for (no build or compiler call at start-up). The demo itself opens with its CTI units on the
    operation (tests/runtime/test_cti_graph.py)."""
    monkeypatch.setattr(cpu_attention, "available", lambda: pytest.fail("the kernel was asked for"))
    path, _ = one_attention(tmp_path / "short.onnx", 256)
    session = open_session(path, ["cpu"], 1)
    assert isinstance(session, ort.InferenceSession) and not hasattr(session, "chains")


def test_every_attention_of_the_demo_on_the_kernel_gives_onnxruntimes_logits(monkeypatch, way):
    every_attention_on_the_kernel(monkeypatch)
    backend = open_backend(DEMO_ONNX, "onnxruntime", threads=1)
    assert on_the_kernel(backend.session, way) and len(backend.session.chains) == 8
    ref = plain(DEMO_ONNX)
    for seed in range(3):
        clip = np.random.default_rng(seed).standard_normal((1, *backend.card.input_shape)).astype(np.float32)
        want = ref.run(None, {ref.get_inputs()[0].name: clip})[0]
        np.testing.assert_allclose(backend.infer(clip), want, rtol=0, atol=1e-5 * np.abs(want).max())


def test_the_online_step_graph_on_the_kernel_keeps_onnxruntimes_states(monkeypatch, tmp_path, way):
    from export.friendly import export_friendly_model
    from export.stream_export import export_step_onnx
    from tests.export.helpers import make_causal_checkpoint

    every_attention_on_the_kernel(monkeypatch)
    ckpt, _ = make_causal_checkpoint(tmp_path / "m.pt")
    friendly, card = export_friendly_model(ckpt)
    path = export_step_onnx(friendly, card, tmp_path / "m.online.onnx", source_sha256="t", dynamic_batch=True)
    step = open_step(path, "onnxruntime", threads=1)
    assert on_the_kernel(step.session, way) and step.session.chains
    check_steps_against_onnxruntime(path, card, lambda feed, names: step.session.run(names, feed))


def _attention(prefix, x, w, nodes, inits):
    """q = x Wq, k = x Wk, v = x; softmax(q k^T) v: the exported form (k^T by a Transpose)."""
    for name in ("q", "k"):
        inits.append(numpy_helper.from_array(w[name], f"{prefix}W{name}"))
        nodes.append(helper.make_node("MatMul", [x, f"{prefix}W{name}"], [f"{prefix}{name}"]))
    nodes += [helper.make_node("Transpose", [f"{prefix}k"], [f"{prefix}kt"], perm=[0, 2, 1]),
              helper.make_node("MatMul", [f"{prefix}q", f"{prefix}kt"], [f"{prefix}s"], name=f"{prefix}qk"),
              helper.make_node("Softmax", [f"{prefix}s"], [f"{prefix}p"], axis=-1, name=f"{prefix}sm"),
              helper.make_node("MatMul", [f"{prefix}p", x], [f"{prefix}o"], name=f"{prefix}pv")]
    return f"{prefix}o"


def one_attention(path, length, seed=0, named=True, batch=1):
    """A graph of one exported-form attention over ``length`` keys (head size 4), its nodes named or
    not, written to ``path``; (path, rng) with the rng that made its weights."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    out = _attention("a/", "x", {n: rng.standard_normal((4, 4)).astype(np.float32) for n in "qk"}, nodes, inits)
    for n in nodes if not named else []:
        n.name = ""
    vi = lambda n: helper.make_tensor_value_info(n, TensorProto.FLOAT, [batch, length, 4])  # noqa: E731
    path.write_bytes(helper.make_model(helper.make_graph(nodes, "g", [vi("x")], [vi(out)], inits),
                                       opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
    return path, rng


def test_a_skip_connection_and_an_attention_output_that_is_a_graph_output(tmp_path, way):
    """x feeds both attentions and the last Add (cut: a tensor crossing two cuts); the first
    attention's output is itself a graph output; run() answers the outputs asked for, in that order."""
    b, length, d = 2, 1100, 4  # over CUT_MIN_KEYS: cut as they are
    rng = np.random.default_rng(0)
    nodes, inits = [], []
    a1 = _attention("a1/", "x", {n: rng.standard_normal((d, d)).astype(np.float32) for n in "qk"}, nodes, inits)
    nodes.append(helper.make_node("Relu", [a1], ["h"]))
    a2 = _attention("a2/", "h", {n: rng.standard_normal((d, d)).astype(np.float32) for n in "qk"}, nodes, inits)
    nodes.append(helper.make_node("Add", [a2, "x"], ["y"]))
    vi = lambda n: helper.make_tensor_value_info(n, TensorProto.FLOAT, [b, length, d])  # noqa: E731
    graph = helper.make_graph(nodes, "g", [vi("x")], [vi("y"), vi(a1)], inits)
    path = tmp_path / "two.onnx"
    path.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
    session = open_session(path, ["cpu"], 1)
    assert on_the_kernel(session, way) and len(session.chains) == 2
    x = rng.standard_normal((b, length, d)).astype(np.float32)
    want = plain(path).run(None, {"x": x})
    for got, ref in zip(session.run(None, {"x": x}), want):
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-5 * np.abs(ref).max())
    (only,) = session.run([a1], {"x": x})
    np.testing.assert_allclose(only, want[1], rtol=0, atol=1e-5 * np.abs(want[1]).max())
    assert [o.name for o in session.get_outputs()] == ["y", a1] and session.get_inputs()[0].shape == [b, length, d]


def test_a_graph_whose_nodes_have_no_names(tmp_path, way):
    """Chains are matched by node name: a graph from a tool that names no node (or two alike) is
    named on load (the file is left as it is), and gives onnxruntime's logits."""
    path, rng = one_attention(tmp_path / "unnamed.onnx", 1100, seed=2, named=False, batch=2)
    before = path.read_bytes()
    session = open_session(path, ["cpu"], 1)
    assert on_the_kernel(session, way) and len(session.chains) == 1 and path.read_bytes() == before
    x = rng.standard_normal((2, 1100, 4)).astype(np.float32)
    want = plain(path).run(None, {"x": x})[0]
    np.testing.assert_allclose(session.run(None, {"x": x})[0], want, rtol=0, atol=1e-5 * np.abs(want).max())


def test_without_the_kernel_the_plain_session_opens(monkeypatch, tmp_path):
    every_attention_on_the_kernel(monkeypatch)
    monkeypatch.setattr(cpu_attention, "available", lambda: False)
    session = open_session(DEMO_ONNX, ["cpu"], 1)
    assert isinstance(session, ort.InferenceSession) and not hasattr(session, "chains")


needs_op = pytest.mark.skipif(not ort_op.available(), reason=f"no onnxruntime kernel operation: {ort_op.unavailable_reason()}")


def attribute(node, name):
    return next(helper.get_attribute_value(a) for a in node.attribute if a.name == name)


@needs_op
def test_the_graph_with_the_kernels_operation_keeps_everything_else():
    """Each chain's two MatMuls and Softmax become one node of the operation's domain in the last
    MatMul's place, writing the chain's output; the Transpose making k^T is folded in (the kernel
    reads k as it is); nothing else changes."""
    from runtime.attention_graph import find_attention, proto_nodes

    rng = np.random.default_rng(0)
    nodes, inits = [], []
    out = _attention("a/", "x", {n: rng.standard_normal((4, 4)).astype(np.float32) for n in "qk"}, nodes, inits)
    nodes.append(helper.make_node("Relu", [out], ["y"], name="relu"))
    vi = lambda n: helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 8, 4])  # noqa: E731
    proto = helper.make_model(helper.make_graph(nodes, "g", [vi("x")], [vi("y")], inits),
                              opset_imports=[helper.make_opsetid("", 17)])
    rewritten = ks.with_kernel_nodes(proto, find_attention(proto_nodes(proto.graph)))
    assert [(n.domain, n.op_type) for n in rewritten.graph.node] == [("", "MatMul"), ("", "MatMul"), ort_op.names(),
                                                                     ("", "Relu")]
    kernel = rewritten.graph.node[2]
    assert list(kernel.input) == ["a/q", "a/k", "x"] and list(kernel.output) == [out] and attribute(kernel, "layout") == 0
    assert [(o.domain, o.version) for o in rewritten.opset_import] == [("", 17), (ort_op.names()[0], 1)]
    assert len(proto.graph.node) == 7  # the original untouched


@needs_op
def test_channel_major_feature_maps_reach_the_kernel_untransposed(tmp_path):
    """The exported form: q and v transposed from (B, D, L) feature maps, k^T the map itself, q and
    k^T each multiplied by the square root of the scale (a Constant), the output transposed back: the
    operation reads and writes the maps (layout 15) with the scale as its own, no Transpose or Mul is
    left, and the logits are onnxruntime's own graph's."""
    rng = np.random.default_rng(1)
    b, d, length = 2, 4, 600
    root = np.float32(0.5 ** 0.5)
    nodes = [helper.make_node("Constant", [], ["c"], value=numpy_helper.from_array(np.array(root, np.float32))),
             helper.make_node("Transpose", ["qt"], ["q0"], perm=[0, 2, 1]),
             helper.make_node("Mul", ["q0", "c"], ["q"]),
             helper.make_node("Mul", ["c", "kt"], ["ks"]),
             helper.make_node("Transpose", ["vt"], ["v"], perm=[0, 2, 1]),
             helper.make_node("MatMul", ["q", "ks"], ["s"], name="qk"),
             helper.make_node("Softmax", ["s"], ["p"], axis=-1, name="sm"),
             helper.make_node("MatMul", ["p", "v"], ["o"], name="pv"),
             helper.make_node("Transpose", ["o"], ["ot"], perm=[0, 2, 1]),
             helper.make_node("Relu", ["ot"], ["y"])]
    vi = lambda n: helper.make_tensor_value_info(n, TensorProto.FLOAT, [b, d, length])  # noqa: E731
    path = tmp_path / "cm.onnx"
    path.write_bytes(helper.make_model(helper.make_graph(nodes, "g", [vi("qt"), vi("kt"), vi("vt")], [vi("y")]),
                                       opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
    import onnx

    from runtime.attention_graph import find_attention, proto_nodes

    proto = onnx.load(str(path))
    rewritten = ks.with_kernel_nodes(proto, find_attention(proto_nodes(proto.graph)))
    assert [n.op_type for n in rewritten.graph.node] == ["Constant", ort_op.names()[1], "Relu"]
    kernel = rewritten.graph.node[1]
    assert list(kernel.input) == ["qt", "kt", "vt"] and list(kernel.output) == ["ot"]
    assert attribute(kernel, "layout") == 15 and attribute(kernel, "scale") == pytest.approx(0.5, rel=1e-6)
    feed = {n: rng.standard_normal((b, d, length)).astype(np.float32) for n in ("qt", "kt", "vt")}
    session = open_session(path, ["cpu"], 1)
    assert len(session.chains) == 1
    want = plain(path).run(None, feed)[0]
    np.testing.assert_allclose(session.run(None, feed)[0], want, rtol=0, atol=1e-5 * np.abs(want).max())


def test_an_attention_between_the_two_leasts_goes_to_the_kernel_only_in_the_graph(tmp_path, way):
    """700 keys: over cpu_attention.MIN_KEYS, under CUT_MIN_KEYS: the operation takes it (no handover
    to pay for), the cut leaves the graph whole."""
    path, rng = one_attention(tmp_path / "mid.onnx", 700)
    session = open_session(path, ["cpu"], 1)
    assert len(getattr(session, "chains", [])) == (1 if way == "in_graph" else 0)
    x = rng.standard_normal((1, 700, 4)).astype(np.float32)
    want = plain(path).run(None, {"x": x})[0]
    np.testing.assert_allclose(session.run(None, {"x": x})[0], want, rtol=0, atol=1e-5 * np.abs(want).max())


def test_the_cut_asks_for_more_keys_than_the_kernel_alone():
    """onnxruntime's cut costs reorders of the feature maps that live across it, so it takes
    attentions over CUT_MIN_KEYS keys (TSI-R50's stage 1 at 224², 3136), not stage 2's 784, which
    the in-graph operations (onnxruntime's and OpenVINO's) still hand to the kernel."""
    assert ks.CUT_MIN_KEYS > cpu_attention.MIN_KEYS
    assert cpu_attention.hands_over(4, 4, 4, 3136, 3136, min_keys=ks.CUT_MIN_KEYS)
    assert not cpu_attention.hands_over(8, 8, 8, 784, 784, min_keys=ks.CUT_MIN_KEYS)
    assert cpu_attention.hands_over(8, 8, 8, 784, 784)
