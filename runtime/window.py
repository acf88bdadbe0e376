"""The sliding window of preprocessed frames that feeds the model.

Each frame is preprocessed once, as it arrives, straight into a slot of a preallocated ring of the
last ``span`` frames (``span = card.span_frames``, or ``card.frames`` when the card has no span).
A clip takes ``T = card.frames`` of them exactly as training and evaluation sample a video of
``span`` frames: :func:`runtime.sampling.segment_indices` in ``test`` mode (TSN centre sampling,
see :class:`runtime.card.ModelCard`), the centre frame of each of T equal segments of the window.
When ``span`` is a multiple of T that is every ``card.frame_step``-th frame, starting
``frame_step // 2`` frames into the window; a span shorter than T repeats frames, as training does
on a video that short. Inference is due once the ring is full and then every
``stride`` frames. Nothing is allocated per frame or per clip.

:class:`SlidingWindow` is the ring as a recogniser's :class:`runtime.stream_window.StreamWindow`:
its clips are inferred by the scheduler, batched over the streams whose clips are due.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

import numpy as np

from runtime.card import ModelCard
from runtime.frames import Frame
from runtime.preprocess import FramePreprocessor
from runtime.sampling import segment_indices
from runtime.smoothing import softmax
from runtime.stream_window import Pushed, ShortStream, StreamWindow

log = logging.getLogger(__name__)

__all__ = ["ClipBatch", "ClipWindow", "SlidingWindow", "WINDOW_STRIDE"]

WINDOW_STRIDE = 4  # the sliding window's default: a clip every 4 source frames


class ClipWindow:
    """Ring buffer of preprocessed frames; :meth:`push` says when a clip is due, :meth:`clip` makes it.

    ``clip()`` returns the same preallocated ``(1, T, 3, S, S)`` float32 array every time (it is
    overwritten by the next call): copy it if you keep it."""

    def __init__(self, card: ModelCard, stride: int = 1,
                 preprocessor: FramePreprocessor | None = None) -> None:
        if stride < 1:
            raise ValueError(f"stride must be >= 1 (got {stride})")
        self.card = card
        self.stride = int(stride)
        self.span = card.span_frames if card.span_frames > 0 else card.frames
        self.preprocess = preprocessor or FramePreprocessor(card)
        s = card.input_size
        self._ring = np.zeros((self.span, 3, s, s), dtype=np.float32)
        self._indices = np.full(self.span, -1, dtype=np.int64)  # source frame index per slot
        self._times = np.zeros(self.span, dtype=np.float64)  # pts_s per slot
        # positions (0 = oldest) of the T sampled frames in the window: training's test sampling
        self._offsets = segment_indices(self.span, card.frames, "test")
        self._slots = np.empty(card.frames, dtype=np.int64)
        self._clip = np.zeros((1, card.frames, 3, s, s), dtype=np.float32)
        self.count = 0  # frames pushed since the last reset

    def reset(self) -> None:
        self._ring.fill(0.0)
        self._indices.fill(-1)
        self._times.fill(0.0)
        self.count = 0

    @property
    def full(self) -> bool:
        return self.count >= self.span

    def push(self, frame_bgr: np.ndarray, index: int | None = None, pts_s: float = 0.0) -> bool:
        """Preprocess one BGR frame into the ring. Returns True when a clip is due now: the ring has
        just become full, or ``stride`` more frames arrived since the last due clip."""
        slot = self.count % self.span
        self.preprocess(frame_bgr, out=self._ring[slot])
        self._indices[slot] = self.count if index is None else index
        self._times[slot] = pts_s
        self.count += 1
        return self.due()

    def due(self) -> bool:
        """Whether the frame just pushed completes a clip (see :meth:`push`)."""
        return self.full and (self.count - self.span) % self.stride == 0

    def _update_slots(self) -> np.ndarray:
        if not self.full:
            raise RuntimeError(f"window not full yet ({self.count}/{self.span} frames)")
        np.add(self._offsets, self.count - self.span, out=self._slots)
        np.remainder(self._slots, self.span, out=self._slots)
        return self._slots

    def clip(self, out: np.ndarray | None = None) -> np.ndarray:
        """The current ``(1, T, 3, S, S)`` clip (a reused buffer), or written into ``out``
        ``(T, 3, S, S)`` (a row of a batch) and ``out`` returned."""
        if out is None:
            np.take(self._ring, self._update_slots(), axis=0, out=self._clip[0])
            return self._clip
        np.take(self._ring, self._update_slots(), axis=0, out=out)
        return out

    def padded_clip(self) -> np.ndarray:
        """A ``(1, T, 3, S, S)`` clip from a window that never filled (a clip shorter than the
        span): the ``count`` frames are centred in the span and the window is padded on both sides
        by repeating the first and the last frame, then sampled as usual (same frame spacing as a
        full window, so motion keeps its speed)."""
        n = self.count
        if n == 0:
            raise RuntimeError("window is empty")
        if n >= self.span:
            return self.clip()
        left = (self.span - n) // 2
        slots = np.clip(self._offsets - left, 0, n - 1)  # the ring has not wrapped: slot = frame
        np.take(self._ring, slots, axis=0, out=self._clip[0])
        return self._clip

    def clip_frame_indices(self) -> np.ndarray:
        """Source frame indices of the T frames of the current clip (oldest first)."""
        return self._indices[self._update_slots()].copy()

    def newest(self) -> tuple[int, float]:
        """(source index, pts_s) of the newest frame in the window."""
        if self.count == 0:
            raise RuntimeError("window is empty")
        slot = (self.count - 1) % self.span
        return int(self._indices[slot]), float(self._times[slot])


class ClipBatch:
    """The due clips of several streams' :class:`SlidingWindow` as one batch through the backend
    (``Backend.infer_batch``: chunks where its batch is fixed)."""

    def __init__(self, backend, streams: int) -> None:
        self.backend = backend
        self._clips = np.zeros((streams, *backend.card.input_shape), np.float32)

    def __call__(self, windows) -> tuple[np.ndarray, list[None]]:
        clips = self._clips[:len(windows)]
        for w, row in zip(windows, clips):
            w.clip_into(row)
        return self.backend.infer_batch(clips), [None] * len(windows)


class SlidingWindow(StreamWindow):
    """A clip model's stream: every frame preprocessed into a :class:`ClipWindow`; a clip is due
    every ``stride`` frames once the window is full (the scheduler infers it)."""

    resets_what = "window"
    batch = ClipBatch

    def __init__(self, card: ModelCard, stride: int | None = None) -> None:
        self.window = ClipWindow(card, WINDOW_STRIDE if stride is None else stride)
        self.stride, self.span = self.window.stride, self.window.span

    def describe(self) -> tuple[str, str]:
        return "sliding window", ""

    def push(self, frame: Frame) -> Pushed:
        t = time.perf_counter()
        due = self.window.push(frame.image, frame.index, frame.pts_s)
        return Pushed(due, {"preprocess": (time.perf_counter() - t) * 1e3})

    def reset(self) -> None:
        self.window.reset()

    def clip_into(self, out: np.ndarray) -> np.ndarray:
        return self.window.clip(out=out)

    def scores(self, logits: np.ndarray, carried: object = None) -> np.ndarray:
        return softmax(logits)

    def finish_short(self, pad: bool, infer: Callable[[np.ndarray], np.ndarray], who: str
                     ) -> ShortStream | None:
        """A clip shorter than the span: classified once with a padded window."""
        win = self.window
        if not 0 < win.count < win.span:
            return None
        if not pad:
            log.warning("%sthe clip has %d frames, fewer than the model's span of %d: no "
                        "window, nothing classified (without --no-pad-short it is classified "
                        "once with a padded window)", who, win.count, win.span)
            return None
        log.warning("%sthe clip has %d frames, fewer than the model's span of %d: "
                    "classified once with a padded window (marked \"padded\")", who,
                    win.count, win.span)
        clip = win.padded_clip()
        t = time.perf_counter()
        logits = infer(clip)
        index, pts_s = win.newest()
        return ShortStream(softmax(logits[0]), (time.perf_counter() - t) * 1e3, True, index, pts_s)
