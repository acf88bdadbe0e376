"""A clip for the runtime's throughput benchmarks: a textured background panning at a few pixels
per frame, so reading it costs real decoding and resizing work."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

__all__ = ["write_video"]


def write_video(path: Path, frames: int, seed: int, size=(320, 240), fps: float = 30.0) -> Path:
    """``frames`` frames of ``size`` (width, height) at ``fps``, mp4v, written to ``path``."""
    rng = np.random.default_rng(seed)
    w, h = size
    tex = cv2.resize(rng.integers(0, 255, (h // 8, 2 * w // 8, 3), dtype=np.uint8), (2 * w, h),
                     interpolation=cv2.INTER_LINEAR)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    if not writer.isOpened():
        raise RuntimeError(f"cannot write {path}")
    for i in range(frames):
        x = (3 * i) % w
        writer.write(np.ascontiguousarray(tex[:, x:x + w]))
    writer.release()
    return path
