from __future__ import annotations

import numpy as np

from runtime.overlay import draw_overlay


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
