"""What a recogniser feeds a stream's frames into: the interface the sliding window
(:class:`runtime.window.SlidingWindow`, clips inferred in the scheduler's batches) and the online
step (:class:`runtime.online.OnlineWindow`, one inference per sampled frame, run as it comes) both
implement, so :class:`runtime.recognizer.LiveRecognizer` has no mode of its own."""

from __future__ import annotations

import abc
from typing import Callable, NamedTuple

import numpy as np

from runtime.frames import Frame

__all__ = ["Pushed", "ShortStream", "StreamWindow"]


class Pushed(NamedTuple):
    """What one frame pushed did: ``due``: a clip is due (the scheduler infers it in its batch:
    :meth:`StreamWindow.clip_into`, then the recogniser's ``apply``); ``probs``: the class
    probabilities the window computed itself (an online step), else None; ``ms``: the stages it
    timed (``preprocess``; ``inference`` when it ran one)."""

    due: bool
    probs: np.ndarray | None
    ms: dict[str, float]


class ShortStream(NamedTuple):
    """A stream that ended before its first score, scored once from what it has (marked
    "padded"): the probabilities, the inference time, whether an inference ran for it, and the
    newest frame's index and stream time."""

    probs: np.ndarray
    inference_ms: float
    inferred: bool
    index: int
    pts_s: float


class StreamWindow(abc.ABC):
    """Frames of one stream in; clips due, or scores, out. ``stride``: source frames between two
    scores; ``span``: source frames one score sees; ``resets_what``: what a gap resets (for the
    log)."""

    stride: int
    span: int
    resets_what: str

    @abc.abstractmethod
    def describe(self) -> tuple[str, str]:
        """(how it runs, a detail or "") for the run's log line."""

    @abc.abstractmethod
    def push(self, frame: Frame) -> Pushed:
        """One frame of the stream (oldest first)."""

    @abc.abstractmethod
    def reset(self) -> None:
        """Forget the stream so far (a gap)."""

    def clip_into(self, out: np.ndarray) -> np.ndarray:
        """The due clip written into ``out`` ``(T, 3, S, S)`` (a row of a batch)."""
        raise RuntimeError(f"{type(self).__name__} never has a clip due")

    @abc.abstractmethod
    def finish_short(self, pad: bool, infer: Callable[[np.ndarray], np.ndarray], who: str
                     ) -> ShortStream | None:
        """A stream that ended by itself before its first score: classified once from what it
        has when ``pad`` (None when there is nothing to classify, or not ``pad``; either is
        logged). ``infer``: clips ``(N, T, 3, S, S)`` -> logits; ``who``: the log prefix."""
