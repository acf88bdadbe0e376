"""TSN segment sampling (pure NumPy): which T frames of an N-frame video make a clip.

The video is cut into T equal segments of ``N / T`` frames (a float: segments need not hold a whole
number of frames). Training takes one uniformly random frame per segment, testing the centre frame
of each segment (the model card's "TSN centre sampling"). Because segment t lies entirely before
segment t + 1, the indices are always non-decreasing and within ``[0, N - 1]``; a video shorter
than T frames gets segments shorter than a frame, so frames repeat (0, 0, 1, 1, 2, ...).

10-clip testing takes 10 clips whose frames sit at evenly spaced offsets inside each segment,
``(c + 0.5) / clips`` of the way through it for clip c; clip count 1 is the centre sampling.
"""

from __future__ import annotations

import numpy as np

MODES = ("train", "test")


def _check(num_frames: int, frames: int) -> None:
    if num_frames < 1:
        raise ValueError(f"cannot sample from a video of {num_frames} frames")
    if frames < 1:
        raise ValueError(f"clip length T must be >= 1 (got {frames})")


def _floor_in_range(pos: np.ndarray, num_frames: int) -> np.ndarray:
    # float positions -> frame indices; the clip guards against x.999999 rounding up to N
    return np.clip(np.floor(pos).astype(np.int64), 0, num_frames - 1)


def segment_indices(num_frames: int, frames: int, mode: str = "test", *,
                    rng: np.random.Generator | None = None) -> np.ndarray:
    """T frame indices of one clip: random per segment (``train``) or segment centres (``test``)."""
    _check(num_frames, frames)
    seg = num_frames / frames
    starts = seg * np.arange(frames, dtype=np.float64)
    if mode == "train":
        if rng is None:
            raise ValueError("train sampling needs an rng (np.random.Generator)")
        return _floor_in_range(starts + seg * rng.random(frames), num_frames)
    if mode == "test":
        return _floor_in_range(seg * (np.arange(frames, dtype=np.float64) + 0.5), num_frames)
    raise ValueError(f"mode must be one of {MODES} (got {mode!r})")


def multi_clip_indices(num_frames: int, frames: int, clips: int = 10) -> np.ndarray:
    """(clips, T) indices for multi-clip testing: clip c samples ``(c + 0.5) / clips`` into each
    segment, so the clips are evenly offset and clip count 1 equals test ``segment_indices``."""
    _check(num_frames, frames)
    if clips < 1:
        raise ValueError(f"clips must be >= 1 (got {clips})")
    seg = num_frames / frames
    offsets = (np.arange(clips, dtype=np.float64) + 0.5) / clips
    pos = seg * (np.arange(frames, dtype=np.float64)[None, :] + offsets[:, None])
    return _floor_in_range(pos, num_frames)
