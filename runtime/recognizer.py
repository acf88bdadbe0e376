"""One stream's recogniser: frames in, smoothed scores and action events out, with per-stage
latencies. What it feeds the frames into is a :class:`runtime.stream_window.StreamWindow`, picked
by the card's mode (:data:`WINDOWS`): the sliding window of a clip model, whose clips the
scheduler (:func:`runtime.scheduler.run_streams`) infers in batches, or the online step, which
scores each sampled frame as it comes. Memory stays flat: the window, the smoother and the latency
statistics are bounded and preallocated."""

from __future__ import annotations

import collections
import dataclasses
import logging
import time
from typing import Any, Callable, Sequence

import numpy as np

from runtime.backends.base import Backend
from runtime.card import ModelCard
from runtime.frames import Frame, Gap
from runtime.latency import LatencyStats
from runtime.online import AUTO_MEMORY, OnlineWindow
from runtime.overlay import draw_overlay
from runtime.scheduler import run_streams
from runtime.sink import LiveOutputs
from runtime.smoothing import ActionEvent, EventDetector, make_smoother, topk
from runtime.step_graph import StepModel
from runtime.stream_window import StreamWindow
from runtime.summary import RunSummary
from runtime.window import SlidingWindow

log = logging.getLogger(__name__)

__all__ = ["EMA_ALPHA", "LiveRecognizer", "PAD_SHORT", "SMOOTHING", "SMOOTH_N", "THRESHOLD", "TOPK",
           "WINDOWS"]

# the recogniser's defaults (tsi-live's options show and use them)
SMOOTHING = "ema"  # or "mean"
SMOOTH_N = 5  # windows averaged by "mean"
EMA_ALPHA = 0.3  # factor of "ema"
THRESHOLD = 0.5  # min smoothed score of an action
TOPK = 3  # labels drawn on the frame
PAD_SHORT = True  # a stream shorter than the model's span is classified once, padded
ONLINE_MEMORY = AUTO_MEMORY  # an online model's bound (runtime.online.resolve_memory); a clip model has none

# card mode -> the window a stream's frames go into
WINDOWS: dict[str, Callable[[Any, ModelCard, int | None, int | str | None], StreamWindow]] = {
    "clip": lambda model, card, stride, memory: SlidingWindow(card, stride),
    "online": lambda model, card, stride, memory: OnlineWindow(model, stride, memory),
}


class LiveRecognizer:
    """One stream: frames in, smoothed scores and action events out, with per-stage latencies.

    Driven by :func:`runtime.scheduler.run_streams` (one inference over the streams whose clips are
    due), by :meth:`run` (one source) or frame batch by frame batch with :meth:`process`. Events,
    gaps and the summary go to ``outputs`` when given. ``stride``: None is the window's default
    (:data:`runtime.window.WINDOW_STRIDE` for a clip model, the card's frame step online); ``memory``:
    an online model's bounded memory in sampled frames (:func:`runtime.online.resolve_memory`:
    ``"auto"``, a number, None for unbounded); anything but the default on a clip model is refused."""

    def __init__(self, backend: Backend | StepModel, card: ModelCard | None = None, *,
                 stride: int | None = None, smoothing: str = SMOOTHING, smooth_n: int = SMOOTH_N,
                 ema_alpha: float = EMA_ALPHA, threshold: float = THRESHOLD, topk: int = TOPK,
                 pad_short: bool = PAD_SHORT, name: str | None = None,
                 outputs: LiveOutputs | None = None, memory: int | str | None = ONLINE_MEMORY) -> None:
        card = card or backend.card
        if card is None:
            raise ValueError("no model card: load the backend first or pass card=")
        if topk < 1:
            raise ValueError("topk must be >= 1")
        self.backend, self.card = backend, card
        self.name = name
        self.outputs = outputs
        self.listener: Any = None  # told of events opening and closing (runtime.serve.board)
        self.pad_short = pad_short
        if memory != ONLINE_MEMORY and card.mode != "online":
            raise ValueError(f"an online memory is for an online (step) model; this card's mode is {card.mode!r}")
        self.window = WINDOWS[card.mode](backend, card, stride, memory)
        self.stride, self.span = self.window.stride, self.window.span
        self.smoother = make_smoother(smoothing, card.num_classes, smooth_n, ema_alpha)
        self.detector = EventDetector(card.labels, threshold)
        self.latency = LatencyStats()
        self.k = topk
        self.top: list[tuple[str, float]] = []
        self.scores = np.zeros(card.num_classes, dtype=np.float32)
        self.frames = self.inferences = self.events = self.gaps = self.scored = 0
        self.padded = False
        self.fps = 0.0
        self.last_image: np.ndarray | None = None  # the newest annotated frame (for the display)
        self._t_last: float | None = None
        self._pending: collections.deque[Frame] = collections.deque()
        self._consumed: list[Frame] = []
        self._due: Frame | None = None
        self._ended: list[ActionEvent] = []
        self._collect = False
        self._batch: Any = None  # process()'s batch of one (the window's Batch), made on first use
        self.last_summary: RunSummary | None = None
        self._server_gap: Gap | None = None  # a served model's outage, carried by the next frame
        self._last_pts: float | None = None

    @property
    def who(self) -> str:
        """The log prefix: ``[name] `` (or nothing for an unnamed stream)."""
        return f"[{self.name}] " if self.name else ""

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
        """Push queued frames into the window. ``latest_only`` (live: never work on stale
        windows): every queued frame, then a clip is due if one fell due on the way; otherwise
        (offline, deterministic), or when the window needs every due inference (an online step),
        up to the next frame at which one is due. True when one is due: run it with the window's
        batch (:meth:`clip_into` fills a row), then :meth:`apply` its logits (until then it stays
        due and no more frames are consumed)."""
        if self._due is not None:
            return True
        due = None
        while self._pending:
            f = self._pending.popleft()
            if self._server_gap is not None:
                if f.gap is None:
                    f.gap = self._server_gap.ending_at(f.pts_s)
                self._server_gap = None
            self._last_pts = f.pts_s
            if f.gap is not None:
                self._on_gap(f)
            pushed = self.window.push(f)
            for stage, ms in pushed.ms.items():
                self.latency.add(stage, ms)
            self.latency.add("capture", f.decode_ms)
            self.frames += 1
            self._consumed.append(f)
            if pushed.due:
                due = f
                if not latest_only or self.window.every_due:
                    break
        if due is not None and latest_only and not self.window.every_due:
            due = self._consumed[-1]
        self._due = due
        return due is not None

    def clip_into(self, out: np.ndarray) -> np.ndarray:
        """The due input written into ``out`` (a row of a batch: a clip ``(T, 3, S, S)``, a frame)."""
        return self.window.clip_into(out)

    def apply(self, logits: np.ndarray, inference_ms: float, carried: Any = None) -> None:
        """The due inference's logits ``(classes,)`` (and what the batch returned with them: an
        online step's next state) -> smoothing, events, top-k, latencies."""
        newest = self._due
        if newest is None:
            raise RuntimeError("no inference is due")
        self._due = None
        self.inferences += 1
        self.latency.add("inference", inference_ms)
        probs = self.window.scores(logits, carried)
        if probs is not None:
            self._scores(probs, newest)

    def _scores(self, probs: np.ndarray, newest: Frame) -> None:
        smoothed = self.smoother.update(probs)
        self.scores[:] = smoothed
        before = self.detector.current
        event = self.detector.update(smoothed, newest.index, newest.pts_s)
        if event is not None:
            self._event(event)
        current = self.detector.current
        if self.listener is not None and current is not None and (before is None or event is not None):
            self.listener.opened(self, current[0], current[1], newest.index, newest.pts_s)
        self.top = topk(smoothed, self.card.labels, self.k)
        self.scored += 1
        self.latency.add("end_to_end", (time.monotonic() - newest.timestamp) * 1e3)

    def _event(self, event: ActionEvent) -> None:
        self.events += 1
        if self._collect:  # process() returns them; a long run_streams() must not keep them
            self._ended.append(event)
        if self.outputs is not None:
            self.outputs.event(event)
        if self.listener is not None:
            self.listener.closed(self, event)

    def reset(self) -> None:
        """Forget the stream so far (a gap, or the window's r key): the open event is closed, the
        window and the smoother start again, and an inference still due is dropped (its input
        came from the window forgotten)."""
        self._due = None
        event = self.detector.flush()
        if event is not None:
            self._event(event)
        self.window.reset()
        self.smoother.reset()
        self.top = []
        self.scores.fill(0.0)

    def server_gap(self, attempts: int) -> None:
        """A served model's server was away (the scheduler learnt it from the backend): the next
        frame carries a ``server_down`` gap from the newest frame consumed (as a stream's own
        outage does: the event closes, the window and smoother reset)."""
        start = self._last_pts if self._last_pts is not None else 0.0
        self._server_gap = Gap("server_down", start, start, attempts)

    def _on_gap(self, frame: Frame) -> None:
        """An outage before ``frame``: close the open event, reset the window and smoother."""
        gap = frame.gap
        self.reset()
        self.gaps += 1
        record = {**gap.to_dict(), "frame": frame.index}
        log.warning("%s%s: gap of %.2fs (%s) before frame %d: event closed, %s and smoothing "
                    "reset", self.who, gap.reason.replace("_", " "), gap.duration_s, gap.reason,
                    frame.index, self.window.resets_what)
        if self.outputs is not None:
            self.outputs.gap(record)

    # -- frames out ----------------------------------------------------------------------------
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

    def annotate(self, image: np.ndarray) -> np.ndarray:
        current = self.detector.current
        lat = {s: self.latency.last(s) for s in self.latency.stages}
        return draw_overlay(image, self.top, fps=self.fps,
                            latencies_ms={k: v for k, v in lat.items() if v is not None},
                            action=current[0] if current else None)

    def process(self, frames: Sequence[Frame], latest_only: bool = True) -> list[ActionEvent]:
        """Push ``frames`` and infer (with this recognizer's backend) where a clip is due: once, on
        the newest window, when ``latest_only``, else at every due frame. Returns the events that
        ended."""
        self._collect = True
        try:
            self.feed(frames)
            while self.step(latest_only):
                if self._batch is None:
                    self._batch = self.window.batch(self.backend, 1)
                t = time.perf_counter()
                logits, carried = self._batch([self.window])
                self.apply(logits[0], (time.perf_counter() - t) * 1e3, carried[0])
        finally:
            self._collect = False
        self._consumed.clear()
        ended, self._ended = self._ended, []
        return ended

    # -- the end -------------------------------------------------------------------------------
    def finish(self, reason: str, infer: Callable[[np.ndarray], np.ndarray] | None = None
               ) -> ActionEvent | None:
        """End of the stream: a stream that ended by itself before its first score is classified
        once from what it has (a padded window; online, the mean of its frames) if ``pad_short``;
        the action in progress is ended. ``infer``: clips -> logits (default: the backend's)."""
        self._pending.clear()
        self._consumed.clear()
        self._due = None
        if reason == "end_of_stream" and self.scored == 0:
            short = self.window.finish_short(self.pad_short, infer or self.backend.infer, self.who)
            if short is not None:
                if short.inferred:
                    self.inferences += 1
                newest = Frame(short.index, time.monotonic(), short.pts_s, np.empty(0))
                self.latency.add("inference", short.inference_ms)
                self._scores(short.probs, newest)
                self.padded = True
        event = self.detector.flush()
        if event is not None:
            if self.padded:
                event = dataclasses.replace(event, padded=True)
            self._event(event)
        self._ended.clear()
        return event

    def summary(self, reason: str, wall_s: float, capture: dict[str, Any],
                error: BaseException | None = None, stopped_by: str | None = None) -> RunSummary:
        s = RunSummary(reason, self.frames, self.inferences, self.events, wall_s,
                       self.frames / wall_s if wall_s > 0 else 0.0, capture,
                       self.latency.summary(), str(error) if error else None, self.name,
                       self.gaps, self.padded, stopped_by)
        self.last_summary = s
        return s

    def run(self, source: Any, *, outputs: LiveOutputs | None = None,
            max_frames: int | None = None, duration: float | None = None,
            stop: Any = None, display: Any = None, poll_s: float = 0.25) -> RunSummary:
        """Process ``source`` (a started :class:`runtime.capture.FrameSource`) until it ends,
        ``max_frames`` frames, ``duration`` seconds, ``stop`` is set, the user quits the window or
        Ctrl-C. Events and the summary go to ``outputs`` (closed by the caller). An error (e.g. a
        lost stream) is re-raised after the summary, with the error, is written; the summary is
        also kept in :attr:`last_summary`."""
        if outputs is not None:
            self.outputs = outputs
        (summary,) = run_streams(self.backend, [(self, source)], max_frames=max_frames,
                                 duration=duration, stop=stop, display=display, poll_s=poll_s,
                                 raise_errors=True)
        return summary
