"""What a recogniser feeds a stream's frames into: the interface the sliding window
(:class:`runtime.window.SlidingWindow`, a clip due every stride) and the online step
(:class:`runtime.online.OnlineWindow`, a step due every sampled frame) both implement, so
:class:`runtime.recognizer.LiveRecognizer` has no mode of its own. What is due, the scheduler runs
for every stream at once with the window's :attr:`StreamWindow.batch` (one batched inference)."""

from __future__ import annotations

import abc
from typing import Any, Callable, ClassVar, NamedTuple, Protocol, Sequence

import numpy as np

from runtime.frames import Frame

__all__ = ["Batch", "Pushed", "ShortStream", "StreamWindow"]


class Pushed(NamedTuple):
    """What one frame pushed did: ``due``: an inference is due (the scheduler runs it in its batch:
    :attr:`StreamWindow.batch`, then the recogniser's ``apply``); ``ms``: the stages it timed
    (``preprocess``)."""

    due: bool
    ms: dict[str, float]


class Batch(Protocol):
    """Made once per run as ``batch(model, streams)``; called with the windows whose inference is
    due, returns (logits, one row per window, and what each window's :meth:`StreamWindow.scores`
    takes with them: a step's next state, or None)."""

    def __call__(self, windows: Sequence["StreamWindow"]) -> tuple[np.ndarray, Sequence[Any]]: ...


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
    """Frames of one stream in; inferences due, then scores, out. ``stride``: source frames between
    two scores; ``span``: source frames one score sees; ``resets_what``: what a gap resets (for the
    log); ``every_due``: each due inference must run before the next frame is pushed (a step
    advances a state), else a live stream may skip to its newest due clip; ``batch``: what runs
    the due inferences of several streams; ``tracks``: rows of a batch each due inference takes."""

    stride: int
    span: int
    resets_what: str
    tracks: int = 1
    every_due: ClassVar[bool] = False
    batch: ClassVar[Callable[[Any, int], Batch]]

    @abc.abstractmethod
    def describe(self) -> tuple[str, str]:
        """(how it runs, a detail or "") for the run's log line."""

    @abc.abstractmethod
    def push(self, frame: Frame) -> Pushed:
        """One frame of the stream (oldest first)."""

    @abc.abstractmethod
    def reset(self) -> None:
        """Forget the stream so far (a gap)."""

    @abc.abstractmethod
    def clip_into(self, out: np.ndarray) -> np.ndarray:
        """The due input written into ``out`` (a row of a batch: a clip ``(T, 3, S, S)``, a frame)."""

    @abc.abstractmethod
    def scores(self, logits: np.ndarray, carried: Any = None) -> np.ndarray | None:
        """The due inference's ``logits`` (classes,) (and what the batch returned with them) ->
        the class probabilities to score, or None (not yet: an online phase before T frames)."""

    @abc.abstractmethod
    def finish_short(self, pad: bool, infer: Callable[[np.ndarray], np.ndarray], who: str
                     ) -> ShortStream | None:
        """A stream that ended by itself before its first score: classified once from what it
        has when ``pad`` (None when there is nothing to classify, or not ``pad``; either is
        logged). ``infer``: clips ``(N, T, 3, S, S)`` -> logits; ``who``: the log prefix."""
