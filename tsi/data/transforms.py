"""Clip transforms: a list of BGR uint8 frames -> a normalised float32 tensor (T, 3, S, S).

* :class:`TrainTransform` -- the paper's augmentation (Sec. 4.2, TSN's ``GroupMultiScaleCrop``):
  resize the frame as the card says (``runtime.preprocess.resize_frame``: short side to
  ``card.resize_short``, or the whole frame squashed to its square); pick a crop whose sides are drawn from
  ``scales`` x short side (width and height at most ``max_distort`` scale steps apart: scale jitter
  with a bounded aspect change) at one of the 4 corners or the centre; resize it to S x S; optional
  horizontal flip. One crop and one flip decision per clip, applied to every frame.
* :class:`TestTransform` -- 1 view: :class:`runtime.preprocess.FramePreprocessor` per frame. The
  runtime applies the same object to live frames, so training, evaluation and deployment share one
  implementation of the test preprocessing.
* :class:`ThreeCropTransform` -- the 30-view protocol's crops (Sec. 4.2): short side to
  ``resize_short``, three ``resize_short``-square crops along the long side (left/centre/right or
  top/centre/bottom), each resized to S x S -> (3, T, 3, S, S); a ``square`` card's three crops are
  the same whole frame.

Normalisation (RGB order, mean/std) reuses the per-channel scale and bias of
``FramePreprocessor``, so every transform normalises exactly as the card says.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from runtime.card import ModelCard
from runtime.preprocess import FramePreprocessor, resize_frame, resized_size

TSN_SCALES = (1.0, 0.875, 0.75, 0.66)


def _normalise(crops: Sequence[np.ndarray], pp: FramePreprocessor) -> np.ndarray:
    """(S, S, 3) uint8 BGR crops -> (T, 3, S, S) float32, as ``FramePreprocessor`` normalises."""
    clip = np.stack(crops)
    if pp.to_rgb:
        clip = clip[..., ::-1]
    chw = clip.transpose(0, 3, 1, 2).astype(np.float32)
    chw *= pp.scale
    chw += pp.bias
    return chw


def _check_frames(frames: Sequence[np.ndarray]) -> None:
    if len(frames) == 0:
        raise ValueError("a clip needs at least one frame")
    f = frames[0]
    if f is None or f.ndim != 3 or f.shape[2] != 3 or f.dtype != np.uint8:
        desc = None if f is None else (f.shape, f.dtype)
        raise ValueError(f"expected BGR uint8 frames of shape (H, W, 3), got {desc}")


@dataclass(frozen=True)
class CropParams:
    """One clip's augmentation: crop box (in the short-side-resized frame) and flip."""

    x: int
    y: int
    w: int
    h: int
    flip: bool


def symmetric_flip_map(flip_map: Mapping[int, int] | None) -> dict[int, int]:
    """Complete {a: b} with {b: a}; a label mapped two ways is an error."""
    out: dict[int, int] = {}
    for a, b in (flip_map or {}).items():
        for src, dst in ((int(a), int(b)), (int(b), int(a))):
            if out.get(src, dst) != dst:
                raise ValueError(f"flip map sends label {src} to both {out[src]} and {dst}")
            out[src] = dst
    return out


class TrainTransform:
    """TSN multi-scale corner crop + scale jitter, resize to S, optional flip, normalise."""

    def __init__(self, card: ModelCard, *, scales: Sequence[float] = TSN_SCALES, max_distort: int = 1,
                 more_fix_crop: bool = False, flip: bool = False,
                 flip_map: Mapping[int, int] | None = None):
        if not scales or any(not 0 < s <= 1 for s in scales):
            raise ValueError(f"scales must be in (0, 1] (got {tuple(scales)})")
        if flip_map and not flip:
            raise ValueError("a flip map was given but flipping is off (flip=False)")
        self.card = card
        self.size = card.input_size
        self.scales = tuple(float(s) for s in scales)
        self.max_distort = int(max_distort)
        self.more_fix_crop = more_fix_crop
        self.flip = flip
        self.flip_map = symmetric_flip_map(flip_map)
        self.pp = FramePreprocessor(card)

    def _offsets(self, img_w: int, img_h: int, crop_w: int, crop_h: int) -> list[tuple[int, int]]:
        ws, hs = (img_w - crop_w) // 4, (img_h - crop_h) // 4
        ret = [(0, 0), (4 * ws, 0), (0, 4 * hs), (4 * ws, 4 * hs), (2 * ws, 2 * hs)]
        if self.more_fix_crop:
            ret += [(0, 2 * hs), (4 * ws, 2 * hs), (2 * ws, 4 * hs), (2 * ws, 0),
                    (ws, hs), (3 * ws, hs), (ws, 3 * hs), (3 * ws, 3 * hs)]
        return ret

    def sample_params(self, img_w: int, img_h: int, rng: np.random.Generator) -> CropParams:
        """Draw one clip's crop for a frame of ``img_w`` x ``img_h`` (already short-side resized)."""
        base = min(img_w, img_h)
        sizes = [int(base * s) for s in self.scales]
        # TSN snaps a side within 3 px of the input size onto it (no needless resize)
        sizes = [self.size if abs(s - self.size) < 3 else s for s in sizes]
        pairs = [(w, h) for i, h in enumerate(sizes) for j, w in enumerate(sizes)
                 if abs(i - j) <= self.max_distort]
        w, h = pairs[int(rng.integers(len(pairs)))]
        w, h = min(w, img_w), min(h, img_h)
        offsets = self._offsets(img_w, img_h, w, h)
        x, y = offsets[int(rng.integers(len(offsets)))]
        flip = bool(self.flip and rng.random() < 0.5)
        return CropParams(x, y, w, h, flip)

    def apply(self, frames: Sequence[np.ndarray], params: CropParams) -> torch.Tensor:
        """Apply one crop/flip to every frame -> (T, 3, S, S)."""
        _check_frames(frames)
        crops = []
        for frame in frames:
            img = resize_frame(frame, self.card)
            img = img[params.y : params.y + params.h, params.x : params.x + params.w]
            if img.shape[:2] != (self.size, self.size):
                img = cv2.resize(img, (self.size, self.size), interpolation=cv2.INTER_LINEAR)
            if params.flip:
                img = img[:, ::-1]
            crops.append(img)
        return torch.from_numpy(_normalise(crops, self.pp))

    def __call__(self, frames: Sequence[np.ndarray], label: int, *,
                 rng: np.random.Generator) -> tuple[torch.Tensor, int]:
        """Augment one clip; a flipped clip's label goes through the flip map."""
        _check_frames(frames)
        w, h = resized_size(frames[0].shape[1], frames[0].shape[0], self.card)
        params = self.sample_params(w, h, rng)
        if params.flip:
            label = self.flip_map.get(int(label), int(label))
        return self.apply(frames, params), label


class TestTransform:
    """1-view test transform: ``FramePreprocessor`` on every frame, stacked -> (T, 3, S, S)."""

    __test__ = False  # not a pytest test class despite the name

    def __init__(self, card: ModelCard):
        self.pp = FramePreprocessor(card)

    def __call__(self, frames: Sequence[np.ndarray]) -> torch.Tensor:
        _check_frames(frames)
        out = np.empty((len(frames), 3, self.pp.size, self.pp.size), dtype=np.float32)
        for i, frame in enumerate(frames):
            self.pp(frame, out=out[i])
        return torch.from_numpy(out)


class ThreeCropTransform:
    """3 full-short-side square crops along the long side, each resized to S -> (3, T, 3, S, S)."""

    def __init__(self, card: ModelCard):
        self.card = card
        self.size = card.input_size
        self.short = card.resize_short
        self.pp = FramePreprocessor(card)

    def boxes(self, img_w: int, img_h: int) -> list[tuple[int, int]]:
        """(x, y) of the three ``short`` x ``short`` crops: start, centre, end of the long side."""
        s = self.short
        if img_w >= img_h:
            return [(0, 0), ((img_w - s) // 2, 0), (img_w - s, 0)]
        return [(0, 0), (0, (img_h - s) // 2), (0, img_h - s)]

    def __call__(self, frames: Sequence[np.ndarray]) -> torch.Tensor:
        _check_frames(frames)
        resized = [resize_frame(f, self.card) for f in frames]
        h, w = resized[0].shape[:2]
        views = []
        for x, y in self.boxes(w, h):
            crops = []
            for img in resized:
                crop = img[y : y + self.short, x : x + self.short]
                if self.short != self.size:
                    crop = cv2.resize(crop, (self.size, self.size), interpolation=cv2.INTER_LINEAR)
                crops.append(crop)
            views.append(_normalise(crops, self.pp))
        return torch.from_numpy(np.stack(views))
