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
"""

from __future__ import annotations

import numpy as np

__all__ = ["MODES", "segment_indices", "multi_clip_indices"]

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
