"""Real local streams: an MJPEG-over-HTTP camera on 127.0.0.1 read by OpenCV's FFmpeg backend,
frozen, started late, dropped and back."""

from __future__ import annotations

import json
import threading
import time

import cv2
import pytest

from runtime.capture import FrameSource
from runtime.reconnect import ReconnectPolicy
from runtime.live import main
from tests.runtime.helpers import make_card, make_onnx
from tests.runtime.mjpeg import MjpegServer

pytestmark = pytest.mark.skipif(cv2.videoio_registry.hasBackend(cv2.CAP_FFMPEG) is False,
                                reason="this OpenCV has no FFmpeg backend")

FAST = ReconnectPolicy(initial_delay=0.1, max_delay=0.4, max_retries=30, timeout=20.0)


def collect(src: FrameSource, until, limit_s: float = 15.0) -> list:
    frames, t0 = [], time.monotonic()
    while time.monotonic() - t0 < limit_s:
        frames += src.read_batch(timeout=0.2)
        if until(frames):
            return frames
    raise AssertionError(f"gave up after {limit_s}s with {len(frames)} frames, stats {src.stats}")


def colour(frame) -> str:
    b, g, r = frame.image[frame.image.shape[0] // 2, frame.image.shape[1] // 2].tolist()
    return {0: "blue", 1: "green", 2: "red"}[max(range(3), key=lambda i: (b, g, r)[i])]


def test_a_frozen_stream_is_reconnected_before_opencvs_read_timeout():
    with MjpegServer("red") as server:
        src = FrameSource(server.url, reconnect=FAST, stall_timeout=1.0, buffer_size=64)
        with src:
            collect(src, lambda fr: len(fr) >= 10)
            server.colour = "blue"
            server.freeze()  # the connection stays open, no more frames on it
            t0 = time.monotonic()
            frames = collect(src, lambda fr: any(f.gap for f in fr) and colour(fr[-1]) == "blue")
            took = time.monotonic() - t0
        gap = next(f.gap for f in frames if f.gap)
    assert gap.reason == "stalled" and gap.duration_s >= 1.0
    assert took < 10.0  # OpenCV alone would block for 30 s and then end the stream
    s = src.stats
    assert s.stalls == 1 and s.reconnects == 1 and server.connections == 2


def test_a_stream_not_up_at_start_is_retried_until_it_comes_up():
    server = MjpegServer("green")
    src = FrameSource(server.url, reconnect=FAST, stall_timeout=2.0, buffer_size=64)
    try:
        with src:  # does not fail: the server is not listening yet
            server.start_later(1.0)
            frames = collect(src, lambda fr: len(fr) >= 5)
    finally:
        server.drop()
    assert frames[0].gap is not None and frames[0].gap.reason == "not_up"
    assert frames[0].gap.attempts >= 2 and colour(frames[0]) == "green"
    assert src.stats.reconnects == 0


def test_a_file_that_is_not_there_still_fails_at_once(tmp_path):
    t0 = time.monotonic()
    with pytest.raises(FileNotFoundError):
        FrameSource(tmp_path / "late.mp4", reconnect=FAST).start()
    assert time.monotonic() - t0 < 1.0


def test_dropped_and_back_closes_the_event_resets_and_writes_the_gap(tmp_path):
    model = make_onnx(tmp_path / "colour.onnx", card=make_card(frames=4, size=16, span=8))
    server = MjpegServer("red", fps=30).start()
    jsonl = tmp_path / "live.jsonl"

    def outage():
        time.sleep(2.0)
        server.drop()  # every connection closed, port closed
        time.sleep(1.5)
        server.colour = "blue"
        server.start()  # back on the same port

    t = threading.Thread(target=outage, daemon=True)
    t.start()
    try:
        rc = main(["--model", str(model), "--source", f"cam={server.url}", "--headless",
                   "--stride", "2", "--duration", "7", "--stall-timeout", "2",
                   "--reconnect-attempts", "inf", "--reconnect-limit", "20",
                   "--out-jsonl", str(jsonl), "--out-video", str(tmp_path / "live.avi")])
    finally:
        t.join()
        server.drop()
    assert rc == 0
    lines = [json.loads(x) for x in jsonl.read_text().splitlines()]
    kinds = [("gap" if "gap" in x else "summary" if "summary" in x else x["label"]) for x in lines]
    assert kinds == ["red", "gap", "blue", "summary"], lines
    red, gap, blue, summary = lines[0], lines[1]["gap"], lines[2], lines[3]["summary"]
    assert gap["reason"] == "dropped" and gap["duration_s"] > 1.0
    assert red["end_s"] <= gap["start_s"] + 0.2  # the event ended at the outage ...
    assert blue["start_s"] >= gap["end_s"]       # ... and the new one began after a fresh window
    assert blue["start_frame"] >= gap["frame"] + 7
    assert summary["gaps"] == 1 and summary["capture"]["reconnects"] == 1
    cap = cv2.VideoCapture(str(tmp_path / "live.avi"))
    fps = cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    assert 20 < fps < 40  # measured from the frames (the MJPEG stream itself claims 25)
