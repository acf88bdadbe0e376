import onnx
import pytest
from onnx import TensorProto

from calib.fp16 import convert_fp16
from export.parity import compare_onnx, ort_session
from export.plugin_graph import attention_node_names, make_plugin_graph
from export.trt_check import check_graph
from tests.export.helpers import structured_clips

FP16_REL_TOL = 5e-3  # of the FP32 logit range (stated tolerance for FP16)


@pytest.fixture(scope="module")
def fp16(tiny_onnx):
    proto = onnx.load(tiny_onnx[0])
    return convert_fp16(proto, keep_fp32_nodes=attention_node_names(proto))


def test_types(fp16, tiny_onnx):
    sess = ort_session(fp16)
    assert [i.type for i in sess.get_inputs()] == ["tensor(float)"] and sess.get_inputs()[0].name == "clip"
    assert [o.type for o in sess.get_outputs()] == ["tensor(float)"] and sess.get_outputs()[0].name == "logits"
    types = {vi.name: vi.type.tensor_type.elem_type for vi in fp16.graph.value_info}
    for vi in list(fp16.graph.input) + list(fp16.graph.output):
        types[vi.name] = vi.type.tensor_type.elem_type
    by_name = {n.name: n for n in fp16.graph.node}
    attention = attention_node_names(onnx.load(tiny_onnx[0]))
    for name in attention:  # attention computes in float32
        n = by_name[name]
        assert all(types[t] == TensorProto.FLOAT for t in list(n.input) + list(n.output)), name
    for n in fp16.graph.node:
        if n.op_type == "Softmax":
            assert types[n.input[0]] == TensorProto.FLOAT
        if n.op_type == "Conv":
            assert types[n.input[0]] == TensorProto.FLOAT16 and types[n.output[0]] == TensorProto.FLOAT16
    weights = [i for i in fp16.graph.initializer if i.data_type in (TensorProto.FLOAT, TensorProto.FLOAT16)]
    assert sum(i.data_type == TensorProto.FLOAT16 for i in weights) > 0.9 * len(weights)
    assert check_graph(fp16) == []
    assert make_plugin_graph(fp16, expected=8)[1] == 8  # the attention pattern survives the Casts
    # no float32 -> float16 -> float32 round trip (onnxruntime's converter alone leaves them
    # between kept nodes; they would round the attention's scores to float16 after all)
    producer = {o: n for n in fp16.graph.node for o in n.output}
    assert not [n.name for n in fp16.graph.node
                if n.op_type == "Cast" and getattr(producer.get(n.input[0]), "op_type", None) == "Cast"]


def test_fp16_agrees_with_fp32(fp16, tiny_onnx):
    clips = structured_clips(16, seed=3).numpy()
    a = compare_onnx(tiny_onnx[0], fp16, clips)
    print(f"\nFP16 vs FP32 (onnxruntime CPU, 16 random clips): {a}")
    assert a.rel <= FP16_REL_TOL and a.top1 == 1.0
