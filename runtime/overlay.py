"""Draw the top-k labels, FPS and per-stage latencies on a frame (in place), in a translucent box;
tile the frames of several streams into one mosaic for the window."""

from __future__ import annotations

from typing import Mapping, Sequence

import cv2
import numpy as np

__all__ = ["draw_overlay", "mosaic", "STAGE_NAMES"]

# short names shown on the frame for the latency stages
STAGE_NAMES = {"capture": "cap", "preprocess": "pre", "inference": "inf", "end_to_end": "e2e"}
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_WHITE, _GREEN, _GREY = (255, 255, 255), (80, 220, 80), (170, 170, 170)


def draw_overlay(
    frame: np.ndarray,
    top: Sequence[tuple[str, float]],
    *,
    fps: float | None = None,
    latencies_ms: Mapping[str, float] | None = None,
    action: str | None = None,
    alpha: float = 0.55,
) -> np.ndarray:
    """Annotate a BGR uint8 frame in place and return it. ``top``: (label, score) best first;
    ``action``: the label currently recognised as an event (drawn green); ``latencies_ms``: stage ->
    milliseconds (``capture``, ``preprocess``, ``inference``, ``end_to_end``)."""
    h, w = frame.shape[:2]
    scale = max(0.4, min(1.0, h / 720.0 * 0.8))
    thick = 1 if scale < 0.6 else 2
    line_h = int(round(44 * scale)) + 4
    pad = int(round(8 * scale)) + 2

    lines: list[tuple[str, tuple[int, int, int], float | None]] = []
    for label, score in top:
        colour = _GREEN if label == action else _WHITE
        lines.append((f"{label} {score:.2f}", colour, score))
    stats = []
    if fps is not None:
        stats.append(f"{fps:.1f} FPS")
    if latencies_ms:
        stats.extend(f"{STAGE_NAMES.get(k, k)} {v:.1f}" for k, v in latencies_ms.items())
    if stats:
        lines.append(((" | ".join(stats)) + (" ms" if latencies_ms else ""), _GREY, None))
    if not lines:
        return frame

    text_w = max(cv2.getTextSize(t, _FONT, scale, thick)[0][0] for t, _, _ in lines)
    box_w = min(w, text_w + 2 * pad)
    box_h = min(h, line_h * len(lines) + pad)
    roi = frame[:box_h, :box_w]
    np.multiply(roi, 1.0 - alpha, out=roi, casting="unsafe")  # darken: translucent black box
    for i, (text, colour, score) in enumerate(lines):
        y = pad + line_h * i + int(line_h * 0.7)
        if score is not None:  # a score bar under the label
            bar = int((box_w - 2 * pad) * float(np.clip(score, 0.0, 1.0)))
            y_bar = y + max(4, int(round(13 * scale)))
            cv2.line(frame, (pad, y_bar), (pad + bar, y_bar), colour, max(1, thick), cv2.LINE_AA)
        cv2.putText(frame, text, (pad, y), _FONT, scale, colour, thick, cv2.LINE_AA)
    return frame


def mosaic(images: Sequence[np.ndarray | None], names: Sequence[str] | None = None,
           tile: tuple[int, int] = (480, 270), cols: int | None = None) -> np.ndarray:
    """The frames of several streams in a grid (``cols`` columns, default about square), each
    resized to fit a ``tile`` (width, height) cell keeping its aspect ratio and labelled with its
    name; ``None`` (no frame yet) is a black cell marked "waiting"."""
    n = len(images)
    if n == 0:
        raise ValueError("mosaic of no images")
    cols = cols or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    tw, th = tile
    out = np.zeros((rows * th, cols * tw, 3), np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        cell = out[r * th:(r + 1) * th, c * tw:(c + 1) * tw]
        name = names[i] if names is not None else str(i)
        if img is None:
            cv2.putText(cell, f"{name}: waiting", (8, th // 2), _FONT, 0.6, _GREY, 1, cv2.LINE_AA)
            continue
        h, w = img.shape[:2]
        scale = min(tw / w, th / h)
        nw, nh = max(1, int(w * scale)), max(1, int(h * scale))
        y0, x0 = (th - nh) // 2, (tw - nw) // 2
        cell[y0:y0 + nh, x0:x0 + nw] = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA)
        cv2.putText(cell, name, (8, th - 10), _FONT, 0.6, _GREEN, 1, cv2.LINE_AA)
    return out
