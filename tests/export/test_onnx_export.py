import onnx
import pytest

from runtime.common.errors import OnnxModelError
from export.onnx_export import export_onnx, get_card, load_onnx, read_card_from_onnx
from export.parity import compare_logits, run_onnx, torch_logits
from runtime.card import ONNX_METADATA_KEY
from runtime.common.files import file_sha256
from tsi.checkpoint import load_model


def test_fp32_parity_static(tiny_onnx, tiny_ckpt, clips):
    """onnxruntime vs PyTorch (the model as trained: SDPA attention, BN unfolded) on 8 clips."""
    path, _, _ = tiny_onnx
    reference, _ = load_model(tiny_ckpt)
    a = compare_logits(torch_logits(reference, clips), run_onnx(path, clips))
    print(f"\nFP32 static batch: {a}")
    assert a.rel <= 1e-4 and a.top1 == 1.0


def test_fp32_parity_dynamic_batch(tiny_ckpt, tmp_path, clips):
    from export.friendly import export_friendly_model

    model, card = export_friendly_model(tiny_ckpt)
    path = export_onnx(model, card, tmp_path / "dyn.onnx", source_sha256="x", dynamic_batch=True)
    proto = onnx.load(path)
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"
    reference, _ = load_model(tiny_ckpt)
    a = compare_logits(torch_logits(reference, clips[:3]), run_onnx(path, clips[:3]))
    print(f"\nFP32 dynamic batch N=3: {a}")
    assert a.rel <= 1e-4 and a.top1 == 1.0


def test_graph_io_opset_and_card(tiny_onnx, tiny_ckpt):
    path, model, card = tiny_onnx
    proto = load_onnx(path)  # checker passes
    onnx.checker.check_model(proto, full_check=True)
    assert next(o.version for o in proto.opset_import if o.domain == "") >= 17
    (inp,), (out,) = proto.graph.input, proto.graph.output
    assert inp.name == "clip" and out.name == "logits"
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert [d.dim_value for d in inp.type.tensor_type.shape.dim] == [1, 4, 3, 64, 64]
    assert [d.dim_value for d in out.type.tensor_type.shape.dim] == [1, 5]
    back = read_card_from_onnx(path)
    assert back == card.replace(source_sha256=file_sha256(tiny_ckpt), precision="fp32")
    assert [p.key for p in proto.metadata_props].count(ONNX_METADATA_KEY) == 1
    assert not any(n.op_type == "BatchNormalization" for n in proto.graph.node)  # folded
    assert not list(path.parent.glob(".*.tmp")), "temporary file left behind"


def test_bad_onnx_files(tmp_path, tiny_onnx):
    with pytest.raises(OnnxModelError, match="not found"):
        load_onnx(tmp_path / "missing.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage" * 50)
    with pytest.raises(OnnxModelError, match="bad.onnx"):
        load_onnx(bad)
    proto = onnx.load(tiny_onnx[0])
    del proto.metadata_props[:]
    with pytest.raises(OnnxModelError, match="no model card"):
        get_card(proto)


def test_export_refuses_card_mismatch(tiny_onnx, tmp_path):
    _, model, card = tiny_onnx
    with pytest.raises(ValueError, match="does not match"):
        export_onnx(model, card.replace(frames=8), tmp_path / "x.onnx", source_sha256="x")
    assert not (tmp_path / "x.onnx").exists()
