"""``mix_background`` (``tsi-train --mix-background M``): a still frame of another training video
blended into every frame of a training clip; off by default, training only, reproducible."""

import pytest
import torch

from tests.data.test_datasets import make_card
from tests.data.videos import write_corrupt, write_video
from tsi.data.datasets import build_dataset

CLASSES = ("a", "b", "c")


@pytest.fixture
def root(tmp_path):
    for c in CLASSES:
        for k in range(2):
            write_video(tmp_path / "train" / c / f"{c}_{k}.mp4", 8 + k)
    return tmp_path


def train_set(root, **kw):
    return build_dataset("folder", root, card=make_card(CLASSES), split="train", mode="train", **kw)


def test_off_by_default_and_a_mixing_run_draws_the_same_clips_first(root):
    plain, off, mixed = train_set(root), train_set(root, mix_background=0.0), train_set(root, mix_background=0.5)
    for i in range(len(plain)):
        a, la = plain[i]
        b, lb = off[i]
        m, lm = mixed[i]
        assert torch.equal(a, b) and la == lb == lm  # the label is the clip's own
        assert not torch.equal(a, m)
        # only a blend with a still: m = (1 - lam) a + lam s, lam in [0, 0.5), s the same at every
        # time step, so a time difference of m is (1 - lam) times a's (the added image does not move)
        da, dm = (a[1:] - a[:1]).flatten(), (m[1:] - m[:1]).flatten()
        keep = float((dm @ da) / (da @ da))
        assert 0.5 < keep <= 1.0, (i, keep)
        still = m - keep * a
        assert torch.allclose(still, still[:1].expand_as(still), atol=1e-4), i


def test_reproducible_by_seed_epoch_and_index(root):
    ds = train_set(root, mix_background=0.5)
    a = ds[2][0]
    assert torch.equal(a, train_set(root, mix_background=0.5)[2][0])
    ds.set_epoch(1)
    assert not torch.equal(a, ds[2][0])


def test_bad_values_and_test_mode_are_refused(root):
    for bad in (-0.1, 1.0, 2.0):
        with pytest.raises(ValueError, match=r"mix_background must be in \[0, 1\)"):
            train_set(root, mix_background=bad)
    with pytest.raises(ValueError, match="mix_background is training augmentation"):
        build_dataset("folder", root, card=make_card(CLASSES), split="train", mode="test", mix_background=0.3)


def test_an_undecodable_other_video_leaves_the_clip_unmixed_and_is_marked(root, caplog):
    for c in CLASSES:  # every other video is corrupt: the one good clip cannot be mixed
        for k in range(2):
            if (c, k) != ("a", 0):
                write_corrupt(root / "train" / c / f"{c}_{k}.mp4")
    plain, mixed = train_set(root), train_set(root, mix_background=0.9)
    clip, label = mixed[0]
    assert label == 0 and torch.equal(clip, plain[0][0])
    assert "skipping undecodable video" in caplog.text
