import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from calib.qdq import make_qdq, verify_qdq
from calib.ranges import compute_ranges
from runtime.common.errors import CalibrationError
from export.parity import compare_logits, run_onnx
from export.plugin_graph import attention_internal_tensors, attention_node_names, make_plugin_graph
from export.trt_check import check_graph
from tests.export.helpers import structured_clips


CALIB_CLIPS = 24


@pytest.fixture(scope="module")
def qdq(tiny_onnx):
    path = tiny_onnx[0]
    proto = onnx.load(path)
    ranges = compute_ranges(path, structured_clips(CALIB_CLIPS, seed=11).numpy(), "percentile",
                            exclude=attention_internal_tensors(proto), progress=False)
    return path, make_qdq(path, ranges, float_nodes=attention_node_names(proto))


def test_qdq_is_what_tensorrt_needs(qdq):
    path, proto = qdq
    g = proto.graph
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    producer = {o: n for n in g.node for o in n.output}
    qs = [n for n in g.node if n.op_type == "QuantizeLinear"]
    dqs = [n for n in g.node if n.op_type == "DequantizeLinear"]
    assert qs and len(qs) == len(dqs)
    n_weight = n_act = 0
    for n in qs + dqs:
        zp = inits[n.input[2]]
        assert zp.dtype == np.int8 and not zp.any(), n.name  # symmetric: zero point 0, int8
        scale = inits[n.input[1]]
        axis = next((a.i for a in n.attribute if a.name == "axis"), 1)
        src = n.input[0]
        weight = src in inits or (producer.get(src) is not None and producer[src].op_type == "QuantizeLinear"
                                  and producer[src].input[0] in inits)
        if weight:
            w = inits[src] if src in inits else inits[producer[src].input[0]]
            assert axis == 0 and scale.shape == (w.shape[0],), n.name  # per-channel, output channels
            n_weight += 1
        else:
            assert scale.size == 1, n.name  # per-tensor activations
            n_act += 1
    assert n_weight and n_act
    assert not any(inits[n.input[2]].dtype == np.int32 for n in dqs)  # biases stay float
    # attention MatMuls and Softmax not quantized
    attention = attention_node_names(onnx.load(path))
    assert len(attention) == 24
    by_name = {n.name: n for n in g.node}
    for name in attention:
        assert not any(producer.get(i) is not None and producer[i].op_type == "DequantizeLinear"
                       for i in by_name[name].input), name
    assert verify_qdq(proto, attention) == [] and check_graph(proto) == []
    assert next(o.version for o in proto.opset_import if o.domain == "") >= 13
    _, n_plugin = make_plugin_graph(proto, expected=8)  # attention intact: the plugin variant works too


def test_qdq_top1_agreement_on_random_clips(qdq):
    """Calibrated (percentile) on 24 random structured clips, evaluated on 32 others. The tiny random
    model's top-1 margins are small (median ~0.05 of a 0.7 logit range), so this is a wiring check
    with a loose bound, not an accuracy measurement: benchmarks/int8_accuracy.py measures FP32 vs
    INT8 top-1 on real (synthetic-dataset) videos."""
    path, proto = qdq
    eval_clips = structured_clips(32, seed=7).numpy()
    fp32, int8 = run_onnx(path, eval_clips), run_onnx(proto, eval_clips)
    a = compare_logits(fp32, int8)
    per_clip = np.abs(int8 - fp32).max(1) / a.logit_range
    print(f"\nINT8 Q/DQ vs FP32 (onnxruntime, calibrated on {CALIB_CLIPS}, 32 other random clips): {a}; "
          f"median per-clip max error {np.median(per_clip):.3f} of the range")
    assert a.top1 >= 0.75 and np.median(per_clip) <= 0.1


def test_verify_flags_bad_qdq(qdq):
    _, proto = qdq
    bad = onnx.ModelProto()
    bad.CopyFrom(proto)
    q = next(n for n in bad.graph.node if n.op_type == "QuantizeLinear")
    for init in bad.graph.initializer:
        if init.name == q.input[2]:
            init.CopyFrom(numpy_helper.from_array(np.array(5, np.int8), init.name))
    problems = verify_qdq(bad, attention_node_names(bad))
    assert any("zero point" in p and q.name in p for p in problems)
    assert any("zero point must be 0" in str(p) for p in check_graph(bad))  # and export's TensorRT check


def test_make_qdq_raises_on_problems(tiny_onnx, clips, monkeypatch):
    import calib.qdq as qdq_mod

    ranges = compute_ranges(tiny_onnx[0], clips[:2], "minmax", exclude=set(), progress=False)
    monkeypatch.setattr(qdq_mod, "verify_qdq", lambda proto, float_nodes: ["fake problem"])
    with pytest.raises(CalibrationError, match="fake problem"):
        make_qdq(tiny_onnx[0], ranges, float_nodes=[])


def test_residual_adds_follow_tensorrt_rules(qdq, tiny_onnx, monkeypatch):
    """TensorRT's Q/DQ placement for residual networks: every residual Add reads its Conv branch in
    float (Conv + Add fuse) and its identity quantized; no weighted layer's output is quantized for
    anything else. The check names the Convs of onnxruntime's own placement (outputs quantized)."""
    import calib.qdq as qdq_mod

    path, proto = qdq
    adds = qdq_mod.residual_adds(proto)
    assert len(adds) >= 8  # one per residual block of the tiny TSI-R18, plus SME's Conv + Add
    assert qdq_mod.residual_add_problems(proto) == []
    producer = {o: n for n in proto.graph.node for o in n.output}
    by_name = {n.name: n for n in proto.graph.node}
    for add, branch, identity in adds:
        sources = [qdq_mod._through_qdq(i, producer) for i in by_name[add].input]
        assert (branch, False) in sources and (identity, True) in sources, add

    # onnxruntime's default placement (outputs of Convs quantized): named, Conv by Conv
    monkeypatch.setitem(qdq_mod.EXTRA_OPTIONS, "OpTypesToExcludeOutputQuantization", [])
    monkeypatch.setattr(qdq_mod, "place_residual_qdq", lambda proto, ranges: (0, 0))
    graph = onnx.load(path)
    ranges = compute_ranges(path, structured_clips(4, seed=11).numpy(), "minmax",
                            exclude=attention_internal_tensors(graph), progress=False)
    old = qdq_mod.quantize_qdq(path, ranges, float_nodes=attention_node_names(graph))
    problems = qdq_mod.residual_add_problems(old)
    named = [p for p in problems if p.startswith("Conv ") and "quantized before the residual Add" in p]
    assert len(named) >= len(adds) - 3, problems
    n_before = sum(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in old.graph.node)
    n_after = sum(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in proto.graph.node)
    print(f"\nQ/DQ nodes: onnxruntime's placement {n_before}, TensorRT's rules {n_after}; "
          f"{len(named)} Conv outputs quantized before a residual Add before, 0 after")
    assert n_after < n_before
