from __future__ import annotations

import numpy as np

from runtime.overlay import MAX_BOX_FRACTION, MIN_FONT_SCALE, draw_overlay, text_style


def test_overlay_draws_a_translucent_box_with_text_in_place():
    frame = np.full((480, 640, 3), 200, np.uint8)
    out = draw_overlay(frame, [("waving", 0.91), ("clapping", 0.05)], fps=29.7,
                       latencies_ms={"capture": 1.0, "preprocess": 0.8, "inference": 12.3,
                                     "end_to_end": 20.5}, action="waving")
    assert out is frame
    box = frame[:40, :40]
    assert box.max() < 200 or (box < 200).any()  # darkened (or text) at the top left
    assert (frame[-50:, -50:] == 200).all()  # the rest untouched
    green = (frame[..., 1] > 200) & (frame[..., 0] < 150)
    assert green.any()  # the recognised action is drawn green


def test_overlay_on_a_tiny_frame_and_with_nothing_to_draw():
    small = np.zeros((24, 32, 3), np.uint8) + 100
    draw_overlay(small, [("a-very-long-label-name", 0.5)], fps=1.0, latencies_ms={"inference": 3})
    empty = np.zeros((24, 32, 3), np.uint8) + 100
    draw_overlay(empty, [])
    assert (empty == 100).all()


TOP = [("waving", 0.91), ("clapping", 0.05), ("walking", 0.02)]
STATS = {"fps": 29.7, "latencies_ms": {"capture": 1.0, "preprocess": 0.8, "inference": 12.3, "end_to_end": 20.5}}


def _drawn(h: int, w: int) -> np.ndarray:
    """Where the overlay changed a grey ``h`` x ``w`` frame."""
    frame = np.full((h, w, 3), 200, np.uint8)
    draw_overlay(frame, TOP, action="waving", **STATS)
    return (frame != 200).any(axis=2)


def _text_height(h: int, w: int) -> int:
    """Rows of the best label's white text (its first line) on a black ``h`` x ``w`` frame."""
    frame = np.zeros((h, w, 3), np.uint8)
    draw_overlay(frame, [("waving", 0.91)])
    white = (frame.min(axis=2) > 128).any(axis=1)
    rows = np.nonzero(white)[0]
    first_gap = np.nonzero(np.diff(rows) > 1)[0]  # the score bar below is another run of rows
    return int(rows[first_gap[0]] - rows[0] + 1 if len(first_gap) else rows[-1] - rows[0] + 1)


def test_the_font_grows_with_the_frame_height_and_has_a_minimum():
    heights = [120, 480, 720, 1080, 2160]
    scales = [text_style(h)[0] for h in heights]
    assert scales[0] == MIN_FONT_SCALE and scales == sorted(scales) and len(set(scales)) == len(scales)
    assert text_style(10)[0] == MIN_FONT_SCALE
    assert text_style(2160)[1] > text_style(480)[1] >= 1  # thicker strokes on a big frame
    texts = [_text_height(h, h * 16 // 9) for h in heights]
    assert texts == sorted(texts) and texts[-1] > 3 * texts[0], texts  # drawn bigger, not only said
    assert texts[0] >= 8, texts  # the smallest still legible


def test_the_overlay_never_covers_most_of_a_small_frame():
    for h, w in [(120, 160), (90, 160), (240, 320), (480, 640), (720, 1280)]:
        drawn = _drawn(h, w)
        assert 0.02 < drawn.mean() <= MAX_BOX_FRACTION, (h, w, drawn.mean())
    big = _drawn(720, 1280)
    ys, xs = np.nonzero(big)
    assert ys.max() > 4 * 30 and xs.max() > 400  # a big frame has room for every line and the stats


def test_a_small_frame_keeps_the_best_label_and_drops_the_rest():
    frame = np.zeros((120, 160, 3), np.uint8)
    draw_overlay(frame, TOP, action="waving", **STATS)
    green = (frame[..., 1] > 150) & (frame[..., 0] < 120)
    assert green[:30].any()  # the recognised action, first line
    assert not (frame[:, 150:] > 0).any()  # the long stats line was left out, not cut at the edge
