import cv2
import numpy as np
import pytest
import torch

from runtime.card import ModelCard
from runtime.preprocess import FramePreprocessor, resize_short_side
from tsi.data.transforms import TSN_SCALES, TestTransform, ThreeCropTransform, TrainTransform


def card(**kw) -> ModelCard:
    return ModelCard(**{"arch": "t", "labels": ("a", "b", "c"), "frames": 4, "input_size": 32,
                        "resize_short": 36, **kw})


def frames(n=4, w=64, h=48, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]


def test_test_transform_is_frame_preprocessor():
    c = card(mean=(0.4, 0.5, 0.6), std=(0.2, 0.25, 0.3))
    clip = frames()
    out = TestTransform(c)(clip)
    ref = np.stack([FramePreprocessor(c)(f) for f in clip])
    assert out.shape == (4, 3, 32, 32) and out.dtype == torch.float32
    assert np.abs(out.numpy() - ref).max() <= 1e-6


def test_train_shape_and_one_crop_per_clip():
    c = card()
    tf = TrainTransform(c)
    clip = frames()
    out, label = tf(clip, 2, rng=np.random.default_rng(7))
    assert out.shape == (4, 3, 32, 32) and out.dtype == torch.float32 and label == 2
    # the crop drawn first from the same rng, applied by hand to each frame, gives each output frame
    params = tf.sample_params(48, 36, np.random.default_rng(7))
    pp = FramePreprocessor(c.replace(resize_short=32))  # a 32x32 crop: FramePreprocessor only normalises
    for k, f in enumerate(clip):
        crop = resize_short_side(f, 36)[params.y : params.y + params.h, params.x : params.x + params.w]
        crop = cv2.resize(crop, (32, 32), interpolation=cv2.INTER_LINEAR)
        assert np.abs(out[k].numpy() - pp(np.ascontiguousarray(crop))).max() <= 1e-6
    # identical frames stay identical: no per-frame crop; different rngs give different crops
    same = [clip[0]] * 4
    outs = [tf(same, 0, rng=np.random.default_rng(s))[0] for s in range(8)]
    assert all(torch.equal(o[0], o[k]) for o in outs for k in range(4))
    assert len({o.sum().item() for o in outs}) > 1


def test_multiscale_crop_geometry():
    tf = TrainTransform(card(), more_fix_crop=False)
    rng = np.random.default_rng(0)
    sizes = [int(36 * s) for s in TSN_SCALES]
    sizes = [32 if abs(s - 32) < 3 else s for s in sizes]
    seen = set()
    for _ in range(500):
        p = tf.sample_params(48, 36, rng)
        i, j = sizes.index(p.h), sizes.index(p.w)
        assert abs(i - j) <= 1  # max_distort 1: scale jitter with a bounded aspect change
        ws, hs = (48 - p.w) // 4, (36 - p.h) // 4
        assert (p.x, p.y) in {(0, 0), (4 * ws, 0), (0, 4 * hs), (4 * ws, 4 * hs), (2 * ws, 2 * hs)}
        assert not p.flip
        seen.add((p.w, p.h))
    assert len(seen) == 10  # 4 scales, pairs at most one step apart


def test_flip_swaps_direction_labels():
    tf = TrainTransform(card(), flip=True, flip_map={0: 1})
    assert tf.flip_map == {0: 1, 1: 0}
    clip = frames()
    results = {}
    for s in range(20):
        params = tf.sample_params(48, 36, np.random.default_rng(s))
        out, label = tf(clip, 0, rng=np.random.default_rng(s))
        results[params.flip] = (params, out, label)
        assert torch.equal(out, tf.apply(clip, params))
    assert set(results) == {True, False}
    params, out, label = results[True]
    assert label == 1
    unflipped = tf.apply(clip, type(params)(params.x, params.y, params.w, params.h, False))
    assert torch.equal(out, unflipped.flip(-1))
    assert tf(clip, 2, rng=np.random.default_rng(0))[1] == 2  # unmapped labels stay
    with pytest.raises(ValueError, match="flipping is off"):
        TrainTransform(card(), flip_map={0: 1})
    with pytest.raises(ValueError, match="both"):
        TrainTransform(card(), flip=True, flip_map={0: 1, 2: 1})


def test_three_crop():
    clip = frames()
    out = ThreeCropTransform(card())(clip)
    assert out.shape == (3, 4, 3, 32, 32)
    assert not torch.equal(out[0], out[2])
    # with resize_short == input_size the centre view is the 1-view test transform
    c = card(resize_short=32)
    three = ThreeCropTransform(c)(clip)
    assert torch.allclose(three[1], TestTransform(c)(clip), atol=1e-6)
    # the left view is the left square of the short-side-resized frame
    left = resize_short_side(clip[0], 32)[:, :32]
    assert torch.allclose(three[0, 0], torch.from_numpy(FramePreprocessor(c)(np.ascontiguousarray(left))), atol=1e-6)
    # portrait frames: top/centre/bottom
    tall = [np.ascontiguousarray(f.transpose(1, 0, 2)) for f in clip]
    assert ThreeCropTransform(card())(tall).shape == (3, 4, 3, 32, 32)
