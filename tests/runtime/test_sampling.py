import numpy as np
import pytest

from runtime.sampling import multi_clip_indices, segment_indices


@pytest.mark.parametrize("n", [1, 3, 7, 8, 9, 31, 32, 100])
@pytest.mark.parametrize("t", [1, 4, 8, 16])
def test_indices_in_range_and_ordered(n, t):
    rng = np.random.default_rng(n * 100 + t)
    for idx in [segment_indices(n, t, "test")] + [segment_indices(n, t, "train", rng=rng) for _ in range(20)]:
        assert idx.shape == (t,) and idx.dtype == np.int64
        assert idx.min() >= 0 and idx.max() <= n - 1
        assert np.all(np.diff(idx) >= 0)
    multi = multi_clip_indices(n, t, clips=10)
    assert multi.shape == (10, t) and multi.dtype == np.int64 and multi.min() >= 0 and multi.max() <= n - 1
    assert np.all(np.diff(multi, axis=1) >= 0)
    assert np.array_equal(multi_clip_indices(n, t, clips=1)[0], segment_indices(n, t, "test"))


def test_segment_positions():
    assert segment_indices(32, 8, "test").tolist() == [2, 6, 10, 14, 18, 22, 26, 30]
    assert segment_indices(8, 4, "test").tolist() == [1, 3, 5, 7]  # every 2nd frame, from 1
    assert segment_indices(10, 4, "test").tolist() == [1, 3, 6, 8]  # N not a multiple of T
    assert segment_indices(3, 6, "test").tolist() == [0, 0, 1, 1, 2, 2]  # short video: repeats
    # one random frame inside each segment; every frame of a segment can be drawn
    rng = np.random.default_rng(0)
    draws = np.stack([segment_indices(32, 8, "train", rng=rng) for _ in range(400)])
    for t in range(8):
        assert set(draws[:, t].tolist()) == set(range(4 * t, 4 * t + 4))
    # 10 clips are evenly offset inside the segments and distinct when the segments are long enough
    multi = multi_clip_indices(100, 10, clips=10)
    assert multi[:, 0].tolist() == list(range(10)) and len({tuple(r) for r in multi}) == 10


def test_centres_are_exact_where_float_division_is_not():
    # 30 / 11 in floating point puts the centre of segment 5 (exactly frame 15) at 14.999...;
    # the integer form picks frame 15, the true centre
    assert segment_indices(30, 11, "test")[5] == 15
    # exact rational positions, checked for every N <= 120, T <= 20 (and 3 or 10 clips)
    from fractions import Fraction
    for n in range(1, 121):
        for t in range(1, 21):
            want = [int(Fraction(2 * i + 1, 2 * t) * n) for i in range(t)]
            assert segment_indices(n, t, "test").tolist() == want, (n, t)
            for clips in (3, 10):
                want = [[int(Fraction(2 * clips * i + 2 * c + 1, 2 * clips * t) * n) for i in range(t)]
                        for c in range(clips)]
                assert multi_clip_indices(n, t, clips).tolist() == want, (n, t, clips)


def test_bad_arguments():
    with pytest.raises(ValueError, match="needs an rng"):
        segment_indices(10, 4, "train")
    with pytest.raises(ValueError, match="mode"):
        segment_indices(10, 4, "val")
    with pytest.raises(ValueError, match="0 frames"):
        segment_indices(0, 4, "test")
    with pytest.raises(ValueError, match="T must be >= 1"):
        segment_indices(10, 0, "test")
    with pytest.raises(ValueError, match="clips must be >= 1"):
        multi_clip_indices(10, 4, clips=0)


def test_a_span_shorter_than_the_video_is_a_window_anywhere_in_training_and_centred_in_testing():
    from runtime.sampling import span_test_indices, span_train_indices
    rng = np.random.default_rng(0)
    draws = np.stack([span_train_indices(64, 8, 32, rng=rng) for _ in range(2000)])
    # every clip lies inside 32 consecutive frames, and the window reaches both ends of the video
    assert np.all(draws[:, -1] - draws[:, 0] < 32)
    assert draws.min() == 0 and draws.max() == 63
    starts = draws[:, 0] - draws[:, 0] % 4  # the window's start up to the first segment's draw
    assert len(set(starts.tolist())) > 8
    # testing: the centred window (16..47), then its segment centres; clips spread over the positions
    assert span_test_indices(64, 8, 32)[0].tolist() == (16 + segment_indices(32, 8, "test")).tolist()
    spread = span_test_indices(64, 8, 32, clips=4)
    assert spread[:, 0].tolist() == [4 + 2, 12 + 2, 20 + 2, 28 + 2]
    assert np.all(spread[:, -1] - spread[:, 0] < 32)


@pytest.mark.parametrize("n, span", [(32, 32), (20, 32), (40, 0), (7, 8)])
def test_a_video_no_longer_than_the_span_samples_as_the_whole_video(n, span):
    from runtime.sampling import span_test_indices, span_train_indices
    a, b = np.random.default_rng(5), np.random.default_rng(5)
    assert span_train_indices(n, 8, span, rng=a).tolist() == segment_indices(n, 8, "train", rng=b).tolist()
    assert np.array_equal(span_test_indices(n, 8, span, clips=3), multi_clip_indices(n, 8, clips=3))
