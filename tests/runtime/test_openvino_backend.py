"""The OpenVINO backend against onnxruntime on the same graphs: the demo model's logits, tsi-live's
events on a coloured clip, a step graph's outputs, the bad-model errors; the ``.xml`` IR route with
its card beside it; the INT8 (TensorRT Q/DQ) graph warning."""

from __future__ import annotations

import json
import logging
import sys

import numpy as np
import pytest

from runtime.assets import DEMO_ONNX
from runtime.backends import BackendError, backend_for_path, open_backend, open_model
from runtime.card import CardError, card_path_for
from runtime.live import main
from tests.runtime.helpers import make_card, make_onnx, make_step_onnx, reference_logits, write_video

ov = pytest.importorskip("openvino", reason='OpenVINO is not installed (pip install ".[openvino]")')

RNG = np.random.default_rng(0)


def clips(card, n=1, count=3):
    return [RNG.standard_normal((n,) + card.input_shape).astype(np.float32) for _ in range(count)]


def test_demo_model_logits_equal_onnxruntime():
    with open_backend(DEMO_ONNX, "openvino", threads=1) as vino, open_backend(DEMO_ONNX, threads=1) as ort:
        assert (vino.name, ort.name) == ("openvino", "onnxruntime") and vino.card == ort.card
        assert vino.card_source == ort.card_source and vino.fixed_batch == ort.fixed_batch == 1
        for x in clips(vino.card):
            np.testing.assert_allclose(vino.infer(x), ort.infer(x), atol=1e-4, rtol=0)


def test_dynamic_batch_clip_checks_and_the_throughput_hint(tmp_path):
    card = make_card()
    with open_backend(make_onnx(tmp_path / "m.onnx", card=card), "openvino") as vino:
        assert vino.fixed_batch is None
        x = clips(card, n=5, count=1)[0]
        out = vino.infer(x)
        assert out.dtype == np.float32 and out.shape == (5, 3)
        np.testing.assert_allclose(out, reference_logits(x), atol=1e-5)
        assert not np.shares_memory(out, vino.infer(x))  # a copy, not the request's buffer
        with pytest.raises(ValueError, match="float32"):
            vino.infer(x.astype(np.float64))
    from runtime.backends.openvino_backend import OpenVINOBackend

    with OpenVINOBackend(hint="throughput").load(tmp_path / "m.onnx") as many:
        assert many.compiled.get_property("PERFORMANCE_HINT") == "THROUGHPUT"
        np.testing.assert_allclose(many.infer(x), reference_logits(x), atol=1e-5)
    with pytest.raises(BackendError, match="unknown OpenVINO performance hint 'fast'"):
        OpenVINOBackend(hint="fast")


def test_tsi_live_events_equal_onnxruntime(tmp_path, caplog):
    model = make_onnx(tmp_path / "colour.onnx", card=make_card(frames=4, size=16, span=8))
    video = write_video(tmp_path / "v.mp4", ["red"] * 16 + ["green"] * 16 + ["blue"] * 16)
    lines = {}
    for backend in ("onnxruntime", "openvino"):
        out = tmp_path / f"{backend}.jsonl"
        caplog.clear()
        assert main(["--model", str(model), "--backend", backend, "--source", str(video), "--headless",
                     "--no-realtime", "--threads", "1", "--out-jsonl", str(out)]) == 0
        assert f"({backend}, " in caplog.text  # the model line names the backend that ran
        lines[backend] = [json.loads(line) for line in out.read_text().splitlines()]
    ort, vino = lines["onnxruntime"], lines["openvino"]
    assert [e["label"] for e in ort[:-1]] == ["red", "green", "blue"]
    for a, b in zip(ort[:-1], vino[:-1], strict=True):
        assert {k: v for k, v in a.items() if k != "score"} == {k: v for k, v in b.items() if k != "score"}
        assert a["score"] == pytest.approx(b["score"], abs=1e-4)
    assert ort[-1]["summary"]["inferences"] == vino[-1]["summary"]["inferences"]


def errors(path, **kw):
    """The error each backend gives for ``path`` (type, message)."""
    out = []
    for backend in ("onnxruntime", "openvino"):
        with pytest.raises(Exception) as info:
            open_backend(path, backend, **kw)
        assert "\n" not in str(info.value)
        out.append((type(info.value), str(info.value)))
    return out


def test_bad_models_give_the_onnxruntime_backends_errors(tmp_path):
    missing = errors(tmp_path / "nope.onnx")
    assert missing[0] == missing[1] == (FileNotFoundError, f"model file not found: {tmp_path / 'nope.onnx'}")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a protobuf")
    (ort_type, ort_msg), (vino_type, vino_msg) = errors(bad)
    assert ort_type is vino_type is BackendError
    assert ort_msg.startswith(f"onnxruntime cannot load {bad}: ") and vino_msg.startswith(f"OpenVINO cannot load {bad}: ")
    nocard = errors(make_onnx(tmp_path / "nocard.onnx"))
    assert nocard[0] == nocard[1] and nocard[0][0] is CardError and "no model card" in nocard[0][1]
    model = make_onnx(tmp_path / "m.onnx", frames=4)
    make_card(frames=8, span=16).save(card_path_for(model))
    mismatch = errors(model)
    assert mismatch[0] == mismatch[1] and "frames T: model 4, card 8" in mismatch[0][1]


def test_an_ir_opens_with_the_card_beside_it(tmp_path):
    card = make_card()
    onnx_path = make_onnx(tmp_path / "plain.onnx")  # no card inside
    xml = tmp_path / "m.xml"
    ov.save_model(ov.Core().read_model(str(onnx_path)), str(xml))
    assert backend_for_path(xml) == "openvino"
    with pytest.raises(CardError, match=f"no model card for {xml}: looked in {card_path_for(xml)}"):
        open_backend(xml)
    card.save(card_path_for(xml))
    with open_backend(xml) as vino:
        assert vino.name == "openvino" and vino.card == card and vino.card_source == str(card_path_for(xml))
        x = clips(card, count=1)[0]
        np.testing.assert_allclose(vino.infer(x), reference_logits(x), atol=1e-5)
    with pytest.raises(BackendError, match=r"backend 'onnxruntime' cannot read m\.xml: .xml files take the 'openvino'"):
        open_backend(xml, "onnxruntime")
    with pytest.raises(BackendError, match="--providers applies to the onnxruntime backend only"):
        open_backend(xml, providers=["cpu"])


def test_an_int8_graph_warns_once_that_it_is_meant_for_tensorrt(tmp_path, caplog):
    model = make_onnx(tmp_path / "m.int8.qdq.onnx", card=make_card(precision="int8"))
    for backend in ("openvino", "onnxruntime"):
        caplog.clear()
        with caplog.at_level(logging.WARNING), open_backend(model, backend) as b:
            assert b.card.precision == "int8"
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "meant for TensorRT" in warnings[0], warnings


def test_a_step_graph_runs_as_in_onnxruntime(tmp_path):
    from runtime.backends.openvino_step import OpenVINOStep

    card = make_card(mode="online")
    path = make_step_onnx(tmp_path / "m.online.onnx", card)
    vino, ort = open_model(path, "openvino"), open_model(path)
    assert isinstance(vino, OpenVINOStep) and vino.state_spec == ort.state_spec
    sv, so = vino.new_state(), ort.new_state()
    for _ in range(3):
        frame = RNG.standard_normal((3, 16, 16)).astype(np.float32)
        (lv, sv), (lo, so) = vino.run(frame, sv), ort.run(frame, so)
        np.testing.assert_allclose(lv, lo, atol=1e-5)
        np.testing.assert_allclose(sv["h"], so["h"], atol=1e-5)
    assert np.abs(vino.reset_state(sv)["h"]).max() == 0
    vino.close()


def test_without_openvino_the_error_says_what_to_install(tmp_path, monkeypatch):
    from runtime.backends import openvino_backend

    model = make_onnx(tmp_path / "m.onnx", card=make_card())
    openvino_backend._core.cache_clear()
    monkeypatch.setitem(sys.modules, "openvino", None)  # import fails
    try:
        with pytest.raises(BackendError, match=r'needs OpenVINO: pip install "\.\[openvino\]"'):
            open_backend(model, "openvino")
    finally:
        openvino_backend._core.cache_clear()
