"""TSN segment sampling (NumPy only): which T frames of an N-frame video make a clip.

The single definition, used by training and evaluation (``tsi.data.datasets``), calibration
(``calib.clips``) and the live runtime's sliding window (``runtime.window``): a model sees at run
time exactly the frame pattern it was trained on.

The video is cut into T equal segments of ``N / T`` frames (segments need not hold a whole number
of frames). Training takes one uniformly random frame per segment; testing takes the centre frame
of each segment, ``floor((2t + 1) * N / (2T))`` (the model card's "TSN centre sampling"). Test
positions are computed in integers, so they are exact for every N and T (a float ``N / T`` can land
just below a whole frame and pick the frame before). Segment t lies entirely before segment t + 1,
so the indices are non-decreasing and within ``[0, N - 1]``; a video shorter than T frames has
segments shorter than a frame, and frames repeat (``0, 0, 1, 1, 2, ...``).

Multi-clip testing takes ``clips`` clips whose frames sit ``(c + 0.5) / clips`` of the way through
each segment for clip c; one clip is the centre sampling.

A model card's ``span_frames`` S (0: the whole video) is the window of source frames one clip
covers: the live runtime keeps the last S frames of a stream, so every S consecutive frames of a
video are a window it shows the model. :func:`span_train_indices` therefore samples a window of
``min(S, N)`` consecutive frames at a uniformly random position, then one random frame per segment
of it; :func:`span_test_indices` takes the centred window (clip c of ``clips`` sits ``(c + 0.5) /
clips`` of the way along the positions a window can have), then the segment centres. A video no
longer than S is one window: the whole video, sampled as above (multi-clip testing then offsets
the frames within the segments).
"""

from __future__ import annotations

import numpy as np

__all__ = ["MODES", "segment_indices", "multi_clip_indices", "window_frames", "span_train_indices",
           "span_test_indices"]

MODES = ("train", "test")


def _check(num_frames: int, frames: int) -> None:
    if num_frames < 1:
        raise ValueError(f"cannot sample from a video of {num_frames} frames")
    if frames < 1:
        raise ValueError(f"clip length T must be >= 1 (got {frames})")


def segment_indices(num_frames: int, frames: int, mode: str = "test", *,
                    rng: np.random.Generator | None = None) -> np.ndarray:
    """T frame indices (int64) of one clip: random per segment (``train``) or segment centres
    (``test``)."""
    _check(num_frames, frames)
    t = np.arange(frames, dtype=np.int64)
    if mode == "test":
        return ((2 * t + 1) * num_frames) // (2 * frames)
    if mode == "train":
        if rng is None:
            raise ValueError("train sampling needs an rng (np.random.Generator)")
        seg = num_frames / frames
        pos = seg * (t + rng.random(frames))
        # float positions -> frame indices; the clip guards against x.999999 rounding up to N
        return np.clip(np.floor(pos).astype(np.int64), 0, num_frames - 1)
    raise ValueError(f"mode must be one of {MODES} (got {mode!r})")


def multi_clip_indices(num_frames: int, frames: int, clips: int = 10) -> np.ndarray:
    """(clips, T) indices for multi-clip testing: clip c samples ``(c + 0.5) / clips`` into each
    segment, ``floor((2 * clips * t + 2c + 1) * N / (2 * clips * T))``; one clip equals test
    :func:`segment_indices`."""
    _check(num_frames, frames)
    if clips < 1:
        raise ValueError(f"clips must be >= 1 (got {clips})")
    t = np.arange(frames, dtype=np.int64)[None, :]
    c = np.arange(clips, dtype=np.int64)[:, None]
    return ((2 * clips * t + 2 * c + 1) * num_frames) // (2 * clips * frames)


def window_frames(num_frames: int, span: int) -> int:
    """Source frames one clip of an N-frame video covers: ``span`` (0: the whole video), at most N."""
    return num_frames if span <= 0 else min(int(span), num_frames)


def span_train_indices(num_frames: int, frames: int, span: int, *, rng: np.random.Generator) -> np.ndarray:
    """T training indices: a random window of :func:`window_frames` consecutive frames, then one
    random frame per segment of it. A video no longer than the span draws no position, so its
    clips are those of :func:`segment_indices` ``train`` with the same ``rng``."""
    _check(num_frames, frames)
    if rng is None:
        raise ValueError("train sampling needs an rng (np.random.Generator)")
    n = window_frames(num_frames, span)
    start = int(rng.integers(0, num_frames - n + 1)) if n < num_frames else 0
    return start + segment_indices(n, frames, "train", rng=rng)


def span_test_indices(num_frames: int, frames: int, span: int, clips: int = 1) -> np.ndarray:
    """(clips, T) test indices: windows of :func:`window_frames` frames at ``(c + 0.5) / clips`` of
    the positions they can take (one clip: the centred window), segment centres in each; a video no
    longer than the span gives :func:`multi_clip_indices`."""
    _check(num_frames, frames)
    if clips < 1:
        raise ValueError(f"clips must be >= 1 (got {clips})")
    n = window_frames(num_frames, span)
    room = num_frames - n
    if not room:
        return multi_clip_indices(num_frames, frames, clips)
    starts = ((2 * np.arange(clips, dtype=np.int64) + 1) * room) // (2 * clips)
    return starts[:, None] + segment_indices(n, frames, "test")[None, :]
