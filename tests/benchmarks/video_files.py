"""The videos a generator wrote, and their first frames (the unseen-motion scenes' tests)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from runtime.common.video import VIDEO_SUFFIXES


def first_frame(path: Path) -> np.ndarray:
    cap = cv2.VideoCapture(str(path))
    ok, frame = cap.read()
    cap.release()
    assert ok, path
    return frame


def videos(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in VIDEO_SUFFIXES)
