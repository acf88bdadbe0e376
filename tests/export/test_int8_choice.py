"""The builder's INT8 choice (export.int8_choice): measured on held-out clips, the best method kept,
costly layers kept in float when none is within the bound, and a graph outside the bound written,
marked and refused with exit 3 unless accepted."""

import logging

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import export.build_engine as be
from export.int8_choice import choose_int8, split_clips
from export.onnx_export import read_card_from_onnx
from tests.export.helpers import listing
from tests.export.test_build_engine import calib_dir  # noqa: F401  (the fixture)

FEATURES = 64


def outlier_model(path):
    """logits = (x0 - 10, 0) (then an identity layer): class 0 iff x0 > 10. x0 is an outlier (5..40)
    in 15% of the inputs, 0.2% of the input tensor's values: entropy's KL threshold clips it, and the
    class with it."""
    w = np.zeros((2, FEATURES), np.float32)
    w[0, 0] = 1.0
    g = helper.make_graph(
        [helper.make_node("Gemm", ["clip", "w", "b"], ["scores"], name="fc", transB=1),
         helper.make_node("Gemm", ["scores", "eye", "zero"], ["logits"], name="head", transB=1)], "outliers",
        [helper.make_tensor_value_info("clip", TensorProto.FLOAT, ["N", FEATURES])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 2])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.array([-10, 0], np.float32), "b"),
         numpy_helper.from_array(np.eye(2, dtype=np.float32), "eye"),
         numpy_helper.from_array(np.zeros(2, np.float32), "zero")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, path)
    return path


def outlier_inputs(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, FEATURES)).astype(np.float32)
    k = rng.random(n) < 0.15
    x[k, 0] = rng.uniform(5, 40, k.sum())
    return x


def test_split_holds_out_every_third():
    calib, held = split_clips(np.arange(10))
    assert held.tolist() == [2, 5, 8] and calib.tolist() == [0, 1, 3, 4, 6, 7, 9]


def test_entropy_clipping_outliers_is_not_chosen(tmp_path):
    path = outlier_model(tmp_path / "outliers.onnx")
    choice = choose_int8(path, outlier_inputs(300, 1), progress=False)
    entropy = next(t for t in choice.trials if t.label == "entropy")
    assert entropy.agreement.top1 < 0.95  # it clips the outliers that decide class 0
    assert choice.best.label != "entropy" and choice.within and choice.best.agreement.top1 >= 0.97
    report = "\n".join(choice.notes())  # what the builder prints
    assert "entropy: agreement" in report and "(outside)" in report.split("entropy: agreement")[1].split("\n")[0]
    assert f"chose {choice.best.label}: within the bound" in report
    assert choice.card_entry()["method"] == choice.best.label


def test_entropy_alone_keeps_the_costly_layer_in_float(tmp_path):
    path = outlier_model(tmp_path / "outliers.onnx")
    choice = choose_int8(path, outlier_inputs(300, 1), method="entropy", progress=False)
    assert [t.float_layers for t in choice.trials] == [(), ("fc",)]
    assert choice.best.float_layers == ("fc",) and choice.within
    assert choice.float_reasons and choice.float_reasons[0].startswith("fc (Gemm): output error")
    assert choice.card_entry()["float_layers"] == ["fc"]
    quantized = {n.name for n in choice.qdq.graph.node if n.op_type == "QuantizeLinear"}
    assert quantized and not any(q.startswith("clip") for q in quantized)  # fc's input stays float


def test_outside_the_bound_is_written_marked_and_exits_3(tmp_path, tiny_ckpt, calib_dir, caplog, capsys,  # noqa: F811
                                                         monkeypatch):
    import export.int8_choice

    monkeypatch.setattr(export.int8_choice, "MAX_FLOAT_FRACTION", 0.01)  # one fallback try: the bound cannot hold
    out = tmp_path / "out"
    # one method (the auto search is test_entropy_clipping_outliers_is_not_chosen's): the float fallback
    argv = ["--checkpoint", tiny_ckpt, "--out", out, "--int8", "--calib-dir", calib_dir, "--calib-method", "minmax",
            "--int8-min-agreement", "1", "--int8-max-logit-error", "1e-9"]
    caplog.clear()
    with caplog.at_level(logging.INFO):
        rc = be.main([str(a) for a in argv])
    assert rc == be.INT8_LOSS_EXIT
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"--qat {out / 'tiny.int8.qdq.onnx'}" in err[0]  # the last resort, named
    assert "tiny.int8.qdq.onnx" in listing(out)
    q = read_card_from_onnx(out / "tiny.int8.qdq.onnx").quantization
    assert q["within_bound"] is False and q["min_agreement"] == 1
    assert "layers in float" in caplog.text and "OUTSIDE the bound" in caplog.text
    assert be.main([str(a) for a in argv + ["--accept-int8-loss", "--force"]]) == 0


@pytest.mark.parametrize("flags, message", [
    (["--int8-min-agreement", "1.5"], "--int8-min-agreement must be a fraction in [0, 1]"),
    (["--int8-max-logit-error", "nan"], "--int8-max-logit-error must be a number > 0"),
])
def test_bound_options_refused(tmp_path, tiny_ckpt, calib_dir, capsys, flags, message):  # noqa: F811
    rc = be.main(["--checkpoint", str(tiny_ckpt), "--out", str(tmp_path / "o"), "--int8", "--calib-dir",
                  str(calib_dir), *flags])
    assert rc == 2 and message in capsys.readouterr().err


def test_bound_needs_int8(tmp_path, tiny_ckpt, capsys):
    assert be.main(["--checkpoint", str(tiny_ckpt), "--out", str(tmp_path / "o"), "--accept-int8-loss"]) == 2
    assert "are for INT8: add --int8" in capsys.readouterr().err
