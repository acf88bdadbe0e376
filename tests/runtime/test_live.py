from __future__ import annotations

import gc
import json
import logging
import os
import signal
import threading
import time
import tracemalloc

import cv2
import pytest

from runtime.capture import FrameSource
from runtime.display import has_gui
from runtime.live import main
from runtime.recognizer import LiveRecognizer
from runtime.sink import LiveOutputs
from tests.runtime.helpers import (FakeBackend, FakeCapture, make_card, make_onnx, sequence_opener,
                                   solid, write_video)

SEGMENTS = ["red"] * 24 + ["green"] * 24 + ["blue"] * 24


@pytest.fixture()
def model(tmp_path):
    return make_onnx(tmp_path / "colour.onnx", card=make_card(frames=4, size=16, span=8))


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_headless_events_follow_the_coloured_segments(tmp_path, model):
    video = write_video(tmp_path / "segments.mp4", SEGMENTS)
    out_dir = tmp_path / "out"
    jsonl, out_video = out_dir / "events.jsonl", out_dir / "annotated.mp4"
    rc = main(["--model", str(model), "--source", str(video), "--headless", "--no-realtime",
               "--stride", "2", "--smoothing", "mean", "--smooth-n", "2", "--threshold", "0.5",
               "--out-jsonl", str(jsonl), "--out-video", str(out_video)])
    assert rc == 0
    lines = read_jsonl(jsonl)
    events, summary = lines[:-1], lines[-1]["summary"]
    assert [e["label"] for e in events] == ["red", "green", "blue"]
    for e in events:
        assert set(e) == {"label", "score", "start_frame", "end_frame", "start_s", "end_s"}
        assert e["score"] > 0.9
        assert e["start_s"] == pytest.approx(e["start_frame"] / 30, abs=1e-6)
    red, green, blue = events
    assert red["start_frame"] == 7  # the first full window (span 8)
    assert 24 <= green["start_frame"] <= 24 + 8 and 48 <= blue["start_frame"] <= 48 + 8
    assert red["end_frame"] < green["start_frame"] and green["end_frame"] < blue["start_frame"]
    assert blue["end_frame"] == 71
    assert summary["reason"] == "end_of_stream" and summary["frames"] == 72
    assert summary["capture"]["dropped"] == 0 and summary["capture"]["decode_errors"] == 0
    assert summary["inferences"] == 33  # frames 7, 9, ..., 71
    assert set(summary["latency_ms"]) == {"capture", "preprocess", "inference", "end_to_end"}
    assert {"mean_ms", "p50_ms", "p95_ms"} <= set(summary["latency_ms"]["inference"])
    cap = cv2.VideoCapture(str(out_video))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 72
    cap.release()
    assert sorted(p.name for p in out_dir.iterdir()) == ["annotated.mp4", "events.jsonl"]


def test_realtime_file_with_a_slow_backend_drops_frames_and_does_not_lag(tmp_path):
    video = write_video(tmp_path / "v.mp4", ["red"] * 60)  # 2 s at 30 fps
    backend = FakeBackend(make_card(), delay=0.12)  # ~8 windows/s for a 30 fps stream
    rec = LiveRecognizer(backend, stride=1)
    t0 = time.monotonic()
    with FrameSource(video, realtime=True, buffer_size=2) as src:
        summary = rec.run(src)
    wall = time.monotonic() - t0
    c = summary.capture
    assert c["dropped"] > 10
    assert c["read"] == c["delivered"] + c["dropped"] == 60
    assert summary.frames == c["delivered"]
    assert wall < 4.0  # kept to the clock: no backlog worked off after the video ended
    assert backend.calls <= 25  # one window per batch, not one per frame
    e2e = summary.latency_ms["end_to_end"]
    assert e2e["max_ms"] < 600  # about one inference plus a frame or two; a growing lag would not be


def test_stop_event_ends_a_live_run_cleanly(tmp_path):
    frames = (solid("green") for _ in iter(int, 1))  # an endless camera
    cap = FakeCapture(frames)
    src = FrameSource("0", opener=sequence_opener(cap))
    rec = LiveRecognizer(FakeBackend(make_card()), stride=2)
    stop = threading.Event()
    outputs = LiveOutputs(jsonl=tmp_path / "e.jsonl")
    threading.Timer(0.3, stop.set).start()
    with src:
        summary = rec.run(src, outputs=outputs, stop=stop)
    outputs.close()
    assert summary.reason == "stopped" and summary.frames > 8
    assert cap.released and not src._thread.is_alive()
    lines = read_jsonl(tmp_path / "e.jsonl")
    assert lines[0]["label"] == "red" and lines[-1]["summary"]["reason"] == "stopped"


def test_ctrl_c_finishes_and_writes_the_outputs(tmp_path, model):
    video = write_video(tmp_path / "long.mp4", ["blue"] * 300)  # 10 s in real time
    jsonl = tmp_path / "events.jsonl"
    before = signal.getsignal(signal.SIGINT)  # the default, or SIG_IGN in a pytest-xdist worker
    timer = threading.Timer(0.8, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    t0 = time.monotonic()
    try:
        rc = main(["--model", str(model), "--source", str(video), "--headless",
                   "--out-jsonl", str(jsonl), "--out-video", str(tmp_path / "a.avi")])
    finally:
        timer.cancel()
    assert rc == 0 and time.monotonic() - t0 < 5
    assert signal.getsignal(signal.SIGINT) is before
    lines = read_jsonl(jsonl)
    assert lines[-1]["summary"]["reason"] == "stopped"
    assert lines[0]["label"] == "blue"
    assert (tmp_path / "a.avi").stat().st_size > 0


def test_max_frames_and_duration(tmp_path, model):
    video = write_video(tmp_path / "v.mp4", SEGMENTS)
    jsonl = tmp_path / "e.jsonl"
    assert main(["--model", str(model), "--source", str(video), "--headless", "--no-realtime",
                 "--max-frames", "20", "--out-jsonl", str(jsonl)]) == 0
    summary = read_jsonl(jsonl)[-1]["summary"]
    assert summary["reason"] == "max_frames" and summary["frames"] == 20
    assert main(["--model", str(model), "--source", str(video), "--headless",
                 "--duration", "0.3", "--out-jsonl", str(jsonl)]) == 0
    summary = read_jsonl(jsonl)[-1]["summary"]
    assert summary["reason"] == "duration" and summary["wall_s"] < 1.5


@pytest.mark.skipif(has_gui(), reason="this OpenCV has a GUI")
def test_window_mode_without_gui_says_what_to_do(tmp_path, model, caplog):
    video = write_video(tmp_path / "v.mp4", ["red"] * 5)
    with caplog.at_level(logging.ERROR):
        assert main(["--model", str(model), "--source", str(video)]) == 2
    assert "no GUI" in caplog.text and "--headless" in caplog.text and '".[gui]"' in caplog.text
    assert len(caplog.text.strip().splitlines()) == 1  # one line


def test_cli_errors_are_clear(tmp_path, model, monkeypatch, caplog):
    video = write_video(tmp_path / "v.mp4", ["red"] * 5)
    with caplog.at_level(logging.ERROR):
        assert main(["--model", str(tmp_path / "missing.onnx"), "--source", str(video),
                     "--headless"]) == 2
        assert "model file not found" in caplog.text and "missing.onnx" in caplog.text
        caplog.clear()
        monkeypatch.chdir(tmp_path)  # no artifacts/demo here
        monkeypatch.setattr("runtime.assets.DEMO_ONNX", tmp_path / "not-shipped.onnx")  # nor a shipped one
        assert main(["--source", str(video), "--headless"]) == 2
        assert "artifacts/demo/tsi_demo.onnx" in caplog.text
        assert "python export/build_engine.py" in caplog.text
        caplog.clear()
        assert main(["--model", str(model), "--source", str(tmp_path / "none.mp4"),
                     "--headless"]) == 2
        assert "video file not found" in caplog.text
        caplog.clear()
        assert main(["--model", str(model), "--source", "0", "--no-realtime", "--headless"]) == 2
        assert "live source" in caplog.text
        caplog.clear()
        assert main(["--model", str(model), "--source", "videotestsrc ! appsink",
                     "--headless"]) == 2
        assert "GStreamer" in caplog.text
        caplog.clear()
        assert main(["--model", str(model), "--source", str(video), "--headless",
                     "--cuda-graph"]) == 2
        assert "tensorrt backend only" in caplog.text


def test_10000_frames_keep_memory_flat(tmp_path):
    logging.getLogger("runtime").setLevel(logging.WARNING)
    card = make_card(frames=2, size=16, span=4)
    frame = solid("red", 24, 32)
    cap = FakeCapture(frame.copy() for _ in range(20_000))
    src = FrameSource("fake.mp4", realtime=False, opener=sequence_opener(cap), buffer_size=4)
    rec = LiveRecognizer(FakeBackend(card, period=40), stride=1, smoothing="mean", smooth_n=3)
    outputs = LiveOutputs(jsonl=tmp_path / "e.jsonl")
    with src:
        rec.run(src, outputs=outputs, max_frames=1000)  # warm-up
        gc.collect()
        tracemalloc.start()
        try:
            rec.run(src, outputs=outputs, max_frames=2000)
            gc.collect()
            base, _ = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            summary = rec.run(src, outputs=outputs, max_frames=10_000)
            gc.collect()
            current, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    outputs.close()
    assert summary.frames == 10_000 and summary.events > 50
    assert summary.capture["dropped"] == 0
    assert current - base < 64 * 1024, f"grew {current - base} bytes over 8000 frames"
    assert peak - base < 1024 * 1024, f"peak {peak - base} bytes above the warm state"


def test_a_lost_stream_is_summarised_then_raised(tmp_path):
    from runtime.reconnect import ReconnectPolicy, StreamLostError

    cap = FakeCapture([solid("blue")] * 12)  # then the stream drops for good
    src = FrameSource("rtsp://camera.invalid/s", opener=sequence_opener(cap, FakeCapture([], opened=False)),
                      reconnect=ReconnectPolicy(initial_delay=0.01, max_delay=0.02, max_retries=2),
                      buffer_size=16)
    rec = LiveRecognizer(FakeBackend(make_card()), stride=1)
    outputs = LiveOutputs(jsonl=tmp_path / "e.jsonl")
    with src, pytest.raises(StreamLostError):
        try:
            rec.run(src, outputs=outputs)
        finally:
            outputs.close()
    lines = read_jsonl(tmp_path / "e.jsonl")
    assert lines[0]["label"] == "red"  # the action in progress was closed and written
    summary = lines[-1]["summary"]
    assert summary["reason"] == "source_error" and "did not come back" in summary["error"]
    assert rec.last_summary.frames == 12


def _soak(tmp_path, frames_per_stream: int):
    """4 streams on one (fake) backend through run_streams: memory after a warm-up stays flat."""
    from runtime.scheduler import run_streams

    logging.getLogger("runtime").setLevel(logging.WARNING)
    card = make_card(frames=2, size=16, span=4)
    backend = FakeBackend(card, period=40)
    frame = solid("red", 24, 32)
    total = 2000 + frames_per_stream
    streams = []
    for i in range(4):
        cap = FakeCapture(frame.copy() for _ in range(total + 10))
        src = FrameSource(f"s{i}.mp4", realtime=False, opener=sequence_opener(cap), buffer_size=4)
        rec = LiveRecognizer(backend, stride=1, smoothing="mean", smooth_n=3, name=f"s{i}",
                             outputs=LiveOutputs(jsonl=tmp_path / f"s{i}.jsonl"))
        streams.append((rec, src))
    for _, src in streams:
        src.start()
    try:
        run_streams(backend, streams, max_frames=2000)  # warm-up
        gc.collect()
        tracemalloc.start()
        try:
            base, _ = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            summaries = run_streams(backend, streams, max_frames=total)
            gc.collect()
            current, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    finally:
        for rec, src in streams:
            src.stop()
            rec.outputs.close()
    for s in summaries:
        assert s.frames == total and s.capture["dropped"] == 0 and s.events > frames_per_stream / 200
    assert all(not rec._ended for rec, _ in streams)  # events went to the JSONL, none kept
    assert backend.calls < 4 * frames_per_stream  # batched: about one inference per round
    assert current - base < 96 * 1024, f"grew {current - base} bytes over {frames_per_stream} frames x4"
    assert peak - base < 1024 * 1024, f"peak {peak - base} bytes above the warm state"


def test_4_streams_1000_frames_each_keep_memory_flat(tmp_path):
    _soak(tmp_path, 1_000)


@pytest.mark.slow
def test_4_streams_10000_frames_each_keep_memory_flat(tmp_path):
    _soak(tmp_path, 10_000)


def test_a_second_run_on_the_same_jsonl_is_refused_and_the_first_keeps_its_events(tmp_path, model):
    """Two tsi-live processes, one --out-jsonl: the second is refused at once (exit 2, one line
    naming the file), the first finishes and its events are all there."""
    import subprocess
    import sys

    video = write_video(tmp_path / "long.mp4", ["blue"] * 90)  # 3 s played in real time
    jsonl = tmp_path / "events.jsonl"
    cmd = [sys.executable, "-m", "runtime.live", "--model", str(model), "--headless", "--out-jsonl", str(jsonl)]
    first = subprocess.Popen([*cmd, "--source", str(video)], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while not (tmp_path / ".events.jsonl.lock").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        second = subprocess.run([*cmd, "--source", str(video), "--no-realtime"], capture_output=True, text=True,
                                timeout=60)
        assert first.poll() is None, "the first run ended before the second started: the test proves nothing"
        errors = [line for line in second.stderr.splitlines() if " ERROR " in line]
        assert second.returncode == 2 and "Traceback" not in second.stderr, second.stderr[-1500:]
        assert len(errors) == 1 and f"{jsonl} is being written by another run now" in errors[0]
    finally:
        rc = first.wait(timeout=60)
    assert rc == 0, first.stderr.read()[-1500:]
    lines = read_jsonl(jsonl)
    assert lines[0]["label"] == "blue" and lines[-1]["summary"]["reason"] == "end_of_stream"
