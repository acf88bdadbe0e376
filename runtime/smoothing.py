"""Score smoothing over windows and the detector that turns the smoothed stream into action events.

Smoothing works on softmax probabilities: a moving average over the last ``n`` windows
(:class:`MeanSmoother`) or an exponential moving average (:class:`EmaSmoother`). The
:class:`EventDetector` reports an action while its smoothed score is top-1 *and* at least the
threshold; the event ends at the last window where that still held, when the top-1 label changes or
its score falls below the threshold (or at the end of the stream: :meth:`EventDetector.flush`).
A window is placed at its newest frame (the moment the model could first have seen it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

__all__ = [
    "ActionEvent",
    "EmaSmoother",
    "EventDetector",
    "MeanSmoother",
    "make_smoother",
    "softmax",
    "topk",
]


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax in float32."""
    x = np.asarray(logits, dtype=np.float32)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def topk(scores: np.ndarray, labels: Sequence[str], k: int) -> list[tuple[str, float]]:
    """The ``k`` best (label, score) pairs, best first."""
    k = max(1, min(k, len(scores)))
    idx = np.argsort(-scores, kind="stable")[:k]
    return [(labels[i], float(scores[i])) for i in idx]


class MeanSmoother:
    """Mean of the last ``n`` probability vectors (fewer at the start). ``update`` returns a reused
    buffer."""

    def __init__(self, num_classes: int, n: int = 5) -> None:
        if n < 1:
            raise ValueError(f"smoothing n must be >= 1 (got {n})")
        self.n = n
        self._ring = np.zeros((n, num_classes), dtype=np.float32)
        self._out = np.zeros(num_classes, dtype=np.float32)
        self.count = 0

    def update(self, probs: np.ndarray) -> np.ndarray:
        self._ring[self.count % self.n] = probs
        self.count += 1
        np.mean(self._ring[: min(self.count, self.n)], axis=0, out=self._out)
        return self._out

    def reset(self) -> None:
        self._ring.fill(0.0)
        self.count = 0


class EmaSmoother:
    """``s = alpha * p + (1 - alpha) * s``, starting from the first vector. ``update`` returns a
    reused buffer."""

    def __init__(self, num_classes: int, alpha: float = 0.3) -> None:
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"ema alpha must be in (0, 1] (got {alpha})")
        self.alpha = float(alpha)
        self._state = np.zeros(num_classes, dtype=np.float32)
        self.count = 0

    def update(self, probs: np.ndarray) -> np.ndarray:
        if self.count == 0:
            self._state[:] = probs
        else:
            self._state *= 1.0 - self.alpha
            self._state += self.alpha * np.asarray(probs, dtype=np.float32)
        self.count += 1
        return self._state

    def reset(self) -> None:
        self._state.fill(0.0)
        self.count = 0


def make_smoother(kind: str, num_classes: int, n: int = 5, alpha: float = 0.3):
    """``"mean"`` (moving average over ``n`` windows) or ``"ema"`` (factor ``alpha``)."""
    if kind == "mean":
        return MeanSmoother(num_classes, n)
    if kind == "ema":
        return EmaSmoother(num_classes, alpha)
    raise ValueError(f"smoothing must be 'mean' or 'ema' (got {kind!r})")


@dataclass(frozen=True)
class ActionEvent:
    """One recognised action: ``score`` is its peak smoothed score; frames and times are those of
    the first and last windows (their newest frames) in which it was recognised. ``padded``: it
    comes from the one padded window of a clip shorter than the model's span (written only when
    true)."""

    label: str
    score: float
    start_frame: int
    end_frame: int
    start_s: float
    end_s: float
    padded: bool = False

    def to_dict(self) -> dict:
        d = asdict(self)
        d["score"] = round(float(self.score), 6)
        d["start_s"] = round(float(self.start_s), 6)
        d["end_s"] = round(float(self.end_s), 6)
        if not self.padded:
            del d["padded"]
        return d


class EventDetector:
    """Smoothed scores per window -> :class:`ActionEvent` when an action ends."""

    def __init__(self, labels: Sequence[str], threshold: float = 0.5) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1] (got {threshold})")
        self.labels = tuple(labels)
        self.threshold = float(threshold)
        self._active: int | None = None
        self._peak = 0.0
        self._start = (0, 0.0)
        self._last = (0, 0.0)

    @property
    def current(self) -> tuple[str, float] | None:
        """The action being recognised now (label, peak score), if any."""
        if self._active is None:
            return None
        return self.labels[self._active], self._peak

    def update(self, scores: np.ndarray, frame_index: int, t_s: float) -> ActionEvent | None:
        """Feed one window's smoothed scores; returns the event that ended at this window, if any."""
        if len(scores) != len(self.labels):
            raise ValueError(f"{len(scores)} scores for {len(self.labels)} labels")
        best = int(np.argmax(scores))
        score = float(scores[best])
        now = best if score >= self.threshold else None
        ended = None
        if now != self._active:
            ended = self._close()
            if now is not None:
                self._active, self._peak, self._start = now, score, (frame_index, t_s)
        if self._active is not None:
            self._peak = max(self._peak, score)
            self._last = (frame_index, t_s)
        return ended

    def flush(self) -> ActionEvent | None:
        """End the current action (end of stream)."""
        return self._close()

    def _close(self) -> ActionEvent | None:
        if self._active is None:
            return None
        event = ActionEvent(self.labels[self._active], self._peak, self._start[0], self._last[0],
                            self._start[1], self._last[1])
        self._active = None
        self._peak = 0.0
        return event
