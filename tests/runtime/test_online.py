"""The online runtime on an exported step graph: the same probabilities as the causal clip model
over the last T sampled frames, phases for stride < frame step, reset on a stream gap; tsi-live
choosing it from the card; the TensorRT step engine (doubles) against onnxruntime."""

import numpy as np
import pytest
import torch

from runtime.card import CardError
from runtime.backends.onnxruntime_step import OnnxRuntimeStep
from runtime.online import OnlineRecognizer
from runtime.preprocess import FramePreprocessor
from runtime.smoothing import softmax

T = 4  # TINY: 4 frames, span 16 -> frame step 4, 64x64 input


@pytest.fixture(scope="module")
def step_graph(tmp_path_factory):
    from export.stream_export import export_online
    from tests.export.helpers import make_causal_checkpoint

    tmp = tmp_path_factory.mktemp("online_rt")
    ckpt, model = make_causal_checkpoint(tmp / "m.pt")
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
    step = OnnxRuntimeStep(path)
    assert step.card.frame_step == 4
    rec = OnlineRecognizer(step)  # stride = frame step: one phase
    frames = video(16)
    outs = [rec.push(f, i) for i, f in enumerate(frames)]
    assert rec.inferences == 4 and all(o is None for o in outs[:12])
    # frames 0, 4, 8, 12 are the T sampled frames of the first output
    np.testing.assert_allclose(outs[12], clip_probs(model, step.card, frames[0:16:4]), atol=1e-5)


def test_phases_give_one_output_per_stride_and_each_equals_its_own_stream(step_graph):
    path, _ = step_graph
    step = OnnxRuntimeStep(path)
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
    step = OnnxRuntimeStep(path)
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
        OnnxRuntimeStep(onnx_path)


def live_argv(model, video, out, *extra):
    return ["--model", str(model), "--source", str(video), "--headless", "--no-realtime", "--threshold", "0.0",
            "--out-jsonl", str(out), *extra]


def test_tsi_live_runs_an_online_model_from_its_card(step_graph, tmp_path, caplog):
    import json
    import logging

    from runtime.live import main
    from tests.export.helpers import write_video

    path, _ = step_graph
    video = write_video(tmp_path / "v.mp4", frames=24)
    out = tmp_path / "actions.jsonl"
    with caplog.at_level(logging.INFO, logger="runtime"):
        assert main(live_argv(path, video, out, "--stride", "2")) == 0
    assert "online: one step per sampled frame" in caplog.text and "2 phase(s) per stream" in caplog.text
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    summary = lines[-1]["summary"]
    # 24 frames at stride 2: 12 steps (2 phases of 6); each phase scores from its 4th frame: 3 + 3
    assert summary["frames"] == 24 and summary["inferences"] == 12 and summary["gaps"] == 0
    assert not summary["padded"] and summary["events"] == len(lines) - 1 >= 1
    assert {"label", "score", "start_frame", "end_frame"} <= set(lines[0])
    assert set(summary["latency_ms"]) >= {"preprocess", "inference", "capture", "end_to_end"}
    assert summary["latency_ms"]["end_to_end"]["n"] == 6
    # the default stride online is the card's frame step (one phase); a stride that does not divide it
    # and a missing model are one-line errors
    assert main(live_argv(path, video, tmp_path / "b.jsonl")) == 0
    assert json.loads((tmp_path / "b.jsonl").read_text().splitlines()[-1])["summary"]["inferences"] == 6
    assert main(live_argv(path, video, tmp_path / "c.jsonl", "--stride", "3")) == 2
    assert "stride must divide the card's frame step 4" in caplog.text
    assert main(live_argv(tmp_path / "missing.onnx", video, tmp_path / "d.jsonl")) == 2


def test_live_recognizer_online_scores_equal_the_causal_clip_model(step_graph):
    """Through LiveRecognizer (no smoothing: mean of 1), the first score is the causal clip model's
    over the first T sampled frames; a gap resets the state and the next score starts over."""
    from runtime.frames import Frame, Gap
    from runtime.online import OnlineWindow
    from runtime.recognizer import LiveRecognizer

    path, model = step_graph
    step = OnnxRuntimeStep(path)
    rec = LiveRecognizer(step, smoothing="mean", smooth_n=1, threshold=1.0)
    assert isinstance(rec.window, OnlineWindow) and rec.stride == 4
    frames = video(32, seed=3)
    rec.process([Frame(i, 0.0, i / 30, f) for i, f in enumerate(frames[:16])])
    assert rec.inferences == 4 and rec.scored == 1
    np.testing.assert_allclose(rec.scores, clip_probs(model, step.card, frames[0:16:4]), atol=1e-5)
    gap = Gap("stalled", 0.5, 0.6, 1)  # an outage the capture saw; the indices go on (16, 17, ...)
    after = [Frame(16 + i, 0.0, 0.0, f, gap=gap if i == 0 else None) for i, f in enumerate(frames[16:32])]
    rec.process(after)
    assert rec.gaps == 1 and rec.window.online.resets == 1 and rec.scored == 2
    np.testing.assert_allclose(rec.scores, clip_probs(model, step.card, frames[16:32:4]), atol=1e-5)


def test_a_reset_while_a_step_is_due_drops_it(step_graph):
    """The window's r key can reset a stream whose step waits for its batch (offline lock-step):
    the step is dropped with the state it would have advanced, and the stream starts again."""
    from runtime.frames import Frame
    from runtime.recognizer import LiveRecognizer

    rec = LiveRecognizer(OnnxRuntimeStep(step_graph[0]), smoothing="mean", smooth_n=1, threshold=1.0)
    frames = [Frame(i, 0.0, i / 30, f) for i, f in enumerate(video(17, seed=4))]
    rec.feed(frames[:1])
    assert rec.step(latest_only=False) and rec.due
    rec.reset()
    assert not rec.due and not rec.step(latest_only=False)
    rec.process(frames[1:])  # frames 1..16: 4 steps from frame 4 on (a fresh origin at 1 samples 1, 5, ...)
    assert rec.inferences == 4 and rec.scored == 1


@pytest.mark.parametrize("pad", [True, False])
def test_a_stream_shorter_than_t_sampled_frames(step_graph, tmp_path, pad):
    import json

    from runtime.live import main
    from tests.export.helpers import write_video

    path, _ = step_graph
    video = write_video(tmp_path / "short.mp4", frames=9)  # frames 0, 4, 8 sampled: 3 < T = 4
    out = tmp_path / "s.jsonl"
    assert main(live_argv(path, video, out, *([] if pad else ["--no-pad-short"]))) == 0
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert lines[-1]["summary"]["padded"] is pad and lines[-1]["summary"]["inferences"] == 3
    assert len(lines) == (2 if pad else 1)
    if pad:
        assert lines[0]["padded"] is True and lines[0]["end_frame"] == 8


def test_clip_backends_refuse_a_step_model_and_open_model_dispatches(step_graph, monkeypatch):
    import runtime.backends.onnxruntime_backend as ortb
    from runtime.backends import OnlineModelError, open_backend, open_model
    from runtime.step_graph import StepModel

    path, _ = step_graph
    with pytest.raises(OnlineModelError, match="mode 'online'"):
        open_backend(path)
    opened = []
    real = ortb.open_session
    monkeypatch.setattr(ortb, "open_session", lambda *a, **k: opened.append(real(*a, **k)) or opened[-1])
    with open_model(path) as m:
        assert isinstance(m, StepModel) and m.name == "onnxruntime"
        # the graph is opened once: the session the clip backend opened to read the card is the step's
        assert len(opened) == 1 and m.session is opened[0]
    with pytest.raises(Exception, match="--plugin and --cuda-graph apply to the tensorrt backend only"):
        open_model(path, cuda_graph=True)


# -- the TensorRT step engine (TensorRT double + cudart stand-in; the double's engine runs the step
#    graph in onnxruntime on the bound buffers) ----------------------------------------------------
@pytest.fixture
def step_engine(step_graph, tmp_path, monkeypatch, request):
    from export.build_engine import main as build_main
    from tests import trt_double
    from tests.runtime.fake_cudart import CudaRt

    cudart = CudaRt()
    world = trt_double.World()
    trt = trt_double.install(monkeypatch, request.param, world, cudart=cudart)
    path, _ = step_graph
    assert build_main(["--onnx", str(path), "--out", str(tmp_path / "eng")]) == 0
    engine = tmp_path / "eng" / "m.online.fp32.engine"  # the stem keeps .online: apart from clip engines
    assert engine.is_file() and (tmp_path / "eng" / "m.online.fp32.json").is_file()
    return engine, trt, cudart, world


@pytest.mark.parametrize("step_engine", ["10.3", "11.1"], indirect=True)
@pytest.mark.parametrize("cuda_graph", [False, True])
def test_tensorrt_step_matches_onnxruntime_with_the_state_on_the_gpu(step_graph, step_engine, cuda_graph):
    from runtime.backends.tensorrt_step import TensorRTStep
    from runtime.backends import open_model

    engine, trt, cudart, world = step_engine
    path, _ = step_graph
    ref_step = OnnxRuntimeStep(path)
    trt_step = open_model(engine, cuda_graph=cuda_graph)
    assert isinstance(trt_step, TensorRTStep) and trt_step.state_spec == ref_step.state_spec
    frames = video(2 * 4 * 4 + 8, seed=5)  # 2T samples per phase at stride 1, then a gap
    ref, got = OnlineRecognizer(ref_step, stride=1), OnlineRecognizer(trt_step, stride=1)
    ctx = world.engines[-1]._values["_contexts"][0]
    for i, f in enumerate(frames):
        index = i if i < 32 else i + 10  # frames 32.. come after a gap: both reset
        cudart.ops.clear()
        a, b = ref.push(f, index), got.push(f, index)
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(b, a, atol=1e-6)
        # per step only the frame goes in and the logits come out: the state never leaves the GPU;
        # the reset zeroes each phase's state where it is (memset, then sync)
        ops, reset = cudart.ops[-4:], cudart.ops[:-4]
        assert ops == ["h2d", "graph" if cuda_graph else "execute", "d2h", "sync"], (i, cudart.ops)
        n_state = len(trt_step.state_spec)
        assert reset == ((["memset"] * n_state + ["sync"]) * 4 if i == 32 else []), (i, cudart.ops)
    assert got.resets == ref.resets == 1 and got.inferences == 40
    if cuda_graph:  # one graph per (phase state, buffer set it reads); one warm-up run before the first capture
        assert len(trt_step._graphs) == 4 * 2 and ctx._values["_executed"] == 1 + 8
    trt_step.close()
    assert cudart.buffers == {}  # frame, logits and both buffer sets of every state freed
    trt_step.close()


@pytest.mark.parametrize("step_engine", ["11.1"], indirect=True)
def test_tensorrt_step_with_a_bounded_memory_matches_onnxruntime(step_graph, step_engine):
    """--online-memory on the GPU state: two tracks per phase, each with its own buffer sets, reset
    in turn; the outputs are onnxruntime's with the same memory, and every buffer is freed."""
    from runtime.backends import open_model

    engine, _, cudart, _ = step_engine
    path, _ = step_graph
    ref = OnlineRecognizer(OnnxRuntimeStep(path), memory=8)
    trt_step = open_model(engine)
    got = OnlineRecognizer(trt_step, memory=8)
    for i, f in enumerate(video(3 * 8 * 4, seed=6)):  # 3 memories of sampled frames at the frame step 4
        a, b = ref.push(f, i), got.push(f, i)
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(b, a, atol=1e-6)
    assert got.inferences == ref.inferences == 2 * 24
    trt_step.close()
    assert cudart.buffers == {}


@pytest.mark.parametrize("step_engine", ["10.3"], indirect=True)
def test_tensorrt_step_refuses_a_clip_engine_card_and_a_mismatched_card(step_engine, tmp_path):
    from runtime.backends.tensorrt_step import TensorRTStep
    from runtime.card import ModelCard, card_path_for

    engine, *_ = step_engine
    card = ModelCard.load(card_path_for(engine))
    with pytest.raises(CardError, match="mode='clip'"):
        TensorRTStep().load(engine, card.replace(mode="clip"))
    with pytest.raises(CardError, match=r"output 'logits' must be \[1, 7\]"):
        TensorRTStep().load(engine, card.replace(labels=[f"c{i}" for i in range(7)]))


def test_build_engine_builds_a_step_graph_as_it_is(step_graph, tmp_path, capsys):
    """Without TensorRT: the step graph passes the compatibility check and the command to finish on
    the target is printed; deriving FP16 / INT8 from it is refused (export.stream_export does it)."""
    from export.build_engine import main as build_main

    path, _ = step_graph
    assert build_main(["--onnx", str(path), "--out", str(tmp_path / "a")]) == 0
    assert build_main(["--onnx", str(path), "--fp16", "--out", str(tmp_path / "b")]) == 2
    assert "online step graph (fp32): its FP16 and INT8 variants come from python -m export.stream_export" \
        in capsys.readouterr().err
    assert not (tmp_path / "b").exists()
