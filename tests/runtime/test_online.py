"""The online runtime on an exported step graph: the same probabilities as the causal clip model
over the last T sampled frames, phases for stride < frame step, reset on a stream gap."""

import numpy as np
import pytest
import torch

from runtime.card import CardError
from runtime.online import OnlineRecognizer, OnlineStep
from runtime.preprocess import FramePreprocessor
from runtime.smoothing import softmax

T = 4  # TINY: 4 frames, span 16 -> frame step 4, 64x64 input


@pytest.fixture(scope="module")
def step_graph(tmp_path_factory):
    from export.stream_export import export_online
    from tests.export.helpers import LABELS, TINY
    from tests.tsi.test_causal import randomize
    from tsi.checkpoint import make_card, save_checkpoint
    from tsi.model import create_model

    torch.manual_seed(0)
    model = randomize(create_model("tsi_r18", causal=True, zero_init_residual=False, **TINY))
    tmp = tmp_path_factory.mktemp("online_rt")
    ckpt = save_checkpoint(tmp / "m.pt", model, make_card(model.cfg, list(LABELS), span_frames=16))
    return export_online(ckpt, tmp, "m")["fp32"], model


def video(n, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (72, 96, 3), dtype=np.uint8) for _ in range(n)]


def clip_probs(model, card, frames_bgr):
    pre = FramePreprocessor(card)
    clip = torch.from_numpy(np.stack([pre(f) for f in frames_bgr]))[None]
    with torch.no_grad():
        return softmax(model(clip)[0].numpy())


def test_first_output_equals_the_causal_clip_model(step_graph):
    path, model = step_graph
    step = OnlineStep(path)
    assert step.card.frame_step == 4
    rec = OnlineRecognizer(step)  # stride = frame step: one phase
    frames = video(16)
    outs = [rec.push(f, i) for i, f in enumerate(frames)]
    assert rec.inferences == 4 and all(o is None for o in outs[:12])
    # frames 0, 4, 8, 12 are the T sampled frames of the first output
    np.testing.assert_allclose(outs[12], clip_probs(model, step.card, frames[0:16:4]), atol=1e-5)


def test_phases_give_one_output_per_stride_and_each_equals_its_own_stream(step_graph):
    path, _ = step_graph
    step = OnlineStep(path)
    frames = video(24, seed=1)
    rec = OnlineRecognizer(step, stride=1)  # 4 phases, one inference per frame
    outs = [rec.push(f, i) for i, f in enumerate(frames)]
    assert rec.inferences == 24 and len(rec.phases) == 4
    assert all(o is None for o in outs[:12]) and all(o is not None for o in outs[12:])
    # phase 1 sees frames 1, 5, 9, ...: the same as a one-phase recognizer fed from frame 1
    single = OnlineRecognizer(step)
    ref = [single.push(f, i) for i, f in enumerate(frames[1:])]
    np.testing.assert_allclose(outs[13], ref[12], atol=1e-6)
    np.testing.assert_allclose(outs[17], ref[16], atol=1e-6)
    # after T+1 frames of a phase the average covers its last T logits only, from a longer state
    assert not np.allclose(outs[17], outs[13])
    with pytest.raises(ValueError, match="divide"):
        OnlineRecognizer(step, stride=3)


def test_gap_resets_the_state(step_graph):
    path, _ = step_graph
    step = OnlineStep(path)
    frames = video(40, seed=2)
    rec = OnlineRecognizer(step)
    for i in range(20):
        rec.push(frames[i], i)
    # the source jumps from frame 19 to 30: everything restarts at 30
    outs = [rec.push(frames[i], i) for i in range(30, 40)] + [rec.push(frames[39], 40)]
    assert rec.resets == 1
    fresh = OnlineRecognizer(step)
    ref = [fresh.push(frames[i], i - 30) for i in range(30, 40)] + [fresh.push(frames[39], 10)]
    for a, b in zip(outs, ref):
        assert (a is None and b is None) or np.allclose(a, b, atol=1e-6)
    # going backwards (a seek) resets too
    rec.push(frames[0], 5)
    assert rec.resets == 2


def test_clip_model_is_refused(tmp_path):
    from export.onnx_export import export_onnx
    from export.friendly import export_friendly_model
    from tests.export.helpers import make_checkpoint

    ckpt = make_checkpoint(tmp_path / "c.pt")
    model, card = export_friendly_model(ckpt)
    onnx_path = export_onnx(model, card, tmp_path / "c.onnx", source_sha256="x")
    with pytest.raises(CardError, match="mode='clip'"):
        OnlineStep(onnx_path)


def test_cli_on_a_file_writes_events_and_summary(step_graph, tmp_path):
    import json

    from runtime.online import main
    from tests.export.helpers import write_video

    path, _ = step_graph
    video = write_video(tmp_path / "v.mp4", frames=24)
    out = tmp_path / "actions.jsonl"
    assert main(["--model", str(path), "--source", str(video), "--no-realtime", "--stride", "2",
                 "--threshold", "0.0", "--out-jsonl", str(out)]) == 0
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    summary = lines[-1]["summary"]
    assert summary["frames"] == 24 and summary["inferences"] == 12 and summary["resets"] == 0
    assert summary["events"] == len(lines) - 1 >= 1  # threshold 0: some label is always "recognised"
    assert {"label", "score", "start_frame", "end_frame"} <= set(lines[0])
    assert main(["--model", str(tmp_path / "missing.onnx"), "--source", str(video)]) == 2
    assert main(["--model", str(path), "--source", str(video), "--stride", "3"]) == 2
