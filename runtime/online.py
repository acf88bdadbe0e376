"""Online recognition with a streaming (``mode="online"``) model: one inference per sampled frame,
the temporal state carried between calls.

A causal TSI model exported with ``export.stream_export`` is a step graph: ``frame`` (1, 3, S, S)
and named state tensors in, ``logits`` of that frame and each state as ``<name>.next`` out. This
module runs it (onnxruntime; torch-free):

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

CLI (events in the JSONL format of ``runtime.live``, so ``runtime.events`` reads them)::

    python -m runtime.online --model m.online.onnx --source video.mp4 --out-jsonl actions.jsonl
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import threading
import time
from collections import deque
from typing import Any, Sequence

import numpy as np

from runtime.card import ONNX_METADATA_KEY, CardError, ModelCard
from runtime.cli import install_stop_handlers
from runtime.backends.base import BackendError, check_model_file, resolve_card
from runtime.preprocess import FramePreprocessor
from runtime.smoothing import softmax

log = logging.getLogger(__name__)

__all__ = ["OnlineStep", "OnlineRecognizer", "FRAME_INPUT", "LOGITS_OUTPUT", "STATE_OUT_SUFFIX"]

# the step graph's names (export.stream_export writes them; repeated here: runtime imports no export)
FRAME_INPUT = "frame"
LOGITS_OUTPUT = "logits"
STATE_OUT_SUFFIX = ".next"
_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


class OnlineStep:
    """An online step graph in onnxruntime: :meth:`zero_state`, then :meth:`run` per frame."""

    def __init__(self, model_path: str | os.PathLike, card: ModelCard | str | os.PathLike | None = None,
                 *, providers: list[str] | None = None, threads: int | None = None) -> None:
        from runtime.backends.onnxruntime_backend import _import_onnxruntime, resolve_providers

        path = check_model_file(model_path)
        ort = _import_onnxruntime()
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        if threads:
            opts.intra_op_num_threads = threads
        try:
            session = ort.InferenceSession(str(path), opts, providers=resolve_providers(
                providers, ort.get_available_providers()))
        except Exception as e:  # onnxruntime raises its own exception types
            raise BackendError(f"onnxruntime cannot load {path}: {e}") from e
        embedded = session.get_modelmeta().custom_metadata_map.get(ONNX_METADATA_KEY)
        self.card, self.card_source = resolve_card(path, card, embedded)
        if self.card.mode != "online":
            raise CardError(f"{path}: card {self.card_source} has mode={self.card.mode!r}; the online runtime "
                            "needs a streaming step graph (mode 'online', python -m export.stream_export); "
                            "run clip models with the sliding window (python -m runtime.live)")
        inputs = {i.name: i for i in session.get_inputs()}
        outputs = [o.name for o in session.get_outputs()]
        s = self.card.input_size
        frame = inputs.pop(FRAME_INPUT, None)
        if frame is None or list(frame.shape) != [1, 3, s, s]:
            raise CardError(f"{path}: no input {FRAME_INPUT!r} of shape [1, 3, {s}, {s}] "
                            f"(inputs: {[i.name for i in session.get_inputs()]})")
        missing = [n + STATE_OUT_SUFFIX for n in inputs if n + STATE_OUT_SUFFIX not in outputs]
        if not outputs or outputs[0] != LOGITS_OUTPUT or missing:
            raise CardError(f"{path}: not a step graph: outputs must be {LOGITS_OUTPUT!r} then every state "
                            f"as <name>{STATE_OUT_SUFFIX} (missing: {missing[:3]})")
        for name, i in inputs.items():
            if i.type not in _TYPES or not all(isinstance(d, int) for d in i.shape):
                raise CardError(f"{path}: state {name!r} must be float with a static shape (got {i.type} {i.shape})")
        self.path, self.session = path, session
        self.frame_dtype = _TYPES[frame.type]
        self.state_spec = {n: (tuple(i.shape), _TYPES[i.type]) for n, i in inputs.items()}
        self._outputs = [LOGITS_OUTPUT, *(n + STATE_OUT_SUFFIX for n in self.state_spec)]
        log.info("online step %s: %d state tensors, %.1f KiB per stream", path.name, len(self.state_spec),
                 self.state_bytes / 1024)

    @property
    def state_bytes(self) -> int:
        return sum(int(np.prod(shape)) * np.dtype(dt).itemsize for shape, dt in self.state_spec.values())

    def zero_state(self) -> dict[str, np.ndarray]:
        return {n: np.zeros(shape, dt) for n, (shape, dt) in self.state_spec.items()}

    def run(self, frame: np.ndarray, state: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """``frame`` (3, S, S) or (1, 3, S, S) float32 -> (logits (classes,), new state)."""
        x = frame.reshape(1, *frame.shape[-3:]).astype(self.frame_dtype, copy=False)
        res = self.session.run(self._outputs, {FRAME_INPUT: x, **state})
        return np.asarray(res[0][0], np.float32), dict(zip(self.state_spec, res[1:]))


class _Phase:
    def __init__(self, step: OnlineStep, frames: int) -> None:
        self.step = step
        self.state = step.zero_state()
        self.logits: deque[np.ndarray] = deque(maxlen=frames)

    def reset(self) -> None:
        self.state = self.step.zero_state()
        self.logits.clear()


class OnlineRecognizer:
    """BGR frames in (with their source index), class probabilities out (see the module docstring).

    ``push`` returns the probabilities of the phase that just ran once it has T frames since its
    reset, else None (also None for frames between two strides, which are not even preprocessed).
    """

    def __init__(self, step: OnlineStep, *, stride: int | None = None, max_gap: int | None = None) -> None:
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

    def reset(self) -> None:
        for p in self.phases:
            p.reset()
        self._last_index = None
        self._count = 0
        self.resets += 1

    def push(self, frame_bgr: np.ndarray, index: int | None = None) -> np.ndarray | None:
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
        self.preprocess(frame_bgr, out=self._frame)
        logits, phase.state = self.step.run(self._frame, phase.state)
        self.inferences += 1
        phase.logits.append(logits)
        if len(phase.logits) < self.card.frames:
            return None
        return softmax(np.mean(phase.logits, axis=0))


# -- the program -------------------------------------------------------------------------------
def run_online(model: str | os.PathLike, source: str, *, out_jsonl: str | os.PathLike | None = None,
               card: str | None = None, providers: list[str] | None = None, threads: int | None = None,
               stride: int | None = None, threshold: float = 0.5, realtime: bool | None = None,
               max_frames: int | None = None, stop: threading.Event | None = None) -> dict[str, Any]:
    """Recognise ``source`` online; events (and a final summary line) go to ``out_jsonl``. Returns
    the summary. Stops at the end of the source, after ``max_frames``, or when ``stop`` is set."""
    from runtime.capture import EndOfStream, FrameSource
    from runtime.outputs import JsonlWriter
    from runtime.smoothing import EventDetector

    step = OnlineStep(model, card, providers=providers, threads=threads)
    rec = OnlineRecognizer(step, stride=stride)
    detector = EventDetector(step.card.labels, threshold)
    log.info("online model %s: %d labels, T=%d, %dx%d, frame step %d, stride %d (%d phases)", model,
             step.card.num_classes, step.card.frames, step.card.input_size, step.card.input_size,
             rec.frame_step, rec.stride, len(rec.phases))
    frames = events = 0
    infer_ms: list[float] = []
    reason = "end_of_stream"
    t0 = time.monotonic()
    with contextlib.ExitStack() as stack:
        writer = JsonlWriter(out_jsonl) if out_jsonl else None
        if writer is not None:
            stack.callback(writer.close)  # renamed into place even when stopped: nothing is lost
        src = stack.enter_context(FrameSource(source, realtime=realtime))

        def emit(event) -> None:
            nonlocal events
            events += 1
            log.info("action %-20s %.2f  frames %d-%d", event.label, event.score, event.start_frame, event.end_frame)
            if writer is not None:
                writer.write(event.to_dict())

        while True:
            if stop is not None and stop.is_set():
                reason = "stopped"
                break
            if max_frames is not None and frames >= max_frames:
                reason = "max_frames"
                break
            try:
                batch = src.read_batch(timeout=0.25, max_frames=None if max_frames is None else max_frames - frames)
            except EndOfStream:
                break
            for f in batch:
                frames += 1
                t = time.perf_counter()
                probs = rec.push(f.image, f.index)
                if probs is None:
                    continue
                infer_ms.append((time.perf_counter() - t) * 1e3)
                event = detector.update(probs, f.index, f.pts_s)
                if event is not None:
                    emit(event)
        last = detector.flush()
        if last is not None:
            emit(last)
        wall = time.monotonic() - t0
        summary = {"reason": reason, "frames": frames, "inferences": rec.inferences, "resets": rec.resets,
                   "events": events, "wall_s": round(wall, 3), "fps": round(frames / wall, 2) if wall > 0 else 0.0,
                   "step_ms_p50": round(float(np.median(infer_ms)), 3) if infer_ms else None}
        log.info("stopped (%s): %d frames, %d inferences, %d resets, %d events in %.1fs (%.1f fps)", reason,
                 frames, rec.inferences, rec.resets, events, wall, summary["fps"])
        if writer is not None:
            writer.write({"summary": summary})
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m runtime.online",
                                 description="Online recognition with a streaming (mode 'online') step graph.")
    ap.add_argument("--model", required=True, help="the step graph (.online.onnx, python -m export.stream_export)")
    ap.add_argument("--source", required=True, help="video file, camera index, URL or GStreamer pipeline")
    ap.add_argument("--card", help="model card JSON (default: the one inside the ONNX / beside it)")
    ap.add_argument("--providers", nargs="+", help="onnxruntime providers: cpu, cuda, tensorrt")
    ap.add_argument("--threads", type=int, help="onnxruntime intra-op threads")
    ap.add_argument("--stride", type=int, help="an output every STRIDE source frames; must divide the card's "
                    "frame step (default: the frame step, one phase)")
    ap.add_argument("--threshold", type=float, default=0.5, help="score that starts an action event")
    ap.add_argument("--out-jsonl", help="events and a summary, one JSON object per line")
    ap.add_argument("--max-frames", type=int)
    ap.add_argument("--no-realtime", action="store_true", help="files: read every frame, none dropped")
    args = ap.parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from runtime.capture import SourceError

    stop = threading.Event()

    restore = install_stop_handlers(stop)
    try:
        run_online(args.model, args.source, out_jsonl=args.out_jsonl, card=args.card, providers=args.providers,
                   threads=args.threads, stride=args.stride, threshold=args.threshold,
                   realtime=False if args.no_realtime else None, max_frames=args.max_frames, stop=stop)
    except (FileNotFoundError, CardError, BackendError, ValueError) as e:
        log.error("%s", e)
        return 2
    except SourceError as e:
        log.error("source failed: %s", e)
        return 1
    finally:
        restore()
    return 0


if __name__ == "__main__":
    sys.exit(main())
