"""Draw the top-k labels, FPS and per-stage latencies on a frame (in place), in a translucent box;
tile the frames of several streams into one mosaic for the window."""

from __future__ import annotations

from typing import Any, Iterator, Mapping, Sequence

import cv2
import numpy as np

__all__ = ["MAX_BOX_FRACTION", "MIN_FONT_SCALE", "MOSAIC_CANVAS", "STAGE_NAMES", "draw_overlay", "mosaic",
           "mosaic_tile", "text_style"]

# short names shown on the frame for the latency stages
STAGE_NAMES = {"capture": "cap", "preprocess": "pre", "inference": "inf", "end_to_end": "e2e"}
MIN_FONT_SCALE = 0.4  # the smallest text drawn: Hershey simplex about 9 pixels high, still legible
MAX_BOX_FRACTION = 0.35  # the most of a frame the overlay's box may cover
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_WHITE, _GREEN, _GREY = (255, 255, 255), (80, 220, 80), (170, 170, 170)


def text_style(height: int) -> tuple[float, int]:
    """(font scale, thickness) of the overlay on a frame ``height`` pixels high: the scale grows
    with the height (0.8 at 720 lines) and never goes below :data:`MIN_FONT_SCALE`."""
    scale = max(MIN_FONT_SCALE, height / 720.0 * 0.8)
    return scale, max(1, int(round(scale * 2)))


def _spacing(scale: float) -> tuple[int, int]:
    """(line height, padding) in pixels at font ``scale``."""
    return int(round(44 * scale)) + 4, int(round(8 * scale)) + 2


def _box(lines: Sequence[tuple[str, Any, Any]], scale: float, thick: int) -> tuple[int, int]:
    """(width, height) of the box around ``lines``."""
    line_h, pad = _spacing(scale)
    text_w = max(cv2.getTextSize(t, _FONT, scale, thick)[0][0] for t, _, _ in lines)
    return text_w + 2 * pad, line_h * len(lines) + pad


def _layouts(labels: list, full: list, short: list) -> Iterator[list]:
    """What to draw, richest first: every label and every stat; every label and the FPS; fewer
    labels and the FPS; the best label alone."""
    yield labels + full
    yield labels + short
    for n in range(len(labels) - 1, 0, -1):
        yield labels[:n] + short
    yield labels[:1]


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
    milliseconds (``capture``, ``preprocess``, ``inference``, ``end_to_end``).

    The text is sized from the frame's height (:func:`text_style`) and its box covers at most
    :data:`MAX_BOX_FRACTION` of the frame: on a small frame the latencies, then the lower labels
    are left out; a frame too small for even the best label at the smallest size gets nothing."""
    h, w = frame.shape[:2]
    scale, thick = text_style(h)
    line_h, pad = _spacing(scale)

    labels: list[tuple[str, tuple[int, int, int], float | None]] = [
        (f"{label} {score:.2f}", _GREEN if label == action else _WHITE, score) for label, score in top]
    short = [(f"{fps:.1f} FPS", _GREY, None)] if fps is not None else []
    stats = [t for t, _, _ in short]
    if latencies_ms:
        stats.extend(f"{STAGE_NAMES.get(k, k)} {v:.1f}" for k, v in latencies_ms.items())
    full = [(" | ".join(stats) + (" ms" if latencies_ms else ""), _GREY, None)] if stats else []
    if not labels:  # nothing recognised yet: the stats alone
        labels, full, short = full, [], []
    lines: list | None = None
    for candidate in _layouts(labels, full, short):
        if not candidate:
            continue
        box_w, box_h = _box(candidate, scale, thick)
        if box_w <= w and box_h <= h and box_w * box_h <= MAX_BOX_FRACTION * w * h:
            lines = candidate
            break
    if lines is None:
        return frame

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


MOSAIC_CANVAS = (1920, 1080)  # the largest mosaic (width, height): the window then scales it to the screen


def mosaic_tile(images: Sequence[np.ndarray | None], cols: int, rows: int) -> tuple[int, int]:
    """The (width, height) cell of a ``cols`` x ``rows`` mosaic: the largest frame's size, shrunk
    (aspect kept) so the grid fits :data:`MOSAIC_CANVAS` — a few large sources keep most of their
    pixels, and their overlay text its size; many share the canvas."""
    sizes = [img.shape[1::-1] for img in images if img is not None] or [(640, 360)]
    w, h = max(sizes, key=lambda s: s[0] * s[1])
    scale = min(1.0, MOSAIC_CANVAS[0] / (cols * w), MOSAIC_CANVAS[1] / (rows * h))
    return max(1, int(w * scale)), max(1, int(h * scale))


def mosaic(images: Sequence[np.ndarray | None], names: Sequence[str] | None = None,
           tile: tuple[int, int] | None = None, cols: int | None = None) -> np.ndarray:
    """The frames of several streams in a grid (``cols`` columns, default about square), each
    resized to fit a ``tile`` (width, height) cell (default :func:`mosaic_tile`) keeping its aspect
    ratio and labelled with its name at the overlay's text size for the cell; ``None`` (no frame
    yet) is a black cell marked "waiting"."""
    n = len(images)
    if n == 0:
        raise ValueError("mosaic of no images")
    cols = cols or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    tw, th = tile or mosaic_tile(images, cols, rows)
    scale, thick = text_style(th)
    _, pad = _spacing(scale)
    out = np.zeros((rows * th, cols * tw, 3), np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        cell = out[r * th:(r + 1) * th, c * tw:(c + 1) * tw]
        name = names[i] if names is not None else str(i)
        if img is None:
            cv2.putText(cell, f"{name}: waiting", (pad, th // 2), _FONT, scale, _GREY, thick, cv2.LINE_AA)
            continue
        h, w = img.shape[:2]
        fit = min(tw / w, th / h)
        nw, nh = max(1, int(w * fit)), max(1, int(h * fit))
        y0, x0 = (th - nh) // 2, (tw - nw) // 2
        cell[y0:y0 + nh, x0:x0 + nw] = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA)
        cv2.putText(cell, name, (pad, th - pad), _FONT, scale, _GREEN, thick, cv2.LINE_AA)
    return out
