"""Tiny test videos written with OpenCV: frame i has a uniform grey level that encodes i."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

FOURCC = {".mp4": "mp4v", ".avi": "MJPG", ".mkv": "mp4v", ".webm": "VP80"}
STEP = 10  # grey levels 20, 30, ... 250: at most 24 frames (codecs shift a level by up to ~4)


def frame_for(i: int, w: int = 64, h: int = 48) -> np.ndarray:
    assert 0 <= i < 24, "the grey-level code holds 24 frames"
    img = np.full((h, w, 3), 20 + STEP * i, np.uint8)
    img[:, : w // 4, 0] = 200  # a blue bar on the left: BGR order and flips are visible
    return img


def index_of(frame: np.ndarray) -> int:
    """Decode the index of a frame made by :func:`frame_for` (robust to lossy codecs)."""
    w = frame.shape[1]
    return int(round((float(frame[:, w // 2 :].mean()) - 20) / STEP))


def write_video(path: Path, n: int, w: int = 64, h: int = 48, fps: float = 10.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*FOURCC[path.suffix]), fps, (w, h))
    assert writer.isOpened(), f"cannot write {path}"
    for i in range(n):
        writer.write(frame_for(i, w, h))
    writer.release()
    return path


def write_frame_folder(folder: Path, n: int, w: int = 64, h: int = 48, pattern: str = "{:d}.jpg") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):  # 1-based names without zero padding: only a natural sort orders them
        cv2.imwrite(str(folder / pattern.format(i + 1)), frame_for(i, w, h))
    return folder


def write_corrupt(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(np.random.default_rng(seed).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return path
