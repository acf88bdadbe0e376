"""Bounded online memory (``runtime.online``, ``tsi-live --online-memory M``): two tracks per phase
that forget in turn, each output that of a stream restarted at its track's last reset; batched over
streams and tracks in one inference; refusals in one line."""

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


def older_reset(s: int, memory: int) -> int:
    """The step at which the older of the two tracks was last reset, at step s (0-based)."""
    half = memory // 2
    r0 = s - s % memory  # track 0: reset at 0, M, 2M, ...
    r1 = 0 if s < half else s - (s - half) % memory  # track 1: at 0, then M/2, 3M/2, ...
    return min(r0, r1)


def test_each_output_is_the_stream_restarted_at_the_older_tracks_reset(graph):
    step = OnnxRuntimeStep(graph)
    t, fs = step.card.frames, step.card.frame_step
    memory = 2 * t
    frames = images(5 * memory, seed=1)
    bounded = OnlineRecognizer(step, memory=memory)
    outs = [bounded.push(f, index=i * fs) for i, f in enumerate(frames)]
    assert bounded.inferences == 2 * len(frames)  # both tracks step every sampled frame
    unbounded = OnlineRecognizer(step)
    plain = [unbounded.push(f, index=i * fs) for i, f in enumerate(frames)]
    far = 0.0
    for s, got in enumerate(outs):
        if s < t - 1:
            assert got is None
            continue
        r = older_reset(s, memory)
        assert s - r + 1 >= t  # the older track has a full T at every step from T - 1 on
        fresh = OnlineRecognizer(step)
        ref = [fresh.push(f, index=i * fs) for i, f in enumerate(frames[r:s + 1])][-1]
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-6)
        far = max(far, float(np.abs(got - plain[s]).max()))
    assert far > 1e-3  # forgetting changed the outputs once the unbounded state reached further back


def test_streams_with_memory_step_in_one_inference_equal_to_each_alone(graph):
    step = OnnxRuntimeStep(graph)
    fs, memory = step.card.frame_step, 2 * step.card.frames
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
    assert calls == [6] * 20  # 3 streams x 2 tracks, one inference per tick
    calls.clear()
    for s, g in zip(streams, got):
        alone = OnlineRecognizer(step, memory=memory)
        for k, f in enumerate(s):
            want = alone.push(f, index=k * fs)
            if want is None:
                assert g[k] is None
            else:
                np.testing.assert_allclose(g[k], want, rtol=0, atol=1e-5)
    assert calls == [2] * 60  # alone: the two tracks of one stream in one inference


@pytest.mark.parametrize("memory", [7, 6])  # odd; below 2T = 8
def test_refuses_a_memory_no_track_can_report_from(graph, memory):
    with pytest.raises(ValueError, match=f"online memory must be an even number of sampled frames >= 2T = 8 .*got {memory}"):
        OnlineRecognizer(OnnxRuntimeStep(graph), memory=memory)


def test_tsi_live_online_memory_runs_and_refuses_a_clip_model(graph, tmp_path, caplog):
    from runtime.live import main
    from tests.export.helpers import write_video

    video = write_video(tmp_path / "v.mp4", frames=48)
    out = tmp_path / "a.jsonl"
    argv = ["--source", str(video), "--headless", "--no-realtime", "--threshold", "0", "--out-jsonl"]
    assert main(["--model", str(graph), *argv, str(out), "--online-memory", "8"]) == 0
    summary = json.loads(out.read_text().splitlines()[-1])["summary"]
    assert summary["inferences"] == 48 // 4  # an inference (of the two tracks) every frame step of 4
    assert main(["--model", str(graph), *argv, str(tmp_path / "b.jsonl"), "--online-memory", "5"]) == 2
    assert "online memory must be an even number" in caplog.text
    from runtime.assets import DEMO_ONNX
    assert main(["--model", str(DEMO_ONNX), *argv, str(tmp_path / "c.jsonl"), "--online-memory", "16"]) == 2
    assert "an online memory is for an online (step) model; this card's mode is 'clip'" in caplog.text
