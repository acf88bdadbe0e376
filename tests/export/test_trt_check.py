import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from runtime.common.errors import CompatibilityError
from export.trt_check import assert_trt_compatible, check_graph, main

F = TensorProto.FLOAT


def model(nodes, inputs, outputs, inits=(), opset=17, extra_opsets=()):
    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset), *extra_opsets])


def vi(name, shape, t=F):
    return helper.make_tensor_value_info(name, t, shape)


def reasons(problems, node):
    return [p.reason for p in problems if p.node == node]


def test_real_graph_passes(tiny_onnx):
    assert check_graph(onnx.load(tiny_onnx[0])) == []
    assert check_graph(onnx.load(tiny_onnx[0]), dla=True) == []


def test_flags_einsum_naming_the_node():
    m = model([helper.make_node("Einsum", ["a", "b"], ["y"], name="my_einsum", equation="ij,jk->ik")],
              [vi("a", [2, 3]), vi("b", [3, 4])], [vi("y", [2, 4])])
    (p,) = check_graph(m)
    assert (p.node, p.op) == ("my_einsum", "Einsum") and "Einsum" in p.reason
    assert "my_einsum (Einsum)" in str(p)


def test_flags_non_constant_reduce_axes():
    m = model([helper.make_node("ReduceMean", ["x", "axes"], ["y"], name="mean_dyn_axes", keepdims=0)],
              [vi("x", [2, 3, 4]), vi("axes", [1], TensorProto.INT64)], [vi("y", None)], opset=18)
    (p,) = check_graph(m)
    assert p.node == "mean_dyn_axes" and "axes must be a constant" in p.reason
    ok = model([helper.make_node("ReduceMean", ["x", "axes"], ["y"], name="mean", keepdims=0)],
               [vi("x", [2, 3, 4])], [vi("y", None)],
               inits=[numpy_helper.from_array(np.array([1], np.int64), "axes")], opset=18)
    assert check_graph(ok) == []


def test_flags_1d_pooling_and_slice_axes():
    m = model([helper.make_node("MaxPool", ["x"], ["y"], name="pool1d", kernel_shape=[3]),
               helper.make_node("Slice", ["x", "s", "e", "ax"], ["z"], name="slice_dyn")],
              [vi("x", [1, 2, 8]), vi("ax", [1], TensorProto.INT64)], [vi("y", None), vi("z", None)],
              inits=[numpy_helper.from_array(np.array([0], np.int64), "s"),
                     numpy_helper.from_array(np.array([2], np.int64), "e")])
    problems = check_graph(m)
    assert reasons(problems, "pool1d") == ["1D pooling: TensorRT pools in 2D or 3D only"]
    assert "axes must be a constant" in reasons(problems, "slice_dyn")[0]


def _qdq(zp, scale, name="q", x_shape=(1, 2, 4, 4), axis=None):
    attrs = {} if axis is None else {"axis": axis}
    inits = [numpy_helper.from_array(np.asarray(scale, np.float32), "s")]
    ins = ["x", "s"]
    if zp is not None:
        inits.append(numpy_helper.from_array(np.asarray(zp), "zp"))
        ins.append("zp")
    nodes = [helper.make_node("QuantizeLinear", ins, ["xq"], name=name, **attrs),
             helper.make_node("DequantizeLinear", ["xq", *ins[1:]], ["y"], name=name + "_dq", **attrs)]
    return model(nodes, [vi("x", list(x_shape))], [vi("y", list(x_shape))], inits=inits)


def test_flags_qdq_zero_points_and_per_channel_activations():
    assert check_graph(_qdq(np.int8(0), 0.1)) == []
    p = check_graph(_qdq(np.int8(3), 0.1, name="q_nonzero"))
    assert any("zero point must be 0" in r for r in reasons(p, "q_nonzero"))
    p = check_graph(_qdq(np.uint8(0), 0.1, name="q_uint8"))
    assert any("must be int8" in r for r in reasons(p, "q_uint8"))
    p = check_graph(_qdq(None, 0.1, name="q_nozp"))
    assert any("zero point missing" in r for r in reasons(p, "q_nozp"))
    p = check_graph(_qdq(np.zeros(2, np.int8), [0.1, 0.2], name="q_pc", axis=1))
    assert any("per-channel scale on an activation" in r for r in reasons(p, "q_pc"))
    p = check_graph(_qdq(np.int8(0), -0.1, name="q_neg"))
    assert any("scale must be positive" in r for r in reasons(p, "q_neg"))


def test_flags_qdq_below_opset_13_and_opset_range():
    m = _qdq(np.int8(0), 0.1)
    m.opset_import[0].version = 10
    assert any("opset >= 13" in p.reason for p in check_graph(m))
    m.opset_import[0].version = 21
    assert any("outside TensorRT 10.3" in p.reason for p in check_graph(m))


def test_custom_ops_only_if_listed():
    nodes = [helper.make_node("SaliencyAttention", ["q", "k", "v"], ["o"], name="sa_bad", domain="tsi",
                              plugin_namespace="other", plugin_version="1", scale=1.0, extra=3),
             helper.make_node("MyOp", ["o"], ["y"], name="mystery", domain="tsi")]
    m = model(nodes, [vi(n, [1, 4, 2]) for n in "qkv"], [vi("y", None)],
              extra_opsets=[helper.make_opsetid("tsi", 1)])
    problems = check_graph(m)
    bad = reasons(problems, "sa_bad")
    assert any("plugin_namespace must be 'tsi'" in r for r in bad)
    assert any("unknown attribute 'extra'" in r for r in bad)
    assert any("not a listed plugin" in r for r in reasons(problems, "mystery"))


def test_scatter_reduction_and_rank():
    nodes = [helper.make_node("ScatterND", ["x", "i", "u"], ["y"], name="scatter_add", reduction="add"),
             helper.make_node("Reshape", ["x9", "shape9"], ["y9"], name="rank9")]
    m = model(nodes, [vi("x", [4]), vi("i", [1, 1], TensorProto.INT64), vi("u", [1]), vi("x9", [512])],
              [vi("y", [4]), vi("y9", [2] * 9)],
              inits=[numpy_helper.from_array(np.array([2] * 9, np.int64), "shape9")])
    problems = check_graph(m)
    assert "reduction" in reasons(problems, "scatter_add")[0]
    assert "9 dimensions" in reasons(problems, "rank9")[0]


def test_dla_requires_static_shapes(tmp_path, tiny_ckpt):
    from export.friendly import export_friendly_model
    from export.onnx_export import export_onnx

    model_, card = export_friendly_model(tiny_ckpt)
    path = export_onnx(model_, card, tmp_path / "dyn.onnx", source_sha256="x", dynamic_batch=True)
    assert check_graph(onnx.load(path)) == []
    problems = check_graph(onnx.load(path), dla=True)
    assert {p.node for p in problems} == {"<graph input clip>", "<graph output logits>"}
    assert all("DLA needs static shapes" in p.reason for p in problems)
    with pytest.raises(CompatibilityError) as e:
        assert_trt_compatible(path, dla=True)
    assert len(e.value.problems) == 2 and "2 TensorRT compatibility problem(s)" in str(e.value)


def test_cli(tmp_path, tiny_onnx):
    bad = tmp_path / "bad.onnx"
    onnx.save(model([helper.make_node("Einsum", ["a", "b"], ["y"], name="e", equation="ij,jk->ik")],
                    [vi("a", [2, 3]), vi("b", [3, 4])], [vi("y", [2, 4])]), bad)
    assert main([str(tiny_onnx[0])]) == 0
    assert main([str(tiny_onnx[0]), str(bad)]) == 2
