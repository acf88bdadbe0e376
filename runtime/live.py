"""Live action recognition: cameras / files / streams -> sliding windows -> model -> smoothed events.

    python -m runtime.live --model artifacts/demo/tsi_demo.onnx --source 0
    python -m runtime.live --source video.mp4 --headless --out-video out.mp4 --out-jsonl events.jsonl
    python -m runtime.live --source a=rtsp://cam-a/s --source b=rtsp://cam-b/s --headless \
        --out-jsonl out/{name}.jsonl          # several streams, one model, batched inference

Everything is importable: :class:`LiveRecognizer` is one stream (driven frame batch by frame batch,
or by :meth:`LiveRecognizer.run` over a :class:`runtime.capture.FrameSource`), :func:`run_streams`
runs several on one model, :func:`run_live` is the whole program for a :class:`LiveOptions`
(checked by :func:`check_options` before anything loads), and :func:`main` only parses the command
line and turns SIGINT / SIGTERM / SIGHUP into a clean stop.

Memory stays flat: the frame buffers, the windows, the smoothers and the latency statistics are all
bounded and preallocated; events go straight to the JSONL files.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import logging
import os
import re
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import cv2
import numpy as np

from runtime.assets import demo_model
from runtime.backends import BACKENDS, Backend, BackendError
from runtime.capture import (OPENCV_READ_TIMEOUT_S, EndOfStream, Frame, FrameSource,
                             ReconnectPolicy, SourceError, SourceSpec, parse_source)
from runtime.card import CardError, ModelCard
from runtime.cli import OneLineParser, install_stop_handlers
from runtime.gstreamer import GStreamerUnavailableError
from runtime.latency import LatencyStats
from runtime.online import OnlineRecognizer, StepModel, open_model
from runtime.outputs import (JSONL_SUFFIXES, WRITABLE_VIDEO_SUFFIXES, AtomicVideoWriter,
                             DisplayUnavailableError, JsonlWriter, WindowDisplay, check_output_path)
from runtime.overlay import draw_overlay, mosaic
from runtime.smoothing import ActionEvent, EventDetector, make_smoother, softmax, topk
from runtime.window import ClipWindow

log = logging.getLogger("runtime.live")

__all__ = [
    "DEFAULT_MODEL",
    "LiveOptions",
    "LiveOutputs",
    "LiveRecognizer",
    "RunSummary",
    "StreamPlan",
    "UsageError",
    "build_parser",
    "check_options",
    "main",
    "read_sources_file",
    "resolve_model_path",
    "run_live",
    "run_streams",
]

DEFAULT_MODEL = Path("artifacts/demo/tsi_demo.onnx")
BUILD_COMMAND = "python export/build_engine.py"


def resolve_model_path(model: str | Path | None) -> Path:
    """``model``, or the demo model when None (``DEFAULT_MODEL`` if built here, else the one the
    runtime package ships); a clear error when the file is missing."""
    if model is None:
        demo = demo_model(DEFAULT_MODEL)
        if demo is None:
            raise FileNotFoundError(
                f"no --model given and the demo model {DEFAULT_MODEL} does not exist: build it with "
                f"`{BUILD_COMMAND}` (from the repository root), or pass --model PATH"
            )
        return demo
    path = Path(model)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    return path


WINDOW_STRIDE = 4  # the sliding window's default: a clip every 4 source frames


@dataclass
class LiveOptions:
    """Everything :func:`run_live` needs; the command line's defaults are read from here (each
    default is stated once)."""

    model: str | None = None
    sources: tuple[str, ...] = ("0",)
    sources_file: str | None = None
    card: str | None = None
    backend: str = "auto"
    providers: list[str] | None = None
    plugin: str | None = None
    cuda_graph: bool = False
    threads: int | None = None
    stride: int | None = None  # None: WINDOW_STRIDE for a clip model, the card's frame step online
    smoothing: str = "ema"
    smooth_n: int = 5
    ema_alpha: float = 0.3
    threshold: float = 0.5
    topk: int = 3
    pad_short: bool = True
    realtime: bool | None = None
    buffer_size: int = 4
    stall_timeout: float = 10.0
    reconnect_attempts: int | None = 10
    reconnect_limit: float | None = 120.0
    headless: bool = False
    out_video: str | None = None
    out_jsonl: str | None = None
    max_frames: int | None = None
    duration: float | None = None


@dataclass
class RunSummary:
    """What a run of one stream did; ``latency_ms`` maps stage -> {n, mean_ms, p50_ms, p95_ms,
    max_ms}; ``gaps``: outages of a live stream (each closed the open event and reset the window
    and the smoother); ``padded``: a clip shorter than the span classified once with a padded
    window; ``stopped_by``: the signal that stopped the run, if one did."""

    reason: str
    frames: int
    inferences: int
    events: int
    wall_s: float
    fps: float
    capture: dict[str, Any] = field(default_factory=dict)
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    error: str | None = None
    stream: str | None = None
    gaps: int = 0
    padded: bool = False
    stopped_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["wall_s"] = round(self.wall_s, 3)
        d["fps"] = round(self.fps, 2)
        return d


class LiveOutputs:
    """The optional JSONL (events, gaps, then the summary) and annotated video of one stream.
    ``fps=None``: the video's frame rate is measured from the frames' capture times (live)."""

    def __init__(self, jsonl: str | Path | None = None, video: str | Path | None = None,
                 fps: float | None = 30.0, stream: str | None = None) -> None:
        self.stream = stream
        self.jsonl = JsonlWriter(jsonl) if jsonl else None
        try:
            self.video = AtomicVideoWriter(video, fps) if video else None
        except BaseException:
            if self.jsonl is not None:
                self.jsonl.close()
            raise

    def _prefix(self) -> str:
        return f"[{self.stream}] " if self.stream else ""

    def event(self, event: ActionEvent) -> None:
        log.info("%saction %-20s %.2f  frames %d-%d  (%.2fs-%.2fs)%s", self._prefix(), event.label,
                 event.score, event.start_frame, event.end_frame, event.start_s, event.end_s,
                 "  [padded window]" if event.padded else "")
        if self.jsonl is not None:
            self.jsonl.write(event.to_dict())

    def gap(self, record: dict[str, Any]) -> None:
        if self.jsonl is not None:
            self.jsonl.write({"gap": record})

    def write_frame(self, image: np.ndarray, t: float | None = None) -> None:
        if self.video is not None:
            self.video.write(image, t)

    def summary(self, summary: RunSummary) -> None:
        if self.jsonl is not None:
            self.jsonl.write({"summary": summary.to_dict()})

    def close(self) -> None:
        """Flush and close every output, the video renamed into place (each one even if another
        fails)."""
        with contextlib.ExitStack() as stack:
            for out in (self.jsonl, self.video):
                if out is not None:
                    stack.callback(out.close)


_DEFAULTS = LiveOptions()


class LiveRecognizer:
    """One stream: frames in, smoothed scores and action events out, with per-stage latencies.

    Driven by :meth:`run` (one source), by :func:`run_streams` (several sources, one batched
    inference over the streams whose windows are due) or frame batch by frame batch with
    :meth:`process`. Events, gaps and the summary go to ``outputs`` when given."""

    def __init__(self, backend: Backend | StepModel, card: ModelCard | None = None, *,
                 stride: int | None = _DEFAULTS.stride, smoothing: str = _DEFAULTS.smoothing,
                 smooth_n: int = _DEFAULTS.smooth_n, ema_alpha: float = _DEFAULTS.ema_alpha,
                 threshold: float = _DEFAULTS.threshold, topk: int = _DEFAULTS.topk,
                 pad_short: bool = _DEFAULTS.pad_short, name: str | None = None,
                 outputs: LiveOutputs | None = None) -> None:
        card = card or backend.card
        if card is None:
            raise ValueError("no model card: load the backend first or pass card=")
        if topk < 1:
            raise ValueError("topk must be >= 1")
        self.backend, self.card = backend, card
        self.name = name
        self.outputs = outputs
        self.pad_short = pad_short
        # a step model (card mode 'online') runs each sampled frame as it comes, its state carried;
        # a clip backend gets the sliding window's clips (see runtime.online)
        self.online = OnlineRecognizer(backend, stride=stride) if isinstance(backend, StepModel) else None
        self.window = None if self.online else ClipWindow(card, WINDOW_STRIDE if stride is None else stride)
        self.stride = self.online.stride if self.online else self.window.stride
        self.span = self.window.span if self.window else card.span_frames or card.frames
        self._last_online: Frame | None = None
        self.smoother = make_smoother(smoothing, card.num_classes, smooth_n, ema_alpha)
        self.detector = EventDetector(card.labels, threshold)
        self.latency = LatencyStats()
        self.k = topk
        self.top: list[tuple[str, float]] = []
        self.scores = np.zeros(card.num_classes, dtype=np.float32)
        self.frames = self.inferences = self.events = self.gaps = self.scored = 0
        self.padded = False
        self.fps = 0.0
        self.last_image: np.ndarray | None = None  # the newest annotated frame (window mode)
        self._t_last: float | None = None
        self._pending: collections.deque[Frame] = collections.deque()
        self._consumed: list[Frame] = []
        self._due: Frame | None = None
        self._ended: list[ActionEvent] = []
        self._collect = False
        self.last_summary: RunSummary | None = None

    # -- frames in -----------------------------------------------------------------------------
    def feed(self, frames: Sequence[Frame]) -> None:
        """Queue frames (oldest first) for :meth:`step`."""
        self._pending.extend(frames)
        now = time.monotonic()
        if frames and self._t_last is not None and now > self._t_last:
            inst = len(frames) / (now - self._t_last)
            self.fps = inst if self.fps == 0.0 else 0.9 * self.fps + 0.1 * inst
        if frames:
            self._t_last = now

    @property
    def pending(self) -> int:
        return len(self._pending)

    @property
    def due(self) -> bool:
        """A clip is due and waits for :meth:`apply`."""
        return self._due is not None

    def step(self, latest_only: bool = True) -> bool:
        """Preprocess queued frames into the window. ``latest_only`` (live: never work on stale
        windows): every queued frame, then a clip is due if one fell due on the way; otherwise
        (offline, deterministic) up to the next frame at which a clip is due. True when a clip is
        due: fill it with :meth:`clip_into`, then :meth:`apply` its logits (until then the clip
        stays due and no more frames are consumed)."""
        if self._due is not None:
            return True
        if self.online is not None:
            self._step_online()
            return False
        due = None
        while self._pending:
            f = self._pending.popleft()
            if f.gap is not None:
                self._on_gap(f)
            t = time.perf_counter()
            now_due = self.window.push(f.image, f.index, f.pts_s)
            self.latency.add("preprocess", (time.perf_counter() - t) * 1e3)
            self.latency.add("capture", f.decode_ms)
            self.frames += 1
            self._consumed.append(f)
            if now_due:
                due = f
                if not latest_only:
                    break
        if due is not None and latest_only:
            due = self._consumed[-1]
        self._due = due
        return due is not None

    def _step_online(self) -> None:
        """Every queued frame through the step model (each sampled frame must advance its state,
        so none is skipped); the scores are applied as they come: nothing waits for a batch."""
        while self._pending:
            f = self._pending.popleft()
            if f.gap is not None:
                self._on_gap(f)
            probs = self.online.push(f.image, f.index)
            for stage, ms in self.online.last_ms.items():
                self.latency.add(stage, ms)
            self.latency.add("capture", f.decode_ms)
            self.frames += 1
            self._consumed.append(f)
            self._last_online = f
            if probs is not None:
                self._scores(probs, f, self.online.last_ms["inference"])
        self.inferences = self.online.inferences

    def clip_into(self, out: np.ndarray) -> np.ndarray:
        """The due clip written into ``out`` ``(T, 3, S, S)`` (a row of a batch)."""
        return self.window.clip(out=out)

    def apply(self, logits: np.ndarray, inference_ms: float) -> None:
        """The due clip's logits ``(classes,)`` -> smoothing, events, top-k, latencies."""
        newest = self._due
        if newest is None:
            raise RuntimeError("no clip is due")
        self._due = None
        self.inferences += 1
        self._scores(softmax(logits), newest, inference_ms)

    def _scores(self, probs: np.ndarray, newest: Frame, inference_ms: float) -> None:
        self.latency.add("inference", inference_ms)
        smoothed = self.smoother.update(probs)
        self.scores[:] = smoothed
        event = self.detector.update(smoothed, newest.index, newest.pts_s)
        if event is not None:
            self._event(event)
        self.top = topk(smoothed, self.card.labels, self.k)
        self.scored += 1
        self.latency.add("end_to_end", (time.monotonic() - newest.timestamp) * 1e3)

    def _event(self, event: ActionEvent) -> None:
        self.events += 1
        if self._collect:  # process() returns them; a long run_streams() must not keep them
            self._ended.append(event)
        if self.outputs is not None:
            self.outputs.event(event)

    def _on_gap(self, frame: Frame) -> None:
        """An outage before ``frame``: close the open event, reset the window and smoother."""
        gap = frame.gap
        event = self.detector.flush()
        if event is not None:
            self._event(event)
        if self.online is not None:
            self.online.reset()
        else:
            self.window.reset()
        self.smoother.reset()
        self.top = []
        self.scores.fill(0.0)
        self.gaps += 1
        record = {**gap.to_dict(), "frame": frame.index}
        log.warning("%s%s: gap of %.2fs (%s) before frame %d: event closed, %s and smoothing "
                    "reset", f"[{self.name}] " if self.name else "", gap.reason.replace("_", " "),
                    gap.duration_s, gap.reason, frame.index, "online state" if self.online else "window")
        if self.outputs is not None:
            self.outputs.gap(record)

    def emit(self, display: bool = False) -> None:
        """Annotate the frames consumed since the last call into the video (and keep the newest
        for the window)."""
        consumed, self._consumed = self._consumed, []
        if not consumed:
            return
        video = self.outputs is not None and self.outputs.video is not None
        if video:
            for f in consumed:
                self.outputs.write_frame(self.annotate(f.image), f.timestamp)
            if display:
                self.last_image = consumed[-1].image
        elif display:
            self.last_image = self.annotate(consumed[-1].image)

    def process(self, frames: Sequence[Frame], latest_only: bool = True) -> list[ActionEvent]:
        """Push ``frames`` and infer (with this recognizer's backend) where a clip is due: once, on
        the newest window, when ``latest_only``, else at every due frame. Returns the events that
        ended."""
        self._collect = True
        try:
            self.feed(frames)
            while self.step(latest_only):
                clip = self.window.clip()
                t = time.perf_counter()
                logits = self.backend.infer(clip)
                self.apply(logits[0], (time.perf_counter() - t) * 1e3)
        finally:
            self._collect = False
        self._consumed.clear()
        ended, self._ended = self._ended, []
        return ended

    def finish(self, reason: str, infer: Callable[[np.ndarray], np.ndarray] | None = None
               ) -> ActionEvent | None:
        """End of the stream: a clip shorter than the span is classified once with a padded window
        (if ``pad_short`` and the stream ended by itself); the action in progress is ended."""
        self._pending.clear()
        self._consumed.clear()
        self._due = None
        if self.online is not None:
            self._finish_online(reason)
        else:
            self._finish_window(reason, infer)
        event = self.detector.flush()
        if event is not None:
            if self.padded:
                event = dataclasses.replace(event, padded=True)
            self._event(event)
        self._ended.clear()
        return event

    def _finish_online(self, reason: str) -> None:
        """A stream that ended before any phase had T sampled frames: scored once from the mean
        of the frames it has (marked "padded"), as the sliding window pads a short clip."""
        part = self.online.partial() if reason == "end_of_stream" and self.scored == 0 else None
        if part is None:
            return
        who = f"[{self.name}] " if self.name else ""
        if not self.pad_short:
            log.warning("%sthe stream ended after %d sampled frames, fewer than the model's T=%d: nothing "
                        "classified (without --no-pad-short it is classified once from those frames)",
                        who, part[1], self.card.frames)
            return
        log.warning("%sthe stream ended after %d sampled frames, fewer than the model's T=%d: classified "
                    "once from the mean of their logits (marked \"padded\")", who, part[1], self.card.frames)
        last = self._last_online  # the newest frame (a stream that ended has one)
        self._scores(part[0], Frame(last.index, time.monotonic(), last.pts_s, np.empty(0)), 0.0)
        self.padded = True

    def _finish_window(self, reason: str, infer: Callable[[np.ndarray], np.ndarray] | None) -> None:
        win = self.window
        if reason == "end_of_stream" and self.inferences == 0 and 0 < win.count < win.span:
            who = f"[{self.name}] " if self.name else ""
            if self.pad_short:
                log.warning("%sthe clip has %d frames, fewer than the model's span of %d: "
                            "classified once with a padded window (marked \"padded\")", who,
                            win.count, win.span)
                clip = win.padded_clip()
                t = time.perf_counter()
                logits = (infer or self.backend.infer)(clip)
                newest = win.newest()
                self._due = Frame(newest[0], time.monotonic(), newest[1], np.empty(0))
                self.apply(logits[0], (time.perf_counter() - t) * 1e3)
                self.padded = True
            else:
                log.warning("%sthe clip has %d frames, fewer than the model's span of %d: no "
                            "window, nothing classified (without --no-pad-short it is classified "
                            "once with a padded window)", who, win.count, win.span)

    def flush(self) -> ActionEvent | None:
        """End the action in progress (end of the stream)."""
        event = self.detector.flush()
        if event is not None:
            self.events += 1
        return event

    def annotate(self, image: np.ndarray) -> np.ndarray:
        current = self.detector.current
        lat = {s: self.latency.last(s) for s in self.latency.stages}
        return draw_overlay(image, self.top, fps=self.fps,
                            latencies_ms={k: v for k, v in lat.items() if v is not None},
                            action=current[0] if current else None)

    def summary(self, reason: str, wall_s: float, capture: dict[str, Any],
                error: BaseException | None = None, stopped_by: str | None = None) -> RunSummary:
        s = RunSummary(reason, self.frames, self.inferences, self.events, wall_s,
                       self.frames / wall_s if wall_s > 0 else 0.0, capture,
                       self.latency.summary(), str(error) if error else None, self.name,
                       self.gaps, self.padded, stopped_by)
        self.last_summary = s
        return s

    # -- a whole stream ------------------------------------------------------------------------
    def run(self, source: FrameSource, *, outputs: LiveOutputs | None = None,
            max_frames: int | None = None, duration: float | None = None,
            stop: threading.Event | None = None, display: WindowDisplay | None = None,
            poll_s: float = 0.25) -> RunSummary:
        """Process ``source`` (already started) until it ends, ``max_frames`` frames, ``duration``
        seconds, ``stop`` is set, the user quits the window or Ctrl-C. Events and the summary go
        to ``outputs`` (closed by the caller). An error (e.g. a lost stream) is re-raised after the
        summary, with the error, is written; the summary is also kept in :attr:`last_summary`."""
        if outputs is not None:
            self.outputs = outputs
        (summary,) = run_streams(self.backend, [(self, source)], max_frames=max_frames,
                                 duration=duration, stop=stop, display=display, poll_s=poll_s,
                                 raise_errors=True)
        return summary


class _Stream:
    def __init__(self, rec: LiveRecognizer, src: FrameSource) -> None:
        self.rec, self.src = rec, src
        self.reason: str | None = None
        self.error: BaseException | None = None


def run_streams(backend: Backend, streams: Sequence[tuple[LiveRecognizer, FrameSource]], *,
                max_frames: int | None = None, duration: float | None = None,
                stop: threading.Event | None = None, display: WindowDisplay | None = None,
                poll_s: float = 0.25, raise_errors: bool = False) -> list[RunSummary]:
    """Run several streams (sources already started) on one model: each has its own window,
    smoothing, events and outputs; the clips of the streams whose windows are due are inferred
    together in one batch. A stream ends on its own (end of file, lost stream: the others go on);
    ``max_frames`` counts per stream; ``duration``, ``stop``, quitting the window or Ctrl-C end
    them all. Returns one summary per stream (in order), each also written to its outputs. With
    ``raise_errors``, the first stream error is re-raised after every summary is written."""
    if not streams:
        raise ValueError("no streams")
    card = streams[0][0].card
    for rec, _ in streams:
        if rec.card.input_shape != card.input_shape:
            raise ValueError("every stream must use the same model card geometry")
    wake = threading.Event()
    all_streams = [_Stream(rec, src) for rec, src in streams]
    for st in all_streams:
        st.src.set_notify(wake)
    batch = np.zeros((len(all_streams),) + card.input_shape, dtype=np.float32)
    active = list(all_streams)
    summaries: dict[int, RunSummary] = {}
    t0 = time.monotonic()
    stopped_by: str | None = None

    def end(st: _Stream, reason: str, error: BaseException | None = None) -> None:
        st.reason, st.error = reason, error
        rec = st.rec
        try:
            rec.finish(reason, infer=None if rec.online else backend.infer_batch)
        except Exception as e:  # noqa: BLE001 - the padded inference failed: summarised
            if error is None:
                st.reason, st.error = "error", e
        wall = time.monotonic() - t0
        summary = rec.summary(st.reason, wall, st.src.stats.as_dict(), st.error,
                              stopped_by if reason == "stopped" else None)
        _log_summary(summary)
        if rec.outputs is not None:
            rec.outputs.summary(summary)
        summaries[id(st)] = summary
        active.remove(st)

    def end_all(reason: str, error: BaseException | None = None) -> None:
        for st in list(active):
            end(st, reason, error)

    try:
        while active:
            if stop is not None and stop.is_set():
                stopped_by = getattr(stop, "signal_name", None)
                end_all("stopped")
                break
            if duration is not None and time.monotonic() - t0 >= duration:
                end_all("duration")
                break
            wake.clear()
            got = False
            for st in list(active):
                if st.rec.pending or st.rec.due:
                    continue  # offline: frames still to consume / a clip waiting for its batch
                remaining = None if max_frames is None else max_frames - st.rec.frames
                if remaining is not None and remaining <= 0:
                    end(st, "max_frames")
                    continue
                try:  # offline (files, every frame): wait for the frames, the batch waits for it
                    frames = st.src.read_batch(timeout=0.0 if st.src.realtime else poll_s,
                                               max_frames=remaining)
                except EndOfStream:
                    end(st, "end_of_stream")
                    continue
                except SourceError as e:
                    end(st, "source_error", e)
                    continue
                if frames:
                    st.rec.feed(frames)
                    got = True
            inferred = False
            while True:  # rounds: one batched inference over the streams whose clip is due
                due = [st for st in active if st.rec.step(latest_only=st.src.realtime)]
                if due and any(not st.src.realtime and not st.rec.due for st in active):
                    break  # offline: an active stream needs more frames first (lock-step batches)
                if due:
                    for i, st in enumerate(due):
                        st.rec.clip_into(batch[i])
                    t = time.perf_counter()
                    logits = backend.infer_batch(batch[:len(due)])
                    ms = (time.perf_counter() - t) * 1e3
                    for i, st in enumerate(due):
                        st.rec.apply(logits[i], ms)
                    inferred = True
                for st in active:
                    st.rec.emit(display is not None)
                if not due or not any(st.rec.pending for st in active):
                    break
            if display is not None and (got or inferred):
                recs = [st.rec for st in all_streams]
                image = (recs[0].last_image if len(recs) == 1 else
                         mosaic([r.last_image for r in recs], [r.name or str(i) for i, r in enumerate(recs)]))
                if image is not None and not display.show(image):
                    end_all("quit")
                    break
            if not got and not inferred and active and all(st.src.realtime for st in active):
                wake.wait(poll_s)
    except KeyboardInterrupt:
        end_all("interrupted")
    except Exception as e:  # noqa: BLE001 - e.g. the backend failed: summarised, then re-raised
        end_all("error", e)
        raise
    out = [summaries[id(st)] for st in all_streams]
    if raise_errors:
        for st in all_streams:
            if st.error is not None:
                raise st.error
    return out


def _log_summary(s: RunSummary) -> None:
    who = f"[{s.stream}] " if s.stream else ""
    log.info("%sstopped (%s%s): %d frames, %d inferences, %d events, %d gaps in %.1fs (%.1f fps)",
             who, s.reason, f", {s.stopped_by}" if s.stopped_by else "", s.frames, s.inferences,
             s.events, s.gaps, s.wall_s, s.fps)
    c = s.capture
    if c:
        log.info("%scapture: read %d, delivered %d, dropped %d, decode errors %d, reconnects %d, "
                 "stalls %d%s", who, c["read"], c["delivered"], c["dropped"], c["decode_errors"],
                 c["reconnects"], c.get("stalls", 0),
                 f", TRUNCATED (container declares {c['declared_frames']} frames)"
                 if c.get("truncated") else "")
    for stage, st in s.latency_ms.items():
        log.info("%slatency %-10s mean %7.2f ms  p50 %7.2f  p95 %7.2f  (n=%d)", who, stage,
                 st["mean_ms"], st["p50_ms"], st["p95_ms"], st["n"])


# -- the program -------------------------------------------------------------------------------
class UsageError(ValueError):
    """A mistake in the options or the files named (one line, exit status 2)."""


_NAME_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_.-]*)=(.+)$")


@dataclass(frozen=True)
class StreamPlan:
    """One stream of a run, checked: its name, source and output files."""

    name: str
    source: str
    spec: SourceSpec
    out_jsonl: Path | None
    out_video: Path | None


def read_sources_file(path: str | Path) -> list[str]:
    """The sources of a sources file: one per line (``NAME=SOURCE`` names it), blank lines and
    lines starting with ``#`` ignored."""
    p = Path(path)
    if p.is_dir():
        raise UsageError(f"sources file {p} is a folder, not a text file")
    if not p.is_file():
        raise UsageError(f"sources file not found: {p}")
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read sources file {p}: {e}") from None
    out = [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]
    if not out:
        raise UsageError(f"sources file {p} names no source (one per line, NAME=SOURCE or SOURCE)")
    return out


def _split_name(text: str) -> tuple[str | None, str]:
    m = _NAME_RE.match(text.strip())
    if m and "://" not in m.group(1) and "!" not in text.split("=", 1)[0]:
        return m.group(1), m.group(2).strip()
    return None, text.strip()


def _default_name(spec: SourceSpec, i: int) -> str:
    if spec.kind == "file":
        return Path(str(spec.target)).stem or f"stream{i}"
    if spec.kind == "camera":
        return f"camera{spec.target}" if isinstance(spec.target, int) else Path(str(spec.target)).name
    return f"stream{i}"


def _expand(template: str | None, name: str, index: int, several: bool, what: str) -> Path | None:
    if template is None:
        return None
    if several and "{name}" not in template and "{index}" not in template:
        raise UsageError(f"{what} {template}: with several sources the name needs {{name}} or "
                         f"{{index}} (e.g. out/{{name}}{Path(template).suffix or '.jsonl'}) so each "
                         "stream gets its own file")
    try:
        return Path(template.format(name=name, index=index))
    except (KeyError, IndexError, ValueError) as e:
        raise UsageError(f"{what} {template}: only {{name}} and {{index}} may be used ({e})") from None


def _check_file_source(spec: SourceSpec) -> None:
    path = Path(str(spec.target))
    if path.is_dir():
        raise UsageError(f"source {path} is a folder, not a video file (several streams: pass "
                         "--source once per stream, or --sources FILE)")
    if not path.exists():
        raise UsageError(f"video file not found: {path}")
    if not os.access(path, os.R_OK):
        raise UsageError(f"video file {path}: no permission to read it")
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise UsageError(f"cannot open video file {path} (unsupported or corrupt file?)")
    finally:
        cap.release()


def check_options(opts: LiveOptions) -> list[StreamPlan]:
    """Every check that needs neither the model nor a live source, before anything is loaded:
    the numbers, the sources (files exist, are files and open), the output names (extension,
    folder, one per stream, none the same as a source or another output). Raises
    :class:`UsageError` naming the problem."""
    if not 0.0 <= opts.threshold <= 1.0:
        raise UsageError(f"--threshold must be in [0, 1] (got {opts.threshold})")
    if not 0.0 < opts.ema_alpha <= 1.0:
        raise UsageError(f"--ema-alpha must be in (0, 1] (got {opts.ema_alpha})")
    if opts.duration is not None and not opts.duration > 0:
        raise UsageError(f"--duration must be > 0 (got {opts.duration})")
    if not 0 < opts.stall_timeout < OPENCV_READ_TIMEOUT_S:
        raise UsageError(f"--stall-timeout must be > 0 and below OpenCV's own read timeout "
                         f"({OPENCV_READ_TIMEOUT_S:.0f} s), got {opts.stall_timeout}")
    if opts.reconnect_attempts is not None and opts.reconnect_attempts < 0:
        raise UsageError(f"--reconnect-attempts must be >= 0 or inf (got {opts.reconnect_attempts})")
    if opts.reconnect_limit is not None and not opts.reconnect_limit > 0:
        raise UsageError(f"--reconnect-limit must be > 0 seconds or inf (got {opts.reconnect_limit})")
    if opts.card is not None and not Path(opts.card).is_file():
        raise UsageError(f"model card not found: {opts.card}")
    texts = list(opts.sources)
    if opts.sources_file:
        texts += read_sources_file(opts.sources_file)
    if not texts:
        raise UsageError("no source: pass --source (or --sources FILE)")
    several = len(texts) > 1
    plans: list[StreamPlan] = []
    for i, text in enumerate(texts):
        name, source = _split_name(text)
        try:
            spec = parse_source(source)
        except ValueError as e:
            raise UsageError(f"source {text!r}: {e}") from None
        if spec.kind == "file":
            _check_file_source(spec)
        elif opts.realtime is False:
            raise UsageError(f"--no-realtime only applies to video files; {spec.describe()} is a "
                             "live source")
        name = name or _default_name(spec, i)
        jsonl = _expand(opts.out_jsonl, name, i, several, "--out-jsonl")
        video = _expand(opts.out_video, name, i, several, "--out-video")
        if jsonl is not None:
            check_output_path(jsonl, JSONL_SUFFIXES, "--out-jsonl")
        if video is not None:
            check_output_path(video, WRITABLE_VIDEO_SUFFIXES, "--out-video")
        plans.append(StreamPlan(name, source, spec, jsonl, video))
    names = [pl.name for pl in plans]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise UsageError(f"two streams are named {dup[0]!r}: name them (NAME=SOURCE)")
    outs = [o.resolve() for pl in plans for o in (pl.out_jsonl, pl.out_video) if o is not None]
    if len(set(outs)) != len(outs):
        raise UsageError("two outputs have the same file name")
    sources = {Path(str(pl.spec.target)).resolve() for pl in plans if pl.spec.kind == "file"}
    clash = [o for o in outs if o in sources]
    if clash:
        raise UsageError(f"output {clash[0]} is also a source: it would be overwritten")
    return plans


def run_live(opts: LiveOptions, stop: threading.Event | None = None) -> list[RunSummary]:
    """Check everything, open the window (unless headless), the model and the sources; run;
    release everything. One summary per stream."""
    plans = check_options(opts)
    model = resolve_model_path(opts.model)
    policy = ReconnectPolicy(max_retries=opts.reconnect_attempts, timeout=opts.reconnect_limit)
    sources = [FrameSource(pl.source, realtime=opts.realtime, buffer_size=opts.buffer_size,
                           reconnect=policy, stall_timeout=opts.stall_timeout) for pl in plans]
    with contextlib.ExitStack() as stack:
        display = None
        if not opts.headless:
            display = WindowDisplay()  # fail before loading anything if there is no GUI
            stack.callback(display.close)
        elif not (opts.out_video or opts.out_jsonl):
            log.warning("--headless without --out-video / --out-jsonl: results are only logged")
        backend = stack.enter_context(open_model(
            model, opts.backend, card=opts.card, providers=opts.providers, plugin=opts.plugin,
            cuda_graph=opts.cuda_graph, threads=opts.threads))  # the card's mode picks clip or online
        recognizers = []
        for pl in plans:
            rec = LiveRecognizer(backend, stride=opts.stride, smoothing=opts.smoothing,
                                 smooth_n=opts.smooth_n, ema_alpha=opts.ema_alpha,
                                 threshold=opts.threshold, topk=opts.topk, pad_short=opts.pad_short,
                                 name=pl.name)
            recognizers.append(rec)
        card = recognizers[0].card
        online = recognizers[0].online
        log.info("model %s (%s, %s): %d labels, T=%d, %dx%d, span %d frames, stride %d%s; %d stream(s)%s",
                 model, backend.name, "online: one step per sampled frame" if online else "sliding window",
                 card.num_classes, card.frames, card.input_size, card.input_size, recognizers[0].span,
                 recognizers[0].stride, f" ({len(online.phases)} phase(s) per stream)" if online else "", len(plans),
                 "" if len(plans) == 1 or backend.fixed_batch is None else
                 f" (the model's batch is fixed at {backend.fixed_batch}: streams are inferred in "
                 "chunks; export with --dynamic-batch for one inference)")
        for pl, src, rec in zip(plans, sources, recognizers):
            stack.enter_context(src)  # started; stopped (thread joined, capture released) on exit
            rec.outputs = LiveOutputs(pl.out_jsonl, pl.out_video,
                                      fps=None if src.spec.live else src.fps,
                                      stream=pl.name if len(plans) > 1 else None)
            stack.callback(rec.outputs.close)
        return run_streams(backend, list(zip(recognizers, sources)), max_frames=opts.max_frames,
                           duration=opts.duration, stop=stop, display=display)
    raise AssertionError("unreachable")  # pragma: no cover


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1 (got {value})")
    return value


def _count_or_inf(text: str) -> int | None:
    if text.strip().lower() in ("inf", "unlimited", "none"):
        return None
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 or inf (got {value})")
    return value


def _seconds_or_inf(text: str) -> float | None:
    if text.strip().lower() in ("inf", "unlimited", "none"):
        return None
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0 or inf (got {value})")
    return value


def build_parser() -> argparse.ArgumentParser:
    d = _DEFAULTS
    p = OneLineParser(prog="tsi-live", description=__doc__.split("\n\n")[0])
    io = p.add_argument_group("model and sources")
    io.add_argument("--model", help=f".onnx, .engine/.plan or .pt (default: {DEFAULT_MODEL}, else the shipped demo model)")
    io.add_argument("--card", help="model card JSON overriding the one found with the model")
    io.add_argument("--source", dest="sources", action="append", metavar="[NAME=]SOURCE",
                    help="camera index, video file, rtsp/http URL or a GStreamer pipeline "
                    "('... ! appsink'); repeat for several streams in one process (default: "
                    f"{' '.join(d.sources)} unless --sources is given)")
    io.add_argument("--sources", dest="sources_file", metavar="FILE",
                    help="a text file of sources, one per line ([NAME=]SOURCE; # comments)")
    io.add_argument("--backend", default=d.backend, choices=["auto", *BACKENDS],
                    help="default: from the model's suffix")
    io.add_argument("--providers", type=lambda s: [x for x in s.split(",") if x],
                    help="onnxruntime providers, comma separated: cpu,cuda,tensorrt")
    io.add_argument("--threads", type=_positive_int, help="onnxruntime intra-op threads "
                    "(default: one per core)")
    io.add_argument("--plugin", metavar="LIB", help="TensorRT plugin library (.so) to load")
    io.add_argument("--cuda-graph", action="store_true", help="TensorRT: replay a CUDA graph")
    io.add_argument("--realtime", action=argparse.BooleanOptionalAction, default=d.realtime,
                    help="files: play at their fps dropping what inference cannot keep up with "
                    "(default), or --no-realtime to process every frame")
    io.add_argument("--buffer-size", type=_positive_int, default=d.buffer_size,
                    help="newest frames kept between capture and inference (%(default)s)")
    live = p.add_argument_group("live streams")
    live.add_argument("--stall-timeout", type=float, default=d.stall_timeout, metavar="S",
                      help="reconnect a stream that delivers no frame for S seconds (below "
                      f"OpenCV's own {OPENCV_READ_TIMEOUT_S:.0f} s read timeout; %(default)s)")
    live.add_argument("--reconnect-attempts", type=_count_or_inf, default=d.reconnect_attempts,
                      metavar="N", help="connection attempts after a drop, a stall or a source not "
                      "up at start, before giving up; inf: never give up (%(default)s)")
    live.add_argument("--reconnect-limit", type=_seconds_or_inf, default=d.reconnect_limit,
                      metavar="S", help="give up on an outage longer than S seconds; inf: no "
                      "limit (%(default)s)")
    rec = p.add_argument_group("recognition")
    rec.add_argument("--stride", type=_positive_int, default=d.stride,
                     help=f"scores every N frames (default: {WINDOW_STRIDE} for a clip model; for an online "
                     "model the card's frame step, and N must divide it)")
    rec.add_argument("--smoothing", choices=["ema", "mean"], default=d.smoothing, help="(%(default)s)")
    rec.add_argument("--smooth-n", type=_positive_int, default=d.smooth_n, help="windows averaged by mean (%(default)s)")
    rec.add_argument("--ema-alpha", type=float, default=d.ema_alpha, help="factor of ema (%(default)s)")
    rec.add_argument("--threshold", type=float, default=d.threshold, help="min smoothed score of an action (%(default)s)")
    rec.add_argument("--topk", type=_positive_int, default=d.topk, help="labels drawn on the frame (%(default)s)")
    rec.add_argument("--pad-short", action=argparse.BooleanOptionalAction, default=d.pad_short,
                     help="classify a clip shorter than the model's span once with a padded window, "
                     "marked \"padded\" (default: on)")
    out = p.add_argument_group("output")
    out.add_argument("--headless", action="store_true", help="no window (write files instead)")
    out.add_argument("--out-video", help="annotated video (.mp4 .m4v .mov .avi .mkv); with several "
                     "sources put {name} or {index} in the name")
    out.add_argument("--out-jsonl", help="recognised actions and gaps, one JSON per line, then a "
                     "summary (.jsonl); with several sources put {name} or {index} in the name")
    out.add_argument("--max-frames", type=_positive_int, help="stop after N frames (per stream)")
    out.add_argument("--duration", type=float, help="stop after N seconds")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return p


def options_from_args(args: argparse.Namespace) -> LiveOptions:
    names = LiveOptions.__dataclass_fields__
    values = {k: v for k, v in vars(args).items() if k in names}
    if values.get("sources") is None:
        values["sources"] = () if args.sources_file else _DEFAULTS.sources
    else:
        values["sources"] = tuple(values["sources"])
    return LiveOptions(**values)


_USER_ERRORS = (FileNotFoundError, IsADirectoryError, PermissionError, CardError, BackendError,
                GStreamerUnavailableError, DisplayUnavailableError, ValueError)
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not logging.getLogger().handlers:  # under systemd (journald stamps each line) no time
        stamp = "" if os.environ.get("JOURNAL_STREAM") else "%(asctime)s "
        logging.basicConfig(format=stamp + "%(levelname)s %(name)s: %(message)s")
    logging.getLogger("runtime").setLevel(args.log_level)
    stop = threading.Event()
    restore = install_stop_handlers(stop)
    try:
        summaries = run_live(options_from_args(args), stop=stop)
    except _USER_ERRORS as e:
        log.error("%s", e)
        return 2
    except SourceError as e:
        log.error("source failed: %s", e)
        return 1
    finally:
        restore()
    return 0 if all(s.error is None for s in summaries) else 1


if __name__ == "__main__":
    sys.exit(main())
