"""Per-frame preprocessing from the model card (torch-free: OpenCV + NumPy).

This is the deterministic *test* transform of the training pipeline: the training side's test
transform (``tsi.data.transforms``) is checked against it to 1e-6 by the tests. The runtime applies it
once per frame as the frame arrives, never once per window.
"""

from __future__ import annotations

import cv2
import numpy as np

from runtime.card import ModelCard


def short_side_size(w: int, h: int, short: int) -> tuple[int, int]:
    """(width, height) of a ``w`` x ``h`` frame whose shorter side is resized to ``short``."""
    if h <= w:
        return max(short, int(round(w * short / h))), short
    return short, max(short, int(round(h * short / w)))


def resized_size(w: int, h: int, card: ModelCard) -> tuple[int, int]:
    """(width, height) of the frame the crops are cut from, as ``card.resize`` says."""
    if card.resize == "square":
        return card.resize_short, card.resize_short
    return short_side_size(w, h, card.resize_short)


def _resize_to(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if frame.shape[1::-1] == size:
        return frame
    return cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR)


def resize_short_side(frame: np.ndarray, short: int) -> np.ndarray:
    """Resize so the shorter side is ``short`` pixels, keeping the aspect ratio (bilinear)."""
    h, w = frame.shape[:2]
    return _resize_to(frame, short_side_size(w, h, short))


def resize_frame(frame: np.ndarray, card: ModelCard) -> np.ndarray:
    """The frame the crops are cut from, as ``card.resize`` says: short side to ``resize_short``
    (aspect kept) or the whole frame squashed to ``resize_short`` x ``resize_short`` (bilinear)."""
    h, w = frame.shape[:2]
    return _resize_to(frame, resized_size(w, h, card))


def center_crop(frame: np.ndarray, size: int) -> np.ndarray:
    h, w = frame.shape[:2]
    if h < size or w < size:
        raise ValueError(f"frame {w}x{h} is smaller than the crop {size}x{size}")
    top = (h - size) // 2
    left = (w - size) // 2
    return frame[top : top + size, left : left + size]


class FramePreprocessor:
    """BGR uint8 frame (H, W, 3) -> normalised float32 (3, S, S), as the card says."""

    def __init__(self, card: ModelCard):
        self.card = card
        self.size = card.input_size
        self.to_rgb = card.color == "RGB"
        # fold /255, mean and std into one multiply-add per channel: x * scale + bias
        mean = np.asarray(card.mean, dtype=np.float32)
        std = np.asarray(card.std, dtype=np.float32)
        self.scale = (1.0 / (255.0 * std)).astype(np.float32).reshape(3, 1, 1)
        self.bias = (-mean / std).astype(np.float32).reshape(3, 1, 1)

    def __call__(self, frame_bgr: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        if frame_bgr is None or frame_bgr.ndim != 3 or frame_bgr.shape[2] != 3:
            shape = None if frame_bgr is None else frame_bgr.shape
            raise ValueError(f"expected a BGR frame of shape (H, W, 3), got {shape}")
        if frame_bgr.dtype != np.uint8:
            raise ValueError(f"expected a uint8 frame, got {frame_bgr.dtype}")
        img = center_crop(resize_frame(frame_bgr, self.card), self.size)
        if self.to_rgb:
            img = img[:, :, ::-1]
        chw = np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32)
        if out is None:
            out = np.empty((3, self.size, self.size), dtype=np.float32)
        np.multiply(chw, self.scale, out=out)
        out += self.bias
        return out
