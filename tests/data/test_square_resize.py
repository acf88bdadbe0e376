"""``resize: square`` cards: the whole frame is squashed to ``resize_short``², so nothing at a wide
frame's edges is cut off; training, evaluation and the runtime read the same field."""

import json

import cv2
import numpy as np
import pytest

from runtime.card import CardError, ModelCard
from runtime.preprocess import FramePreprocessor, resize_frame
from tsi.data.transforms import TestTransform, TrainTransform


def card(**kw) -> ModelCard:
    return ModelCard(**{"arch": "t", "labels": ("a", "b"), "frames": 2, "input_size": 32,
                        "resize_short": 36, **kw})


def wide_frame_with_edge_marker() -> np.ndarray:
    """A grey 128x64 frame whose left eighth is white: outside a short-side centre crop."""
    f = np.full((64, 128, 3), 100, np.uint8)
    f[:, :16] = 255
    return f


def test_square_keeps_a_wide_frames_edges_short_side_cuts_them():
    f = wide_frame_with_edge_marker()
    short = FramePreprocessor(card())(f)
    square = FramePreprocessor(card(resize="square"))(f)
    white = (255 / 255 - 0.485) / 0.229  # the red channel of a white pixel, normalised
    assert not np.isclose(short[0], white, atol=1e-3).any()
    assert np.isclose(square[0], white, atol=1e-3).sum() > 0


def test_square_is_the_whole_frame_resized_then_centre_cropped():
    f = np.random.default_rng(0).integers(0, 256, (48, 96, 3), dtype=np.uint8)
    c = card(resize="square")
    ref = cv2.resize(f, (36, 36), interpolation=cv2.INTER_LINEAR)[2:34, 2:34]
    assert resize_frame(f, c).shape == (36, 36, 3)
    out = FramePreprocessor(c.replace(resize_short=32))(np.ascontiguousarray(ref))
    assert np.abs(FramePreprocessor(c)(f) - out).max() <= 1e-6


def test_train_and_test_transforms_follow_the_cards_resize():
    clip = [np.random.default_rng(k).integers(0, 256, (48, 96, 3), dtype=np.uint8) for k in range(2)]
    c = card(resize="square")
    ref = np.stack([FramePreprocessor(c)(x) for x in clip])
    assert np.abs(TestTransform(c)(clip).numpy() - ref).max() <= 1e-6
    tf = TrainTransform(c, scales=(1.0,))
    params = tf.sample_params(36, 36, np.random.default_rng(3))
    out, _ = tf(clip, 0, rng=np.random.default_rng(3))
    # a square card's frame is 36x36 before the crop, whatever the video's aspect
    assert (params.w, params.h) == (36, 36)
    whole = [cv2.resize(resize_frame(x, c), (32, 32), interpolation=cv2.INTER_LINEAR) for x in clip]
    pp = FramePreprocessor(c.replace(resize_short=32))
    assert np.abs(out.numpy() - np.stack([pp(x) for x in whole])).max() <= 1e-6


def test_card_field_round_trip_default_left_out_bad_value_refused():
    assert "resize" not in card().to_dict()  # cards of the default read as before
    c = card(resize="square")
    assert ModelCard.from_json(c.to_json()).resize == "square"
    with pytest.raises(CardError, match="resize must be one of"):
        card(resize="letterbox")
    d = json.loads(c.to_json())
    d["resize"] = 3
    with pytest.raises(CardError, match="resize must be a string"):
        ModelCard.from_dict(d)
