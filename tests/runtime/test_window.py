from __future__ import annotations

import numpy as np
import pytest

from runtime.preprocess import FramePreprocessor
from runtime.window import ClipWindow
from tests.runtime.helpers import make_card


def _frame(value: int) -> np.ndarray:
    return np.full((20, 20, 3), value, np.uint8)


@pytest.mark.parametrize("span, frames, want", [
    (8, 4, [1, 3, 5, 7]),  # every frame_step=2-th frame
    (16, 4, [2, 6, 10, 14]),
    (4, 4, [0, 1, 2, 3]),
    (10, 4, [1, 3, 6, 8]),  # span not a multiple of T
    (3, 4, [0, 1, 1, 2]),  # span shorter than T: frames repeat, as in training on a short video
])
def test_clip_takes_the_segment_centres_of_the_span(span, frames, want):
    win = ClipWindow(make_card(frames=frames, span=span), stride=1)
    for i in range(span):
        win.push(_frame(i), index=i)
    assert win.clip_frame_indices().tolist() == want


def test_due_once_full_then_every_stride():
    win = ClipWindow(make_card(frames=4, span=8), stride=3)
    due = [i for i in range(30) if win.push(_frame(i), index=100 + i)]
    assert due == [7, 10, 13, 16, 19, 22, 25, 28]


def test_clip_takes_every_frame_step_th_frame_of_the_last_span():
    card = make_card(frames=4, span=8, size=16)
    assert card.frame_step == 2
    win = ClipWindow(card, stride=1)
    pre = FramePreprocessor(card)
    for i in range(13):  # the ring wraps around
        win.push(_frame(10 * i), index=1000 + i, pts_s=i / 30)
    # last span = frames 5..12; centres of 4 segments of 2 = positions 1,3,5,7 -> frames 6,8,10,12
    assert win.clip_frame_indices().tolist() == [1006, 1008, 1010, 1012]
    clip = win.clip()
    assert clip.shape == (1, 4, 3, 16, 16) and clip.dtype == np.float32
    for t, i in enumerate([6, 8, 10, 12]):
        np.testing.assert_array_equal(clip[0, t], pre(_frame(10 * i)))
    assert win.newest() == (1012, pytest.approx(12 / 30))


def test_clip_is_a_reused_buffer_and_nothing_before_full():
    win = ClipWindow(make_card(frames=2, span=4), stride=2)
    for i in range(3):
        assert not win.push(_frame(i))
    with pytest.raises(RuntimeError):
        win.clip()
    assert win.push(_frame(3))
    first = win.clip()
    win.push(_frame(4))
    assert win.push(_frame(5))
    assert win.clip() is first
    win.reset()
    assert win.count == 0 and not win.full


def test_card_without_span_uses_t_consecutive_frames():
    win = ClipWindow(make_card(frames=4, span=0), stride=1)
    for i in range(6):
        win.push(_frame(i), index=i)
    assert win.clip_frame_indices().tolist() == [2, 3, 4, 5]


def test_bad_stride():
    with pytest.raises(ValueError):
        ClipWindow(make_card(), stride=0)


def test_padded_clip_centres_a_short_clip_and_repeats_its_edge_frames():
    card = make_card(frames=4, span=8)
    win = ClipWindow(card, stride=1)
    values = [0.1, 0.3, 0.5]  # 3 frames of an 8-frame span
    for v in values:
        win.push(np.full((16, 16, 3), int(v * 255), np.uint8))
    assert not win.full
    clip = win.padded_clip()
    # offsets of 4 in 8: 1, 3, 5, 7; the 3 frames sit at positions 2..4 (left pad 2)
    # -> frames clamp(-1)=0, 1, 2, clamp(5)=2
    means = clip[0].mean(axis=(1, 2, 3))
    ring = win._ring[:3].mean(axis=(1, 2, 3))
    np.testing.assert_allclose(means, ring[[0, 1, 2, 2]], rtol=1e-6)
    out = np.zeros(card.input_shape, np.float32)
    for v in range(5):
        win.push(np.full((16, 16, 3), 200, np.uint8))
    assert win.clip(out=out) is out
    np.testing.assert_array_equal(out, win.clip()[0])
