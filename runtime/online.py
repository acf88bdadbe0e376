"""Online recognition with a streaming (``mode="online"``) model: one inference per sampled frame,
the temporal state carried between calls.

A causal TSI model exported with ``export.stream_export`` is a step graph: ``frame`` (1, 3, S, S)
and named state tensors in, ``logits`` of that frame and each state as ``<name>.next`` out. This
module is the torch-free library that runs it; ``runtime.live`` (``tsi-live``) picks it when the
model's card says ``mode: online``:

- **Step models** (:func:`open_step`, by the file's suffix): :class:`OnnxRuntimeStep` (``.onnx``;
  the state lives in NumPy arrays fed back each call) and
  :class:`runtime.backends.tensorrt_step.TensorRTStep` (``.engine``/``.plan`` built from a step
  graph; the state stays on the GPU in two buffers per tensor that swap roles each call). Both
  have :meth:`StepModel.new_state`, :meth:`StepModel.reset_state` and :meth:`StepModel.run`.
- **Sampling as in training.** The model was trained on frames ``card.frame_step`` source frames
  apart, so each state must see frames that far apart. An output every ``stride`` source frames
  (``stride`` dividing ``frame_step``) therefore keeps ``P = frame_step / stride`` interleaved
  streams ("phases"), each with its own state: source frame i (a multiple of ``stride``) goes to
  phase ``(i / stride) mod P``. One backbone pass per output, whatever the stride; the sliding
  window (:mod:`runtime.window`) recomputes T frames per output instead.
- **Outputs averaged over the last T.** A phase's scores are the softmax of the mean of its last T
  per-frame logits (the clip model's TSN consensus over T frames); nothing is reported before a
  phase has seen T frames since its reset (as the sliding window waits for a full window).
- **Reset on a stream gap.** When the source skips more than ``max_gap`` frames (dropped frames,
  a reconnect, a seek) every phase restarts from the zero state: the state would otherwise link
  frames the model never saw together. :meth:`OnlineRecognizer.reset` does it by hand.
"""

from __future__ import annotations

import abc
import logging
import os
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np

from runtime.backends.base import BackendError, check_model_file
from runtime.backends.onnxruntime_backend import FLOAT_TYPES
from runtime.card import ModelCard
from runtime.preprocess import FramePreprocessor
from runtime.smoothing import softmax
from runtime.step_graph import FRAME_INPUT, LOGITS_OUTPUT, STATE_OUT_SUFFIX, check_step_io

log = logging.getLogger(__name__)

__all__ = ["OnlineRecognizer", "OnnxRuntimeStep", "StepModel", "open_model", "open_step"]

class StepModel(abc.ABC):
    """A loaded step model: ``frame`` + state in, that frame's logits + the next state out.

    A state is whatever :meth:`new_state` returns (host arrays, or GPU buffers): pass it to
    :meth:`run`, keep the state it returns, :meth:`reset_state` it on a stream gap. Several states
    (streams, phases) can share one model."""

    name = "step"
    fixed_batch = None  # (the live runtime's log line: a step is always batch 1)

    def __init__(self) -> None:
        self.card: ModelCard | None = None
        self.card_source = ""
        self.model_path: Path | None = None
        self.state_spec: dict[str, tuple[tuple[int, ...], np.dtype]] = {}

    @property
    def state_bytes(self) -> int:
        """Bytes of one state (one stream or phase)."""
        return sum(int(np.prod(shape)) * np.dtype(dt).itemsize for shape, dt in self.state_spec.values())

    def _loaded(self, kind: str) -> None:
        log.info("online step %s (%s): %d state tensors, %.1f KiB per stream", self.model_path.name, kind,
                 len(self.state_spec), self.state_bytes / 1024)

    @abc.abstractmethod
    def new_state(self) -> Any:
        """A zero state (the start of a stream)."""

    @abc.abstractmethod
    def reset_state(self, state: Any) -> Any:
        """``state`` set back to zero (in place where it can be); returns the state to use."""

    @abc.abstractmethod
    def run(self, frame: np.ndarray, state: Any) -> tuple[np.ndarray, Any]:
        """``frame`` (3, S, S) or (1, 3, S, S) float32 -> (logits (classes,) float32, next state)."""

    def close(self) -> None:
        """Release what the model holds (GPU buffers); a no-op by default."""

    def __enter__(self) -> "StepModel":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class OnnxRuntimeStep(StepModel):
    """A step graph in onnxruntime (CPU, CUDA or TensorRT execution provider); the state is a dict of
    NumPy arrays, the graph's ``.next`` outputs of the previous call."""

    name = "onnxruntime"

    def __init__(self, model_path: str | os.PathLike, card: ModelCard | str | os.PathLike | None = None,
                 *, providers: list[str] | None = None, threads: int | None = None, session: Any = None) -> None:
        """``session``: an onnxruntime session of ``model_path`` already open (see :func:`open_model`)."""
        from runtime.backends.onnxruntime_backend import open_session, session_card

        super().__init__()
        path = check_model_file(model_path)
        session = session or open_session(path, providers, threads)
        self.card, self.card_source = session_card(path, session, card)

        def io(args) -> dict[str, tuple[tuple, Any]]:  # dtype None: not float32/float16
            return {a.name: (tuple(a.shape), FLOAT_TYPES.get(a.type)) for a in args}

        self.state_spec = check_step_io(path, self.card, self.card_source, io(session.get_inputs()),
                                        io(session.get_outputs()))
        self.model_path, self.session = path, session
        self.frame_dtype = next(FLOAT_TYPES[a.type] for a in session.get_inputs() if a.name == FRAME_INPUT)
        self._outputs = [LOGITS_OUTPUT, *(n + STATE_OUT_SUFFIX for n in self.state_spec)]
        self._loaded(f"onnxruntime {', '.join(session.get_providers())}")

    def new_state(self) -> dict[str, np.ndarray]:
        return {n: np.zeros(shape, dt) for n, (shape, dt) in self.state_spec.items()}

    def reset_state(self, state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        for a in state.values():
            a.fill(0)
        return state

    def run(self, frame: np.ndarray, state: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        x = frame.reshape(1, *frame.shape[-3:]).astype(self.frame_dtype, copy=False)
        res = self.session.run(self._outputs, {FRAME_INPUT: x, **state})
        return np.asarray(res[0][0], np.float32), dict(zip(self.state_spec, res[1:]))


def open_step(model_path: str | os.PathLike, kind: str = "auto", *,
              card: ModelCard | str | os.PathLike | None = None, providers: list[str] | None = None,
              threads: int | None = None, plugin: str | os.PathLike | None = None, cuda_graph: bool = False,
              device: int | None = None, session: Any = None) -> StepModel:
    """Load a step model with the backend its suffix calls for (the rules of
    :func:`runtime.backends.open_backend`: ``.onnx`` onnxruntime, ``.engine``/``.plan`` TensorRT;
    options of another backend are refused). ``session``: the ``.onnx`` already open in onnxruntime."""
    from runtime.backends import check_backend_options

    path = check_model_file(model_path)
    kind = check_backend_options(path, kind, providers=providers, threads=threads, plugin=plugin,
                                 cuda_graph=cuda_graph)
    if kind == "onnxruntime":
        return OnnxRuntimeStep(path, card, providers=providers, threads=threads, session=session)
    if kind == "tensorrt":
        from runtime.backends.tensorrt_step import TensorRTStep

        step = TensorRTStep(plugin=plugin, cuda_graph=cuda_graph, device=device or 0)
        try:
            return step.load(path, card)
        except BaseException:
            step.close()
            raise
    raise BackendError(f"{path.name}: an online step model is an .onnx step graph or a TensorRT engine "
                       "built from one (.engine/.plan); the torch backend runs clip models only")


def open_model(model_path: str | os.PathLike, kind: str = "auto", *,
               card: ModelCard | str | os.PathLike | None = None, providers: list[str] | None = None,
               threads: int | None = None, plugin: str | os.PathLike | None = None, cuda_graph: bool = False,
               device: int | None = None) -> Any:
    """The model as its card says: a clip backend (:func:`runtime.backends.open_backend`) for
    ``mode: clip``, a :class:`StepModel` (:func:`open_step`) for ``mode: online``."""
    from runtime.backends import OnlineModelError, open_backend

    options = dict(card=card, providers=providers, threads=threads, plugin=plugin, cuda_graph=cuda_graph,
                   device=device)
    try:
        return open_backend(model_path, kind, **options)
    except OnlineModelError as e:  # the graph the clip backend opened to read the card is reused
        log.info("%s: its card says mode 'online': opened as a step model", model_path)
        return open_step(model_path, kind, session=e.session, **options)


class _Phase:
    def __init__(self, step: StepModel, frames: int) -> None:
        self.step = step
        self.state = step.new_state()
        self.logits: deque[np.ndarray] = deque(maxlen=frames)

    def reset(self) -> None:
        self.state = self.step.reset_state(self.state)
        self.logits.clear()


class OnlineRecognizer:
    """BGR frames in (with their source index), class probabilities out (see the module docstring).

    ``push`` returns the probabilities of the phase that just ran once it has T frames since its
    reset, else None (also None for frames between two strides, which are not even preprocessed).
    """

    def __init__(self, step: StepModel, *, stride: int | None = None, max_gap: int | None = None) -> None:
        card = step.card
        self.step, self.card = step, card
        self.frame_step = card.frame_step
        self.stride = self.frame_step if stride is None else int(stride)
        if self.stride < 1 or self.frame_step % self.stride:
            raise ValueError(f"stride must divide the card's frame step {self.frame_step} "
                             f"(span {card.span_frames} / T {card.frames}); got {stride}")
        self.phases = [_Phase(step, card.frames) for _ in range(self.frame_step // self.stride)]
        self.max_gap = self.frame_step if max_gap is None else int(max_gap)
        self.preprocess = FramePreprocessor(card)
        self._frame = np.zeros((3, card.input_size, card.input_size), np.float32)
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

    def push(self, frame_bgr: np.ndarray, index: int | None = None) -> np.ndarray | None:
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
        phase = self.phases[(k // self.stride) % len(self.phases)]
        t0 = time.perf_counter()
        self.preprocess(frame_bgr, out=self._frame)
        t1 = time.perf_counter()
        logits, phase.state = self.step.run(self._frame, phase.state)
        self.last_ms = {"preprocess": (t1 - t0) * 1e3, "inference": (time.perf_counter() - t1) * 1e3}
        self.inferences += 1
        phase.logits.append(logits)
        if len(phase.logits) < self.card.frames:
            return None
        return softmax(np.mean(phase.logits, axis=0))

    def partial(self) -> tuple[np.ndarray, int] | None:
        """(softmax of the mean logits, frames) of the phase with the most frames, when none has T
        yet and one has some: a stream shorter than T sampled frames, classified once at its end."""
        best = max(self.phases, key=lambda p: len(p.logits))
        if not best.logits or len(best.logits) >= self.card.frames:
            return None
        return softmax(np.mean(best.logits, axis=0)), len(best.logits)
