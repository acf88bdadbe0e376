"""The online step graph: state as graph I/O, parity with PyTorch over 2T steps, TensorRT check."""

import json

import numpy as np
import pytest
import torch

from runtime.step_graph import FRAME_INPUT, LOGITS_OUTPUT, STATE_OUT_SUFFIX
from export.stream_export import (export_online, main,
                                  run_step_onnx)
from export.trt_check import check_graph
from runtime.common.errors import ExportError
from tests.export.helpers import TINY, make_causal_checkpoint, make_checkpoint
from tsi.checkpoint import load_model
from tsi.model import create_model
from tsi.streaming import frame_logits, state_spec

T = TINY["frames"]


@pytest.fixture(scope="module")
def causal_ckpt(tmp_path_factory):
    return make_causal_checkpoint(tmp_path_factory.mktemp("causal") / "online.pt")[0]


@pytest.fixture(scope="module")
def exported(causal_ckpt, tmp_path_factory):
    out = tmp_path_factory.mktemp("online_out")
    return export_online(causal_ckpt, out, "m", fp16=True, plugin=True), out


def frames(n, seed=0):
    return np.random.default_rng(seed).standard_normal((n, 3, 64, 64)).astype(np.float32)


def test_graph_io_is_frame_plus_state_and_card_is_online(exported, causal_ckpt):
    import onnx

    from export.onnx_export import get_card

    written, out = exported
    model, _ = load_model(causal_ckpt)
    spec = state_spec(model)
    proto = onnx.load(str(written["fp32"]))
    shape = lambda vi: tuple(d.dim_value for d in vi.type.tensor_type.shape.dim)  # noqa: E731
    assert [(i.name, shape(i)) for i in proto.graph.input] == [(FRAME_INPUT, (1, 3, 64, 64)), *spec.items()]
    assert [(o.name, shape(o)) for o in proto.graph.output] == [
        (LOGITS_OUTPUT, (1, 5)), *((k + STATE_OUT_SUFFIX, v) for k, v in spec.items())]
    card = get_card(proto)
    assert card.mode == "online" and card.config["causal"] is True and card.precision == "fp32"
    assert json.loads((out / "m.online.json").read_text())["mode"] == "online"
    assert get_card(onnx.load(str(written["fp16"]))).precision == "fp16"


def test_onnx_step_matches_pytorch_over_2t_steps(exported, causal_ckpt):
    """onnxruntime on the exported step (BN folded, matmul attention) vs the PyTorch checkpoint's
    causal clip models: per-frame logits of a T-frame and a 2T-frame clip."""
    from export.parity import ort_session

    written, _ = exported
    model, _ = load_model(causal_ckpt)
    x = frames(2 * T)
    got = run_step_onnx(ort_session(written["fp32"]), x)
    longer = create_model("tsi_r18", causal=True, zero_init_residual=False, **{**TINY, "frames": 2 * T}).eval()
    longer.load_state_dict(model.state_dict())
    with torch.no_grad():
        ref = frame_logits(longer, torch.from_numpy(x)[None])[0].numpy()
        ref_t = frame_logits(model, torch.from_numpy(x[:T])[None])[0].numpy()
    np.testing.assert_allclose(ref[:T], ref_t, atol=1e-5)
    assert np.abs(ref).max() > 1e-2
    np.testing.assert_allclose(got, ref, atol=1e-4 * np.ptp(ref) + 1e-6, rtol=0)
    # the state matters: the same frames from a fresh state at step T give other logits
    fresh = run_step_onnx(ort_session(written["fp32"]), x[T:])
    assert np.abs(fresh[0] - got[T]).max() > 1e-4


def test_every_graph_passes_the_tensorrt_check_and_variants_run(exported):
    import onnx

    from export.parity import compare_logits, ort_session
    from export.plugin_graph import PLUGIN_OP

    written, _ = exported
    for kind in ("fp32", "fp32.plugin", "fp16"):
        assert check_graph(onnx.load(str(written[kind]))) == [], kind
    plugin_nodes = [n for n in onnx.load(str(written["fp32.plugin"])).graph.node if n.op_type == PLUGIN_OP]
    assert len(plugin_nodes) == 8  # one per SME block, one frame pair each
    x = frames(2 * T, seed=1)
    ref = run_step_onnx(ort_session(written["fp32"]), x)
    agreement = compare_logits(ref, run_step_onnx(ort_session(written["fp16"]), x))
    assert agreement.rel < 2e-2 and agreement.max_abs > 0


def test_refusals(tmp_path, exported, causal_ckpt):
    _, out = exported
    with pytest.raises(ExportError, match="would overwrite"):
        export_online(causal_ckpt, out, "m")
    offline = make_checkpoint(tmp_path / "offline.pt")
    with pytest.raises(ExportError, match="causal"):
        export_online(offline, tmp_path / "o", "x")
    assert not (tmp_path / "o" / "x.online.onnx").exists()
    assert main(["--checkpoint", str(offline), "--out", str(tmp_path / "o")]) == 2
    assert main(["--checkpoint", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "o")]) == 2


def test_int8_qdq_step_graph_calibrated_on_streams(tmp_path, causal_ckpt):
    import onnx

    from calib.qdq import verify_qdq
    from export.onnx_export import get_card
    from export.parity import compare_logits, ort_session
    from export.plugin_graph import attention_node_names
    from export.stream_export import step_feeds
    from tests.export.helpers import write_video_folder

    videos = write_video_folder(tmp_path / "videos", per_class=4)
    written = export_online(causal_ckpt, tmp_path / "out", "m", int8=True, calib_dir=videos,
                            calib_method="minmax", calib_clips=8)
    fp32, int8 = onnx.load(str(written["fp32"])), onnx.load(str(written["int8"]))
    assert check_graph(int8) == [] and verify_qdq(int8, attention_node_names(fp32)) == []
    assert sum(n.op_type == "QuantizeLinear" for n in int8.graph.node) > 50
    assert [i.name for i in int8.graph.input] == [i.name for i in fp32.graph.input]
    assert get_card(int8).precision == "int8" and get_card(int8).mode == "online"
    x = frames(2 * T, seed=2)
    agreement = compare_logits(run_step_onnx(ort_session(written["fp32"]), x),
                               run_step_onnx(ort_session(written["int8"]), x))
    assert 0 < agreement.rel < 0.5, agreement
    # the feeds stream each clip from the zero state: T steps per clip, state zero at each clip start
    clips = np.random.default_rng(0).standard_normal((2, T, 3, 64, 64)).astype(np.float32)
    feeds = step_feeds(written["fp32"], clips)
    assert len(feeds) == 2 * T
    assert float(feeds[0]["primed"].max()) == 0 and float(feeds[T]["primed"].max()) == 0
    assert float(feeds[1]["primed"].min()) == 1
    with pytest.raises(ExportError, match="calib-dir"):
        export_online(causal_ckpt, tmp_path / "out2", "m", int8=True)


def test_staged_like_the_clip_build(tmp_path, exported, causal_ckpt, monkeypatch, caplog):
    """The online graphs are built in a staging folder inside --out and moved in only when every one
    is made and checked: a failure at the last stage leaves --out as it was; success leaves no
    staging folder, and the report lists the files and the engine commands."""
    import logging

    import export.pipeline

    _, out = exported
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "staging left behind"
    target = tmp_path / "new" / "out"

    def fail(graphs, dla):
        assert {p.parent for p in graphs.values()} != {target}  # still in the staging folder
        raise ExportError("injected failure")

    monkeypatch.setattr(export.pipeline, "check_graphs", fail)
    with pytest.raises(ExportError, match="injected"):
        export_online(causal_ckpt, target, "m", fp16=True)
    assert not (tmp_path / "new").exists()
    monkeypatch.undo()
    with caplog.at_level(logging.INFO):
        written = export_online(causal_ckpt, target, "m", fp16=True)
    assert sorted(p.name for p in target.iterdir()) == ["m.online.fp16.onnx", "m.online.json", "m.online.onnx"]
    assert written["fp16"] == target / "m.online.fp16.onnx"
    assert f"--onnx {target}/m.online.fp16.onnx --out {target} --name m.online" in caplog.text
    assert "FP16 vs FP32 step" in caplog.text and "[TensorRT 10.3 compatibility] done" in caplog.text
