"""Training, evaluation, calibration and the live runtime pick the same frames of a span.

A video of N frames is given to each as the thing it samples: the training side's test-mode dataset
(``tsi.data.datasets.ClipDataset``, the validation and evaluation path), the calibration clips
(``calib.clips``) and the runtime's sliding window holding the last N frames of a stream
(``runtime.window.ClipWindow``, span N). Frame i is painted with the value i, so the clips the three
build show which frames they took, not just which indices they asked for.
"""

from pathlib import Path

import numpy as np
import pytest

import tsi.data.datasets as datasets
from calib.clips import clip_indices
from runtime.card import ModelCard
from runtime.sampling import segment_indices
from runtime.window import ClipWindow
from tsi.data.formats import Sample

SIZE = 16
CASES = [(n, t) for t in (2, 3, 4, 5, 7, 8, 11, 16) for n in (1, 2, 3, 5, 7, 8, 9, 16, 17, 30, 31, 32, 64, 90)]


def _frame(i: int) -> np.ndarray:
    return np.full((SIZE, SIZE, 3), i, np.uint8)


def _card(frames: int, span: int) -> ModelCard:
    return ModelCard(arch="t", labels=("a", "b"), frames=frames, input_size=SIZE, resize_short=SIZE,
                     span_frames=span)


@pytest.fixture
def fake_videos(monkeypatch):
    """Sample paths "video_N" decode to N frames painted 0..N-1; records the picked indices."""
    picked = []

    def read_sampled(path, pick):
        idx = np.asarray(pick(int(Path(path).name.split("_")[1])))
        picked.append(idx)
        return [_frame(int(i)) for i in idx], idx

    monkeypatch.setattr(datasets, "read_sampled", read_sampled)
    return picked


@pytest.mark.parametrize("t", sorted({t for _, t in CASES}))
def test_training_and_runtime_take_the_same_frames(fake_videos, t):
    for n in sorted({n for n, tt in CASES if tt == t}):
        card = _card(t, n)
        ds = datasets.ClipDataset([Sample(Path(f"video_{n}"), 0)], card.labels, card=card, mode="test")
        train_clip = ds[0][0].numpy()
        train_idx = fake_videos[-1]

        win = ClipWindow(card, stride=1)
        extra = 5  # the window has slid on: it holds frames extra .. extra + n - 1 of the stream
        for i in range(n + extra):
            win.push(_frame(i - extra if i >= extra else 200), index=i - extra)
        assert win.due()
        np.testing.assert_array_equal(win.clip_frame_indices(), train_idx, err_msg=f"N={n}, T={t}")
        np.testing.assert_array_equal(win.clip()[0], train_clip, err_msg=f"N={n}, T={t}")

        assert clip_indices(n, card).tolist() == train_idx.tolist()
        assert train_idx.tolist() == segment_indices(n, t, "test").tolist()


def test_calibration_centres_the_span_in_a_longer_video():
    card = _card(4, 8)
    # a 20-frame video: calibration samples the centred 8-frame window 6..13 like the runtime's span
    assert clip_indices(20, card).tolist() == (6 + segment_indices(8, 4, "test")).tolist()
    # no span on the card: the whole video, as training samples it
    assert clip_indices(20, _card(4, 0)).tolist() == segment_indices(20, 4, "test").tolist()


def test_training_clips_of_a_long_video_are_windows_the_runtime_shows(fake_videos):
    """A 60-frame video with a 24-frame span: each training clip lies in 24 consecutive frames,
    at positions over the whole video (the runtime's window slides over all of them), and a test
    clip is the centred window, the clip calibration takes."""
    card = _card(4, 24)
    train = datasets.ClipDataset([Sample(Path("video_60"), 0)], card.labels, card=card, mode="train")
    firsts = set()
    for epoch in range(60):
        train.set_epoch(epoch)
        train[0]
        idx = fake_videos[-1]
        assert idx[-1] - idx[0] < 24, idx
        firsts.add(int(idx[0]))
    assert min(firsts) < 6 and max(firsts) > 36
    test = datasets.ClipDataset([Sample(Path("video_60"), 0)], card.labels, card=card, mode="test")
    test[0]
    assert fake_videos[-1].tolist() == clip_indices(60, card).tolist() == (18 + segment_indices(24, 4, "test")).tolist()
