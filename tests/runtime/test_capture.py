from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest

from runtime.capture import FrameSource
from runtime.frames import EndOfStream
from runtime.reconnect import ReconnectPolicy, StreamLostError
from runtime.sources import SourceError, parse_source
from runtime.gstreamer import (GStreamerUnavailableError, csi_pipeline, gstreamer_available,
                               usb_pipeline)
from tests.runtime.helpers import FakeCapture, sequence_opener, solid, write_video


def drain(src: FrameSource, limit_s: float = 10.0) -> list:
    frames, t0 = [], time.monotonic()
    while time.monotonic() - t0 < limit_s:
        try:
            frames += src.read_batch(timeout=0.5)
        except EndOfStream:
            return frames
    raise AssertionError("source never ended")


def test_parse_source():
    assert parse_source("0").kind == "camera" and parse_source("0").target == 0
    assert parse_source(1).target == 1
    assert parse_source("/dev/video2").kind == "camera"
    assert parse_source("rtsp://cam.local:554/stream").kind == "url"
    assert parse_source("http://x/y.mjpg").kind == "url"
    assert parse_source("clips/a.mp4").kind == "file"
    assert parse_source("file:///tmp/a.mp4").target == "/tmp/a.mp4"
    spec = parse_source(csi_pipeline())
    assert spec.kind == "pipeline" and spec.api == cv2.CAP_GSTREAMER


def test_pipeline_helpers():
    csi = csi_pipeline(sensor_id=1, width=1920, height=1080, fps=60)
    assert csi.startswith("nvarguscamerasrc sensor-id=1 ! video/x-raw(memory:NVMM),width=1920,"
                          "height=1080,framerate=60/1 ! nvvidconv")
    assert csi.endswith("video/x-raw,format=BGR ! appsink drop=1")
    usb = usb_pipeline("/dev/video1", mjpeg=True)
    assert usb.startswith("v4l2src device=/dev/video1 ! image/jpeg") and "jpegdec" in usb
    assert usb.endswith("appsink drop=1")


@pytest.mark.skipif(gstreamer_available(), reason="this OpenCV has GStreamer")
def test_gstreamer_pipeline_without_gstreamer_fails_at_once_with_the_reason():
    with pytest.raises(GStreamerUnavailableError) as info:
        FrameSource(csi_pipeline())
    msg = str(info.value)
    assert "without GStreamer" in msg and "JetPack" in msg and "opencv-python" in msg


def test_missing_file():
    src = FrameSource("/nonexistent/clip.mp4")
    with pytest.raises(FileNotFoundError, match="clip.mp4"):
        src.start()


def test_file_offline_delivers_every_frame_then_ends(tmp_path):
    video = write_video(tmp_path / "v.mp4", ["red"] * 25)
    with FrameSource(video, realtime=False, buffer_size=2) as src:
        frames = drain(src)
        assert src.ended
        with pytest.raises(EndOfStream):  # stays ended, never blocks
            src.read(timeout=5.0)
    assert [f.index for f in frames] == list(range(25))
    assert frames[3].pts_s == pytest.approx(3 / 30)
    assert all(f.image.shape == (48, 64, 3) for f in frames)
    s = src.stats
    assert (s.read, s.delivered, s.dropped, s.decode_errors) == (25, 25, 0, 0)


def test_file_realtime_plays_at_its_fps_and_drops_for_a_slow_consumer(tmp_path):
    video = write_video(tmp_path / "v.mp4", ["green"] * 30)  # 1 s at 30 fps
    t0 = time.monotonic()
    with FrameSource(video, realtime=True, buffer_size=2) as src:
        got = []
        while True:
            try:
                batch = src.read_batch(timeout=1.0)
            except EndOfStream:
                break
            got += batch
            time.sleep(0.15)  # a slow consumer
    elapsed = time.monotonic() - t0
    s = src.stats
    assert 0.8 < elapsed < 3.0  # played at its own pace, not as fast as possible
    assert s.dropped > 5
    assert s.read == s.delivered + s.dropped == 30
    assert len(got) == s.delivered
    idx = [f.index for f in got]
    assert idx == sorted(idx) and idx[-1] == 29  # the newest frames survive


def test_failed_reads_and_malformed_frames_are_counted_and_skipped():
    good = solid("red")
    items = [good] * 3 + [False, False] + [np.zeros((4, 4), np.float32),
                                          np.zeros((8, 8, 4), np.uint8), np.zeros((0, 0, 3), np.uint8),
                                          "garbage"] + [good] * 3
    opener = sequence_opener(FakeCapture(items))
    with FrameSource("fake.mp4", realtime=False, opener=opener) as src:
        frames = drain(src)
    assert [f.index for f in frames] == [0, 1, 2, 9, 10, 11]
    s = src.stats
    assert (s.delivered, s.decode_errors, s.dropped) == (6, 6, 0)


def test_live_stream_drops_reconnects_with_backoff_then_gives_up():
    first = FakeCapture([solid("red")] * 10)  # then every read fails: the stream dropped
    second = FakeCapture([solid("blue")] * 10)
    dead = FakeCapture([], opened=False)
    opener = sequence_opener(first, dead, OSError("connection refused"), second, dead)
    policy = ReconnectPolicy(initial_delay=0.01, max_delay=0.04, max_retries=3, timeout=5.0)
    src = FrameSource("rtsp://camera.invalid/stream", buffer_size=64, reconnect=policy,
                      opener=opener, max_consecutive_failures=2)
    frames = []
    t0 = time.monotonic()
    with src:
        with pytest.raises(StreamLostError, match="after 3 connection attempt"):
            while True:
                frames += src.read_batch(timeout=1.0)
    assert time.monotonic() - t0 < 5.0
    s = src.stats
    assert s.reconnects == 1
    assert s.decode_errors == 0  # failed reads of a dropped stream are not decode errors
    assert len(frames) == 20 and [f.index for f in frames] == list(range(20))
    assert frames[0].image[0, 0].tolist() == [0, 0, 255] and frames[-1].image[0, 0].tolist() == [255, 0, 0]
    assert first.released and second.released
    assert len(opener.calls) == 1 + 3 + 3  # first open, 3 attempts until second, 3 that fail


def test_a_file_that_cannot_be_opened_fails_at_once():
    opener = sequence_opener(FakeCapture([], opened=False))
    with pytest.raises(SourceError, match="cannot open file 'x.mp4'"):
        FrameSource("x.mp4", opener=opener).start()
    assert len(opener.calls) == 1


def test_a_live_source_not_up_at_start_is_retried_then_given_up():
    dead = FakeCapture([], opened=False)
    opener = sequence_opener(dead, OSError("refused"), dead)
    policy = ReconnectPolicy(initial_delay=0.01, max_delay=0.02, max_retries=3, timeout=5.0)
    with FrameSource("0", opener=opener, reconnect=policy) as src:  # start() does not fail
        with pytest.raises(StreamLostError, match="camera 0 did not come up after 3 connection"):
            drain(src)
    assert len(opener.calls) == 1 + 3


def test_a_live_source_that_comes_up_late_delivers_frames_with_a_gap_first():
    late = FakeCapture([solid("red")] * 5)
    opener = sequence_opener(FakeCapture([], opened=False), FakeCapture([], opened=False), late)
    policy = ReconnectPolicy(initial_delay=0.01, max_delay=0.02, max_retries=5)
    with FrameSource("0", opener=opener, reconnect=policy, buffer_size=16,
                     max_consecutive_failures=1) as src:
        frames = []
        while len(frames) < 5:
            frames += src.read_batch(timeout=2.0)
    assert frames[0].gap is not None and frames[0].gap.reason == "not_up"
    assert frames[0].gap.attempts == 2 and all(f.gap is None for f in frames[1:])
    assert src.stats.reconnects == 0  # coming up is not a reconnection


def test_live_sources_cannot_be_offline():
    with pytest.raises(ValueError, match="live source"):
        FrameSource("rtsp://x/y", realtime=False)


def test_a_file_reader_stuck_in_read_is_reported_not_waited_on_forever():
    release = threading.Event()
    cap = FakeCapture([solid("red")], block=release)
    src = FrameSource("stuck.mp4", opener=sequence_opener(cap), stall_timeout=0.3)
    src.start()
    try:
        t0 = time.monotonic()
        with pytest.raises(SourceError, match="stalled"):
            while time.monotonic() - t0 < 5:
                src.read_batch(timeout=0.2)
        assert time.monotonic() - t0 < 2.0
    finally:
        release.set()
        src.stop()
    assert cap.released


def test_a_stalled_live_reader_is_abandoned_and_the_stream_reconnected():
    release = threading.Event()
    stuck_items = iter([solid("red")] * 3)

    class Freezes(FakeCapture):
        def read(self):
            item = next(stuck_items, None)
            if item is None:
                release.wait(10.0)  # the connection stays open, no frame comes
                return False, None
            return True, item

    frozen = Freezes([])
    fresh = FakeCapture([solid("blue")] * 4)
    src = FrameSource("rtsp://cam/x", opener=sequence_opener(frozen, fresh), stall_timeout=0.3,
                      reconnect=ReconnectPolicy(initial_delay=0.01, max_delay=0.02), buffer_size=16)
    try:
        with src:
            frames, t0 = [], time.monotonic()
            while len(frames) < 7 and time.monotonic() - t0 < 5:
                frames += src.read_batch(timeout=0.2)
            assert time.monotonic() - t0 < 3.0
            assert [f.index for f in frames] == list(range(7))
            assert frames[3].gap is not None and frames[3].gap.reason == "stalled"
            assert frames[3].gap.duration_s >= 0.3
            assert src.stats.stalls == 1 and src.stats.reconnects == 1
    finally:
        release.set()
    t0 = time.monotonic()
    while not frozen.released and time.monotonic() - t0 < 2:
        time.sleep(0.01)
    assert frozen.released  # by its own (abandoned) reader once read() returned


class SlowDecoder(FakeCapture):
    """Decoding (read) is slower than the file's fps; grab() (no retrieve) is quick."""

    def read(self):
        time.sleep(0.05)
        return super().read()

    def grab(self):
        ok, _ = super().read()
        return ok


def test_realtime_file_skips_frames_when_decoding_falls_behind_the_clock():
    cap = SlowDecoder([solid("red")] * 60, fps=30.0)  # 2 s of video, 3 s to decode every frame
    t0 = time.monotonic()
    with FrameSource("slow.mp4", realtime=True, opener=sequence_opener(cap), buffer_size=64) as src:
        frames = drain(src)
    elapsed = time.monotonic() - t0
    s = src.stats
    assert elapsed < 2.7  # kept to the clock
    assert s.dropped > 10 and s.read == s.delivered + s.dropped == 60
    assert [f.index for f in frames] == sorted(f.index for f in frames)
