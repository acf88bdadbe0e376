"""Online recognition with a streaming (``mode="online"``) model: one inference per sampled frame,
the temporal state carried between calls.

A causal TSI model exported with ``export.stream_export`` is a step graph: ``frame`` (1, 3, S, S)
and named state tensors in, ``logits`` of that frame and each state as ``<name>.next`` out. This
module is the torch-free library that runs it; ``tsi-live`` picks it (:class:`OnlineWindow`) when
the model's card says ``mode: online``:

- **Step models** (:func:`runtime.backends.open_model`, by the file's suffix and the card's mode):
  :class:`runtime.backends.onnxruntime_step.OnnxRuntimeStep` (``.onnx``; the state lives in NumPy
  arrays fed back each call) and :class:`runtime.backends.tensorrt_step.TensorRTStep`
  (``.engine``/``.plan`` built from a step graph; the state stays on the GPU in two buffers per
  tensor that swap roles each call). Both implement :class:`runtime.step_graph.StepModel`
  (``new_state``, ``reset_state``, ``run``; ``run_batch`` for several streams at once).
- **Sampling as in training.** The model was trained on frames ``card.frame_step`` source frames
  apart, so each state must see frames that far apart. An output every ``stride`` source frames
  (``stride`` dividing ``frame_step``) therefore keeps ``P = frame_step / stride`` interleaved
  streams ("phases"), each with its own state: source frame i (a multiple of ``stride``) goes to
  phase ``(i / stride) mod P``. One backbone pass per output, whatever the stride; the sliding
  window (:mod:`runtime.window`) recomputes T frames per output instead.
- **Outputs averaged over the last T.** A phase's scores are the softmax of the mean of its last T
  per-frame logits (the clip model's TSN consensus over T frames); nothing is reported before a
  phase has seen T frames since its reset (as the sliding window waits for a full window).
- **Bounded memory** (``memory`` M, ``tsi-live --online-memory M``; ``auto`` there, 3T/2 rounded
  down: :func:`resolve_memory`). A state reaches back to the phase's reset, so in a continuous video
  the last action is still in it when the next begins, and the model was trained on clips of T
  frames from the zero state (``--warm-state``: after one other clip). With M (>= T) each phase
  keeps K tracks (states) that forget in turn, each reset every K*s sampled frames, s = M - T + 1
  apart (:func:`memory_tracks`: K = ceil((T - 1) / s) + 1), and reports the youngest track that
  has T frames: it has seen between T and M. A step runs the frame on every track (one batch of
  K): K steps an output (3 at T = 8 and M = 12), fewer than the window's T; M = T is the causal
  model on the last T frames alone (K = T).
- **Reset on a stream gap.** When the source skips more than ``max_gap`` frames (dropped frames,
  a reconnect, a seek) every phase restarts from the zero state: the state would otherwise link
  frames the model never saw together. :meth:`OnlineRecognizer.reset` does it by hand.
"""

from __future__ import annotations

import argparse
import logging
import math
import time
from collections import deque
from typing import Callable

import numpy as np

from runtime.frames import Frame
from runtime.preprocess import FramePreprocessor
from runtime.smoothing import softmax
from runtime.step_graph import StepModel
from runtime.stream_window import Pushed, ShortStream, StreamWindow

log = logging.getLogger(__name__)

__all__ = ["AUTO_MEMORY", "OnlineRecognizer", "OnlineWindow", "StepBatch", "memory_arg", "memory_tracks",
           "resolve_memory"]

AUTO_MEMORY = "auto"  # the bound of resolve_memory: 3T/2 sampled frames


def resolve_memory(memory: int | str | None, frames: int) -> int | None:
    """The bound in sampled frames: ``memory`` itself (None: unbounded), or 3T/2 (rounded down) for
    :data:`AUTO_MEMORY`; refuses one below T (no track could report) in one line."""
    if memory == AUTO_MEMORY:
        return 3 * frames // 2
    if memory is not None and (isinstance(memory, bool) or not isinstance(memory, int) or memory < frames):
        raise ValueError(f"online memory must be {AUTO_MEMORY!r}, none or a number of sampled frames >= T = {frames} "
                         f"(the reported state needs T steps since its reset); got {memory!r}")
    return memory


def memory_arg(text: str) -> int | str | None:
    """``--online-memory``'s value: ``auto``, ``none`` (None) or a number of sampled frames."""
    word = text.strip().lower()
    if word in (AUTO_MEMORY, "none"):
        return None if word == "none" else AUTO_MEMORY
    if not word.isdigit() or int(word) < 1:
        raise argparse.ArgumentTypeError(f"want {AUTO_MEMORY}, none or a number of sampled frames >= 1 (got {text!r})")
    return int(word)


def memory_tracks(frames: int, memory: int | None) -> tuple[int, int | None]:
    """(tracks K, spacing s) per phase for a bound of ``memory`` sampled frames (see the module
    docstring): (1, None) unbounded."""
    if memory is None:
        return 1, None
    spacing = memory - frames + 1
    return math.ceil((frames - 1) / spacing) + 1, spacing


class _Track:
    """One state and the logits it gave since its reset."""

    def __init__(self, step: StepModel, frames: int) -> None:
        self.state = step.new_state()
        self.logits: deque[np.ndarray] = deque(maxlen=frames)
        self.age = 0  # steps since its reset

    def reset(self, step: StepModel) -> None:
        self.state = step.reset_state(self.state)
        self.logits.clear()
        self.age = 0


class _Phase:
    """A phase's tracks: one whose state reaches back to the stream's start (``memory`` None), or K
    that forget in turn, one reset every s steps (:func:`memory_tracks`; see the module docstring);
    a step runs the frame on every track."""

    def __init__(self, step: StepModel, frames: int, memory: int | None) -> None:
        self.step, self.frames = step, frames
        count, self.spacing = memory_tracks(frames, memory)
        self.tracks = [_Track(step, frames) for _ in range(count)]
        self.steps = 0  # steps since the phase's reset

    def reset(self) -> None:
        for t in self.tracks:
            t.reset(self.step)
        self.steps = 0

    def due_states(self) -> list[object]:
        """The tracks' states for the phase's next step, after its scheduled forgetting."""
        if self.spacing and self.steps and self.steps % self.spacing == 0:
            self.tracks[(self.steps // self.spacing) % len(self.tracks)].reset(self.step)  # 1 at s, 2 at 2s, ...
        return [t.state for t in self.tracks]

    def stepped(self, logits: np.ndarray, states: list[object]) -> deque[np.ndarray]:
        """The step's logits (one row per track) and next states; returns the logits of the youngest
        track with T frames (else of the oldest, which has fewer than T)."""
        for t, row, state in zip(self.tracks, logits, states):
            t.state = state
            t.logits.append(row)
            t.age += 1
        self.steps += 1
        full = [t for t in self.tracks if t.age >= self.frames]
        return (min(full, key=lambda t: t.age) if full else max(self.tracks, key=lambda t: t.age)).logits


class OnlineRecognizer:
    """BGR frames in (with their source index), class probabilities out (see the module docstring).

    ``push`` returns the probabilities of the phase that just ran once it has T frames since its
    reset, else None (also None for frames between two strides, which are not even preprocessed).
    """

    def __init__(self, step: StepModel, *, stride: int | None = None, max_gap: int | None = None,
                 memory: int | str | None = None) -> None:
        card = step.card
        self.step, self.card = step, card
        self.frame_step = card.frame_step
        self.stride = self.frame_step if stride is None else int(stride)
        if self.stride < 1 or self.frame_step % self.stride:
            raise ValueError(f"stride must divide the card's frame step {self.frame_step} "
                             f"(span {card.span_frames} / T {card.frames}); got {stride}")
        memory = resolve_memory(memory, card.frames)
        self.memory = memory
        self.phases = [_Phase(step, card.frames, memory) for _ in range(self.frame_step // self.stride)]
        self.max_gap = self.frame_step if max_gap is None else int(max_gap)
        self.preprocess = FramePreprocessor(card)
        self.frame = np.zeros((3, card.input_size, card.input_size), np.float32)  # the sampled frame
        self._last_index: int | None = None
        self._count = 0  # frames pushed since the reset (the index when the source gives none)
        self.inferences = self.resets = 0
        self.last_ms: dict[str, float] = {}  # the last pushed frame's preprocess / inference time

    def reset(self) -> None:
        for p in self.phases:
            p.reset()
        self._last_index = None
        self._count = 0
        self.resets += 1

    def advance(self, frame_bgr: np.ndarray, index: int | None = None) -> _Phase | None:
        """The frame's bookkeeping (a gap resets every phase) and, when it is a sampled frame, its
        preprocessing into :attr:`frame`: returns the phase whose step is due (run it on
        :attr:`frame` and pass the logits to :meth:`stepped`), else None."""
        self.last_ms = {}
        if index is None:
            index = self._count if self._last_index is None else self._last_index + 1
        if self._last_index is not None and (index <= self._last_index or index - self._last_index > self.max_gap):
            log.info("stream gap (frame %d after %d): online state reset", index, self._last_index)
            self.reset()
        if self._last_index is None:
            self._origin = index  # phases count from the first frame after a reset
        self._last_index = index
        self._count += 1
        k = index - self._origin
        if k % self.stride:
            return None
        t0 = time.perf_counter()
        self.preprocess(frame_bgr, out=self.frame)
        self.last_ms = {"preprocess": (time.perf_counter() - t0) * 1e3}
        return self.phases[(k // self.stride) % len(self.phases)]

    def stepped(self, phase: _Phase, logits: np.ndarray, states: list[object]) -> np.ndarray | None:
        """A due step's result: the frame's ``logits`` (one row per track of the phase,
        :meth:`_Phase.due_states`) and the tracks' next ``states``; returns the softmax of the mean of
        the last T logits of the phase's oldest track, or None before it has T."""
        self.inferences += len(states)
        last = phase.stepped(logits, states)
        if len(last) < self.card.frames:
            return None
        return softmax(np.mean(last, axis=0))

    def push(self, frame_bgr: np.ndarray, index: int | None = None) -> np.ndarray | None:
        """:meth:`advance`, then the due step run alone: the probabilities, or None."""
        phase = self.advance(frame_bgr, index)
        if phase is None:
            return None
        t0 = time.perf_counter()
        states = phase.due_states()
        if len(states) == 1:
            logits, state = self.step.run(self.frame, states[0])
            logits, states = logits[None], [state]
        else:
            logits, states = self.step.run_batch(np.repeat(self.frame[None], len(states), 0), states)
        self.last_ms["inference"] = (time.perf_counter() - t0) * 1e3
        return self.stepped(phase, logits, states)

    def partial(self) -> tuple[np.ndarray, int] | None:
        """(softmax of the mean logits, frames) of the phase with the most frames, when none has T
        yet and one has some: a stream shorter than T sampled frames, classified once at its end."""
        best = max((t for p in self.phases for t in p.tracks), key=lambda t: len(t.logits))
        if not best.logits or len(best.logits) >= self.card.frames:
            return None
        return softmax(np.mean(best.logits, axis=0)), len(best.logits)


class StepBatch:
    """The due steps of several streams' :class:`OnlineWindow` as one
    :meth:`~runtime.step_graph.StepModel.run_batch` (one inference where the step model takes a
    dynamic batch): a row per track of each window's due phase; each window's logits (one row per
    track) and next states handed back together (:meth:`OnlineWindow.scores`)."""

    def __init__(self, step: StepModel, streams: int) -> None:
        s = step.card.input_size
        self.step = step
        self._frames = np.zeros((streams, 3, s, s), np.float32)

    def __call__(self, windows: list[OnlineWindow]) -> tuple[list[np.ndarray], list[list[object]]]:
        counts = [len(w.due_states) for w in windows]
        if sum(counts) > len(self._frames):
            self._frames = np.zeros((sum(counts), *self._frames.shape[1:]), np.float32)
        frames = self._frames[:sum(counts)]
        at = 0
        for w, k in zip(windows, counts):
            w.clip_into(frames[at])
            frames[at + 1:at + k] = frames[at]
            at += k
        logits, states = self.step.run_batch(frames, [s for w in windows for s in w.due_states])
        edges = np.cumsum([0, *counts])
        return ([logits[a:b] for a, b in zip(edges[:-1], edges[1:])],
                [states[a:b] for a, b in zip(edges[:-1], edges[1:])])


class OnlineWindow(StreamWindow):
    """An online model's stream: every frame through the :class:`OnlineRecognizer`; a sampled frame
    makes a step due, which must run before the next frame is pushed (it advances the state), so
    none is skipped. The scheduler runs the due steps of every stream in one batch
    (:class:`StepBatch`)."""

    resets_what = "online state"
    every_due = True
    batch = StepBatch

    def __init__(self, step: StepModel, stride: int | None = None, memory: int | str | None = None) -> None:
        self.online = OnlineRecognizer(step, stride=stride, memory=memory)
        self.tracks = len(self.online.phases[0].tracks)  # rows per step
        card = step.card
        self.stride, self.span = self.online.stride, card.span_frames or card.frames
        self.frames = card.frames
        self._last: Frame | None = None  # the newest frame pushed
        self._due = None  # the phase whose step is due
        self.due_states: list[object] = []  # its tracks' states, taken once per step

    def describe(self) -> tuple[str, str]:
        memory = ("" if self.online.memory is None else
                  f", memory {self.online.memory} sampled frames: {self.tracks} forgetting tracks per phase")
        return "online: one step per sampled frame", f" ({len(self.online.phases)} phase(s) per stream{memory})"

    def push(self, frame: Frame) -> Pushed:
        self._due = self.online.advance(frame.image, frame.index)
        self.due_states = [] if self._due is None else self._due.due_states()
        self._last = frame
        return Pushed(self._due is not None, self.online.last_ms)

    def reset(self) -> None:
        self.online.reset()
        self._due, self.due_states = None, []

    def clip_into(self, out: np.ndarray) -> np.ndarray:
        """The due step's frame written into ``out`` ``(3, S, S)`` (a row of a batch)."""
        out[...] = self.online.frame
        return out

    def scores(self, logits: np.ndarray, carried: list[object] | None = None) -> np.ndarray | None:
        """``logits``: one row per track of the due phase; ``carried``: the tracks' next states
        (:class:`StepBatch` returns both)."""
        phase, self._due, self.due_states = self._due, None, []
        return self.online.stepped(phase, logits, carried)

    def finish_short(self, pad: bool, infer: Callable[[np.ndarray], np.ndarray], who: str
                     ) -> ShortStream | None:
        """A stream that ended before any phase had T sampled frames: scored once from the mean of
        the frames it has, as the sliding window pads a short clip (``infer`` is not needed)."""
        part = self.online.partial()
        if part is None:
            return None
        if not pad:
            log.warning("%sthe stream ended after %d sampled frames, fewer than the model's T=%d: nothing "
                        "classified (without --no-pad-short it is classified once from those frames)",
                        who, part[1], self.frames)
            return None
        log.warning("%sthe stream ended after %d sampled frames, fewer than the model's T=%d: classified "
                    "once from the mean of their logits (marked \"padded\")", who, part[1], self.frames)
        last = self._last  # the newest frame (a stream that ended has one)
        return ShortStream(part[0], 0.0, False, last.index, last.pts_s)
