import logging

import cv2
import numpy as np
import pytest

from calib.clips import clip_indices, load_calibration_clips, load_clip
from runtime.common.errors import CalibrationError
from runtime.card import ModelCard
from runtime.preprocess import FramePreprocessor
from tests.export.helpers import write_video, write_video_folder

CARD = ModelCard(arch="tsi_r18", labels=("a", "b"), frames=4, input_size=64, resize_short=73)


def test_clip_is_the_runtime_preprocessing(tmp_path):
    """Centre-sampled frames read with cv2 and preprocessed by FramePreprocessor, bit for bit."""
    path = write_video(tmp_path / "v.mp4", frames=12)
    clip = load_clip(path, CARD)
    assert clip.shape == (4, 3, 64, 64) and clip.dtype == np.float32
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    idx = [1, 4, 7, 10]  # TSN centres of 4 segments of 12 frames
    assert clip_indices(12, CARD).tolist() == idx
    pre = FramePreprocessor(CARD)
    assert np.array_equal(clip, np.stack([pre(frames[i]) for i in idx]))


def test_span_frames_window():
    card = CARD.replace(span_frames=8)
    # centred window of 8 in 20 frames: 6..13, centres of 4 segments of 2 frames
    assert clip_indices(20, card).tolist() == [7, 9, 11, 13]
    assert clip_indices(6, card).tolist() == clip_indices(6, CARD).tolist()  # shorter video: whole video


def test_folder_counts_skips_and_limits(tmp_path, caplog):
    root = write_video_folder(tmp_path / "calib", per_class=5, broken=2)
    with caplog.at_level(logging.WARNING):
        cs = load_calibration_clips(root, CARD, progress=False)
    assert len(cs) == 10 and cs.clips.shape == (10, 4, 3, 64, 64) and len(cs.skipped) == 2
    assert "unreadable and skipped" in caplog.text and "100 or more" in caplog.text
    limited = load_calibration_clips(root, CARD, max_clips=8, progress=False)
    assert len(limited) == 8
    assert {p.parent.name for p in limited.sources} == {"left", "right"}  # classes interleaved


def test_errors_name_folder_and_count(tmp_path):
    with pytest.raises(CalibrationError, match="not found"):
        load_calibration_clips(tmp_path / "nope", CARD)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CalibrationError, match="holds no video"):
        load_calibration_clips(tmp_path / "empty", CARD)
    root = write_video_folder(tmp_path / "few", per_class=2, broken=1)
    with pytest.raises(CalibrationError, match=r"few: 4 usable clip\(s\) \(5 video\(s\), 1 unreadable\); at least 8"):
        load_calibration_clips(root, CARD, progress=False)


def test_videos_shorter_than_t_are_refused_and_counted(tmp_path, caplog):
    """Ten one-frame videos are not ten clips: each would be one frame repeated T times."""
    for k in range(10):
        write_video(tmp_path / "short" / f"s{k}.mp4", frames=1, seed=k)
    with caplog.at_level(logging.WARNING), pytest.raises(
            CalibrationError, match=r"short: 0 usable clip\(s\) \(10 video\(s\), 0 unreadable, 10 shorter than "
                                    r"the model's 4 frames\); at least 8 are needed"):
        load_calibration_clips(tmp_path / "short", CARD, progress=False)
    assert "10 calibration video(s)" in caplog.text and caplog.text.count("WARNING") == 1
    write_video_folder(tmp_path / "short", per_class=4)  # + 8 long enough: calibrates on those 8
    cs = load_calibration_clips(tmp_path / "short", CARD, progress=False)
    assert len(cs) == 8 and len(cs.skipped) == 10
    assert all(p.name.startswith(("left", "right")) for p in cs.sources)
