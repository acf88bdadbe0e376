"""Draw the top-k labels, FPS and per-stage latencies on a frame (in place), in a translucent box."""

from __future__ import annotations

from typing import Mapping, Sequence

import cv2
import numpy as np

__all__ = ["draw_overlay", "STAGE_NAMES"]

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
