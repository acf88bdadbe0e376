"""The step-graph contract of an online (``mode: online``) model, stated once: ``tsi.streaming``
builds the step, ``export.stream_export`` writes it as ONNX, and the runtime checks and runs it.

Inputs: ``frame`` (N, 3, S, S) and each state tensor by name; outputs: ``logits`` (N, classes) of
that frame, then every state again as ``<name>.next``. N, the first axis of every input and output,
is 1, or dynamic in a graph exported with ``--dynamic-batch`` (one step for several streams, each
stream's state a row of the batched state tensors). :class:`StepModel` is what runs one (the
onnxruntime, OpenVINO and TensorRT step models implement it). Torch-free."""

from __future__ import annotations

import abc
import logging
from pathlib import Path
from typing import Any, Mapping, NamedTuple, Sequence

import numpy as np

from runtime.card import CardError, ModelCard

log = logging.getLogger(__name__)

__all__ = ["FRAME_INPUT", "LOGITS_OUTPUT", "STATE_OUT_SUFFIX", "StepIO", "StepModel", "check_step_io"]

FRAME_INPUT = "frame"
LOGITS_OUTPUT = "logits"
STATE_OUT_SUFFIX = ".next"


class StepIO(NamedTuple):
    """A checked step model's I/O: the state spec {name: (shape of one stream, batch 1; dtype)}
    (the inputs other than the frame, in order) and whether the batch axis is dynamic."""

    state_spec: dict[str, tuple[tuple[int, ...], np.dtype]]
    dynamic_batch: bool


def _static(d: Any) -> bool:
    return isinstance(d, (int, np.integer)) and d > 0


def _batch1(shape: tuple, dynamic: bool) -> tuple:
    """``shape`` with a dynamic batch axis read as 1 (one stream)."""
    return (1, *shape[1:]) if dynamic and shape and not _static(shape[0]) else tuple(shape)


def check_step_io(path: Path, card: ModelCard, card_source: str,
                  inputs: Mapping[str, tuple[tuple, np.dtype]],
                  outputs: Mapping[str, tuple[tuple, np.dtype]]) -> StepIO:
    """Check a step model's I/O ({name: (shape, dtype)}; a dimension that is not a positive int is
    dynamic) against the step-graph contract and its card. The batch axis is 1 everywhere, or
    dynamic everywhere (the frame's says which). A clip model or a card that does not say
    ``mode: online`` is a :class:`CardError` naming both."""
    if card.mode != "online":
        raise CardError(f"{path}: card {card_source} has mode={card.mode!r}; an online step model needs "
                        "mode 'online' (python -m export.stream_export writes it)")
    s = card.input_size
    frame = inputs.get(FRAME_INPUT)
    dynamic = frame is not None and len(frame[0]) == 4 and not _static(frame[0][0])
    inputs = {n: (_batch1(tuple(v[0]), dynamic), v[1]) for n, v in inputs.items()}
    outputs = {n: (_batch1(tuple(v[0]), dynamic), v[1]) for n, v in outputs.items()}
    frame = inputs.get(FRAME_INPUT)
    if frame is None or tuple(frame[0]) != (1, 3, s, s):
        raise CardError(f"{path}: no input {FRAME_INPUT!r} of shape [1 or N, 3, {s}, {s}] as card {card_source} "
                        f"says (inputs: {dict((n, list(v[0])) for n, v in inputs.items())})")
    logits = outputs.get(LOGITS_OUTPUT)
    if logits is None or tuple(logits[0]) != (1, card.num_classes):
        raise CardError(f"{path}: not a step graph of card {card_source}: output {LOGITS_OUTPUT!r} must be "
                        f"[{'N' if dynamic else 1}, {card.num_classes}] "
                        f"(outputs: {dict((n, list(v[0])) for n, v in outputs.items())})")
    state = {n: v for n, v in inputs.items() if n != FRAME_INPUT}
    missing = [n + STATE_OUT_SUFFIX for n in state if n + STATE_OUT_SUFFIX not in outputs]
    extra = [n for n in outputs if n != LOGITS_OUTPUT
             and not (n.endswith(STATE_OUT_SUFFIX) and n[: -len(STATE_OUT_SUFFIX)] in state)]
    if missing or extra:
        raise CardError(f"{path}: not a step graph: every state input <name> needs an output "
                        f"<name>{STATE_OUT_SUFFIX} and nothing else (missing: {missing[:3]}, unmatched: {extra[:3]})")
    floats = (np.dtype(np.float32), np.dtype(np.float16))
    for name, (shape, dtype) in {FRAME_INPUT: frame, **state}.items():
        if dtype is None or np.dtype(dtype) not in floats:
            raise CardError(f"{path}: input {name!r} must be float32 or float16 (got {dtype})")
    for name, (shape, dtype) in state.items():
        out_shape, out_dtype = outputs[name + STATE_OUT_SUFFIX]
        if not all(_static(d) for d in shape) or shape[:1] != (1,):
            raise CardError(f"{path}: state {name!r} must have a static shape after its batch axis, "
                            f"which is the frame's (got {list(shape)})")
        if tuple(out_shape) != tuple(shape) or out_dtype is None or np.dtype(out_dtype) != np.dtype(dtype):
            raise CardError(f"{path}: state {name!r} is {list(shape)} {np.dtype(dtype).name} in but "
                            f"{list(out_shape)} {out_dtype} out")
    return StepIO({n: (tuple(int(d) for d in shape), np.dtype(dt)) for n, (shape, dt) in state.items()}, dynamic)


class StepModel(abc.ABC):
    """A loaded step model: ``frame`` + state in, that frame's logits + the next state out.

    A state is whatever :meth:`new_state` returns (host arrays, or GPU buffers): pass it to
    :meth:`run`, keep the state it returns, :meth:`reset_state` it on a stream gap. Several states
    (streams, phases) can share one model; :meth:`run_batch` steps several at once."""

    name = "step"
    fixed_batch: int | None = 1  # 1: one stream per inference; None: a dynamic batch (run_batch: one inference)

    def __init__(self) -> None:
        self.card: ModelCard | None = None
        self.card_source = ""
        self.model_path: Path | None = None
        self.state_spec: dict[str, tuple[tuple[int, ...], np.dtype]] = {}

    def _checked_io(self, io: StepIO) -> None:
        self.state_spec = io.state_spec
        self.fixed_batch = None if io.dynamic_batch else 1

    @property
    def state_bytes(self) -> int:
        """Bytes of one state (one stream or phase)."""
        return sum(int(np.prod(shape)) * np.dtype(dt).itemsize for shape, dt in self.state_spec.values())

    def _loaded(self, kind: str) -> None:
        name = getattr(self.model_path, "name", self.model_path)  # a file, or a served model's address
        log.info("online step %s (%s): %d state tensors, %.1f KiB per stream, %s", name, kind,
                 len(self.state_spec), self.state_bytes / 1024,
                 "batch 1" if self.fixed_batch else "dynamic batch (one inference per tick over the streams)")

    @abc.abstractmethod
    def new_state(self) -> Any:
        """A zero state (the start of a stream)."""

    @abc.abstractmethod
    def reset_state(self, state: Any) -> Any:
        """``state`` set back to zero (in place where it can be); returns the state to use."""

    @abc.abstractmethod
    def run(self, frame: np.ndarray, state: Any) -> tuple[np.ndarray, Any]:
        """``frame`` (3, S, S) or (1, 3, S, S) float32 -> (logits (classes,) float32, next state)."""

    def run_batch(self, frames: np.ndarray, states: Sequence[Any]) -> tuple[np.ndarray, list[Any]]:
        """``frames`` (n, 3, S, S) float32 of n streams and their states, in order -> (logits
        (n, classes) float32, their next states). Here n steps one after another; a model with a
        dynamic batch runs them as one inference."""
        if len(frames) != len(states):
            raise ValueError(f"{len(frames)} frames for {len(states)} states")
        outs = [self.run(f, s) for f, s in zip(frames, states)]
        return np.stack([o[0] for o in outs]), [o[1] for o in outs]

    def close(self) -> None:
        """Release what the model holds (GPU buffers); a no-op by default."""

    def take_outage(self) -> Any:
        """A served model's outage since the last call (see :meth:`runtime.backends.base.Backend.take_outage`)."""
        return None

    def __enter__(self) -> "StepModel":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class HostStateStep(StepModel, abc.ABC):
    """A step model whose state is host NumPy arrays, one per :attr:`state_spec` entry (onnxruntime,
    OpenVINO). With a dynamic batch, :meth:`run_batch` gathers the streams' states into batched
    tensors (stream i is row i), runs one inference and hands each stream its row of the outputs."""

    def new_state(self) -> dict[str, np.ndarray]:
        return {n: np.zeros(shape, dt) for n, (shape, dt) in self.state_spec.items()}

    def reset_state(self, state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        for a in state.values():
            a.fill(0)
        return state

    @abc.abstractmethod
    def _infer(self, frames: np.ndarray, state: dict[str, np.ndarray]
               ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """One inference: ``frames`` (n, 3, S, S) and the state batched (n rows) -> (logits
        (n, classes) float32, the next state batched)."""

    def run(self, frame: np.ndarray, state: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        logits, new = self._infer(frame.reshape(1, *frame.shape[-3:]), state)
        return logits[0], new

    def run_batch(self, frames: np.ndarray, states: Sequence[dict[str, np.ndarray]]
                  ) -> tuple[np.ndarray, list[dict[str, np.ndarray]]]:
        if self.fixed_batch is not None or len(states) < 2 or len(frames) != len(states):
            return super().run_batch(frames, states)
        logits, new = self._infer(frames, {n: np.concatenate([s[n] for s in states]) for n in self.state_spec})
        return logits, [{n: a[i:i + 1] for n, a in new.items()} for i in range(len(states))]
