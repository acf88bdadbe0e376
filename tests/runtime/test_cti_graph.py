"""CTI units as one onnxruntime operation (runtime.backends.cti_graph, ort_cross_temporal_op.cpp):
the export's clip form is matched in every block, its logits are onnxruntime's own graph's (random
temporal kernels and CI weights, and the demo's trained ones), and every other form -- causal, the
ablations, a unit whose inner tensor is read outside it -- is left to onnxruntime."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from runtime.assets import DEMO_ONNX
from runtime.backends.cti_graph import find_cti, with_cti_nodes
from runtime.backends.onnxruntime_backend import open_session, session_options
from runtime.kernels import ort_op
from tests.export.helpers import LABELS, TINY

needs_op = pytest.mark.skipif(not ort_op.available(), reason=f"no onnxruntime kernel operation: {ort_op.unavailable_reason()}")


def export_tiny(tmp_path, name, **cfg):
    """A TINY tsi_r18 (4 frames, R18: 8 blocks) exported as the project exports, its BatchNorms,
    temporal kernels and CI weights random."""
    import torch

    from export.onnx_export import export_onnx
    from tests.tsi.test_causal import randomize
    from tsi.checkpoint import make_card
    from tsi.model import create_model

    torch.manual_seed(0)
    model = randomize(create_model("tsi_r18", zero_init_residual=False, **TINY, **cfg))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Linear) and m.out_features == 2 * m.in_features:  # CI's FC
                m.weight.normal_(0, 1.0)
                m.bias.normal_(0, 0.5)
    return export_onnx(model, make_card(model.cfg, list(LABELS)), tmp_path / f"{name}.onnx", source_sha256="t")


def plain_logits(path, clip):
    s = ort.InferenceSession(str(path), session_options(1), providers=["CPUExecutionProvider"])
    return s.run(None, {s.get_inputs()[0].name: clip})[0]


@needs_op
def test_every_cti_unit_of_an_export_becomes_one_operation_with_onnxruntimes_logits(tmp_path):
    path = export_tiny(tmp_path, "cross")
    proto = onnx.load(str(path))
    units = find_cti(proto.graph)
    assert len(units) == 8 and {u.frames for u in units} == {4}
    assert all(u.tconv.shape[0] == 3 and u.ci.shape[0] == 2 and u.ci.shape[1] == 2 * u.tconv.shape[1] for u in units)
    rewritten = with_cti_nodes(proto, units, *ort_op.names()[:1], ort_op.cti_name())
    ops = [n.op_type for n in rewritten.graph.node]
    assert ops.count(ort_op.cti_name()) == 8 and "Gemm" in ops  # the classifier's Gemm stays
    assert {n.op_type for n in rewritten.graph.node if "/temporal/" in n.name} <= {ort_op.cti_name(), "Constant"}
    kernels = [list(a.ints) for n in rewritten.graph.node if n.op_type == "Conv" for a in n.attribute
               if a.name == "kernel_shape"]
    assert [3, 1] not in kernels and [3, 1] in [list(a.ints) for n in proto.graph.node for a in n.attribute
                                                 if n.op_type == "Conv" and a.name == "kernel_shape"]
    read = {i for n in rewritten.graph.node for i in n.input}
    assert all(t.name in read for t in rewritten.graph.initializer)  # the units' own weights dropped
    session = open_session(path, ["cpu"], 1)
    assert len(session.cti_units) == 8
    for seed in range(3):
        clip = np.random.default_rng(seed).standard_normal((1, 4, 3, 64, 64)).astype(np.float32)
        want = plain_logits(path, clip)
        got = session.run(None, {session.get_inputs()[0].name: clip})[0]
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * np.abs(want).max())


@needs_op
def test_the_demo_opens_with_its_cti_units_as_the_operation_and_gives_onnxruntimes_logits():
    """The demo's attentions are short (256 keys, left to onnxruntime), its 8 CTI units are not."""
    session = open_session(DEMO_ONNX, ["cpu"], 1)
    assert len(session.cti_units) == 8 and session.chains == []
    name = session.get_inputs()[0].name
    for seed in range(2):
        clip = np.random.default_rng(seed).standard_normal((1, 8, 3, 64, 64)).astype(np.float32)
        want = plain_logits(DEMO_ONNX, clip)
        np.testing.assert_allclose(session.run(None, {name: clip})[0], want, rtol=0, atol=1e-5 * np.abs(want).max())


@pytest.mark.parametrize("cfg", [dict(causal=True), dict(ci_mode="independent"), dict(ci_mode="addition")],
                         ids=["causal", "independent", "addition"])
def test_other_forms_of_the_unit_are_left_to_onnxruntime(tmp_path, cfg):
    path = export_tiny(tmp_path, "other", **cfg)
    assert find_cti(onnx.load(str(path)).graph) == []


def test_a_unit_whose_inner_tensor_is_read_outside_it_is_left_alone(tmp_path):
    """A group's blended input made a graph output: fusing the unit would lose it."""
    proto = onnx.load(str(export_tiny(tmp_path, "cross")))
    first = find_cti(proto.graph)[0]
    blended = next(n.output[0] for i, n in enumerate(proto.graph.node)
                   if i in first.nodes and n.op_type == "Add" and "ci.0/Add_1" in n.name)
    proto.graph.output.append(onnx.helper.make_tensor_value_info(blended, onnx.TensorProto.FLOAT, None))
    assert len(find_cti(proto.graph)) == 7


@needs_op
def test_the_operation_refuses_a_mismatched_tensor_in_one_line():
    from onnx import TensorProto, helper, numpy_helper

    domain, name = ort_op.names()[0], ort_op.cti_name()
    tconv = numpy_helper.from_array(np.zeros((3, 4, 3), np.float32), "tw")
    ci = numpy_helper.from_array(np.zeros((2, 8, 5), np.float32), "cw")
    node = helper.make_node(name, ["x", "tw", "cw"], ["y"], domain=domain, frames=4)
    vi = lambda n, s: helper.make_tensor_value_info(n, TensorProto.FLOAT, s)  # noqa: E731
    model = helper.make_model(helper.make_graph([node], "g", [vi("x", ["n", "c", 2, 2])], [vi("y", ["n", "c", 2, 2])],
                                                [tconv, ci]),
                              opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(domain, 1)])
    so = session_options(1)
    so.register_custom_ops_library(str(ort_op.path()))
    session = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    with pytest.raises(Exception, match="do not match") as e:  # 12 channels, not 4 groups x 4
        session.run(None, {"x": np.zeros((4, 12, 2, 2), np.float32)})
    assert "\n" not in str(e.value).strip()
    ok = np.random.default_rng(0).standard_normal((8, 16, 2, 2)).astype(np.float32)
    with pytest.raises(Exception, match="whole number of clips"):
        session.run(None, {"x": ok[:6]})


def test_a_unit_of_float16_weights_or_input_is_left_to_onnxruntime(tmp_path):
    """The operation is float32: a unit whose temporal kernel a tool stored as float16, or whose
    input is float16, keeps onnxruntime's nodes."""
    from onnx import numpy_helper

    proto = onnx.shape_inference.infer_shapes(onnx.load(str(export_tiny(tmp_path, "cross"))))
    units = find_cti(proto.graph)
    conv = next(n for i, n in enumerate(proto.graph.node) if i in units[0].nodes and n.op_type == "Conv")
    init = next(t for t in proto.graph.initializer if t.name == conv.input[1])
    init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), init.name))
    info = next(v for v in proto.graph.value_info if v.name == units[1].x)
    info.type.tensor_type.elem_type = onnx.TensorProto.FLOAT16
    assert [u.output for u in find_cti(proto.graph)] == [u.output for u in units[2:]]
