"""Bounded online memory (``runtime.online``, ``tsi-live --online-memory M``): K tracks per phase
that forget in turn, each output that of a stream restarted at the last reset at least T steps
back, so it has seen T to M frames; batched over streams and tracks in one inference; refusals in
one line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from runtime.backends.onnxruntime_step import OnnxRuntimeStep
from runtime.frames import Frame
from runtime.online import OnlineRecognizer, OnlineWindow, StepBatch


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    """A dynamic-batch step graph of the tiny causal model (T = 4, frame step 4)."""
    from export.friendly import export_friendly_model
    from export.stream_export import export_step_onnx
    from tests.export.helpers import make_causal_checkpoint

    tmp = tmp_path_factory.mktemp("online_memory")
    ckpt, _ = make_causal_checkpoint(tmp / "m.pt")
    friendly, card = export_friendly_model(ckpt)
    return export_step_onnx(friendly, card, tmp / "m.online.onnx", source_sha256="t", dynamic_batch=True)


def images(n, seed):
    return list(np.random.default_rng(seed).integers(0, 256, (n, 72, 88, 3), dtype=np.uint8))


def reported_reset(s: int, t: int, memory: int) -> int:
    """The step the reported state restarted at, at step s (0-based): one track is reset every
    M - T + 1 steps, and the output is the youngest with T frames."""
    spacing = memory - t + 1
    return (s - t + 1) // spacing * spacing


@pytest.mark.parametrize("memory, tracks", [(4, 4), (6, 2), (8, 2), ("auto", 2), (5, 3)])  # T = 4; auto: 6
def test_each_output_is_the_stream_restarted_at_the_last_reset_t_steps_back(graph, memory, tracks):
    step = OnnxRuntimeStep(graph)
    t, fs = step.card.frames, step.card.frame_step
    bound = 6 if memory == "auto" else memory
    frames = images(4 * bound + 3, seed=1)
    bounded = OnlineRecognizer(step, memory=memory)
    assert (bounded.memory, len(bounded.phases[0].tracks)) == (bound, tracks)
    outs = [bounded.push(f, index=i * fs) for i, f in enumerate(frames)]
    assert bounded.inferences == tracks * len(frames)  # every track steps every sampled frame
    unbounded = OnlineRecognizer(step)
    plain = [unbounded.push(f, index=i * fs) for i, f in enumerate(frames)]
    far = 0.0
    for s, got in enumerate(outs):
        if s < t - 1:
            assert got is None
            continue
        r = reported_reset(s, t, bound)
        assert t <= s - r + 1 <= bound  # the reported state has seen T to M frames
        fresh = OnlineRecognizer(step)
        ref = [fresh.push(f, index=i * fs) for i, f in enumerate(frames[r:s + 1])][-1]
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-6)
        far = max(far, float(np.abs(got - plain[s]).max()))
    assert far > 1e-3  # forgetting changed the outputs once the unbounded state reached further back


def test_streams_with_memory_step_in_one_inference_equal_to_each_alone(graph):
    step = OnnxRuntimeStep(graph)
    fs, memory = step.card.frame_step, 5  # T = 4: 3 tracks
    calls = []
    real = step.session.run
    step.session.run = lambda out, feeds, *a, **k: calls.append(len(feeds["frame"])) or real(out, feeds, *a, **k)
    windows = [OnlineWindow(step, memory=memory) for _ in range(3)]
    batch = StepBatch(step, len(windows))
    streams = [images(20, seed=10 + i) for i in range(3)]
    got = [[] for _ in windows]
    for k in range(20):
        for w, s in zip(windows, streams):
            assert w.push(Frame(k * fs, 0.0, k * fs / 30.0, s[k])).due
        logits, carried = batch(windows)
        for i, w in enumerate(windows):
            got[i].append(w.scores(logits[i], carried[i]))
    assert calls == [9] * 20  # 3 streams x 3 tracks, one inference per tick
    calls.clear()
    for s, g in zip(streams, got):
        alone = OnlineRecognizer(step, memory=memory)
        for k, f in enumerate(s):
            want = alone.push(f, index=k * fs)
            if want is None:
                assert g[k] is None
            else:
                np.testing.assert_allclose(g[k], want, rtol=0, atol=1e-5)
    assert calls == [3] * 60  # alone: the three tracks of one stream in one inference


@pytest.mark.parametrize("memory", [3, 0, -2, 4.0, True, "12"])  # below T = 4; not a whole number
def test_refuses_a_memory_no_track_can_report_from(graph, memory):
    with pytest.raises(ValueError, match=f"online memory must be 'auto', none or a number of sampled frames >= T = 4 "
                                         f".*got {memory!r}"):
        OnlineRecognizer(OnnxRuntimeStep(graph), memory=memory)


def test_tsi_live_online_memory_runs_and_refuses_a_clip_model(graph, tmp_path, caplog):
    from runtime.live import main
    from tests.export.helpers import write_video

    video = write_video(tmp_path / "v.mp4", frames=48)
    argv = ["--source", str(video), "--headless", "--no-realtime", "--threshold", "0", "--out-jsonl"]
    for i, (flag, tracks) in enumerate([([], 2), (["--online-memory", "none"], 1), (["--online-memory", "4"], 4)]):
        out = tmp_path / f"a{i}.jsonl"
        caplog.clear()
        assert main(["--model", str(graph), *argv, str(out), *flag]) == 0
        summary = json.loads(out.read_text().splitlines()[-1])["summary"]
        assert summary["inferences"] == 48 // 4  # an inference (of the phase's tracks) every frame step of 4
        assert ("forgetting tracks" not in caplog.text if tracks == 1 else
                f"memory {6 if not flag else 4} sampled frames: {tracks} forgetting tracks per phase" in caplog.text)
    assert main(["--model", str(graph), *argv, str(tmp_path / "b.jsonl"), "--online-memory", "3"]) == 2
    assert "online memory must be 'auto', none or a number of sampled frames >= T = 4" in caplog.text
    with pytest.raises(SystemExit) as e:
        main(["--model", str(graph), *argv, str(tmp_path / "b.jsonl"), "--online-memory", "lots"])
    assert e.value.code == 2
    from runtime.assets import DEMO_ONNX
    for flag in ("16", "none"):
        assert main(["--model", str(DEMO_ONNX), *argv, str(tmp_path / "c.jsonl"), "--online-memory", flag]) == 2
        assert "an online memory is for an online (step) model; this card's mode is 'clip'" in caplog.text
