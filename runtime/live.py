"""Live action recognition: camera / file / stream -> sliding window -> model -> smoothed events.

    python -m runtime.live --model artifacts/demo/tsi_demo.onnx --source 0
    python -m runtime.live --source video.mp4 --headless --out-video out.mp4 --out-jsonl events.jsonl

Everything is importable: :class:`LiveRecognizer` is driven frame batch by frame batch (or by
:meth:`LiveRecognizer.run` over a :class:`runtime.capture.FrameSource`), :func:`run_live` is the
whole program for a :class:`LiveOptions`, and :func:`main` only parses the command line.

Memory stays flat: the frame buffer, the window, the smoother and the latency statistics are all
bounded and preallocated; events go straight to the JSONL file.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from runtime.backends import BACKENDS, Backend, BackendError, open_backend
from runtime.capture import EndOfStream, Frame, FrameSource, SourceError
from runtime.card import CardError, ModelCard
from runtime.gstreamer import GStreamerUnavailableError
from runtime.latency import LatencyStats
from runtime.outputs import AtomicVideoWriter, DisplayUnavailableError, JsonlWriter, WindowDisplay
from runtime.overlay import draw_overlay
from runtime.smoothing import ActionEvent, EventDetector, make_smoother, softmax, topk
from runtime.window import ClipWindow

log = logging.getLogger("runtime.live")

__all__ = [
    "DEFAULT_MODEL",
    "LiveOptions",
    "LiveOutputs",
    "LiveRecognizer",
    "RunSummary",
    "build_parser",
    "main",
    "resolve_model_path",
    "run_live",
]

DEFAULT_MODEL = Path("artifacts/demo/tsi_demo.onnx")
BUILD_COMMAND = "python export/build_engine.py"


def resolve_model_path(model: str | Path | None) -> Path:
    """``model``, or the demo model when None; a clear error (with the command that builds the
    demo model) when the file is missing."""
    if model is None:
        if not DEFAULT_MODEL.is_file():
            raise FileNotFoundError(
                f"no --model given and the demo model {DEFAULT_MODEL} does not exist: build it with "
                f"`{BUILD_COMMAND}` (from the repository root), or pass --model PATH"
            )
        return DEFAULT_MODEL
    path = Path(model)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    return path


@dataclass
class RunSummary:
    """What a run did; ``latency_ms`` maps stage -> {n, mean_ms, p50_ms, p95_ms, max_ms}."""

    reason: str
    frames: int
    inferences: int
    events: int
    wall_s: float
    fps: float
    capture: dict[str, int] = field(default_factory=dict)
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["wall_s"] = round(self.wall_s, 3)
        d["fps"] = round(self.fps, 2)
        return d


class LiveOutputs:
    """The optional JSONL of events, annotated video and window of one run."""

    def __init__(self, jsonl: str | Path | None = None, video: str | Path | None = None,
                 fps: float = 30.0, display: WindowDisplay | None = None) -> None:
        self.jsonl = JsonlWriter(jsonl) if jsonl else None
        self.video = AtomicVideoWriter(video, fps) if video else None
        self.display = display

    @property
    def needs_frames(self) -> bool:
        return self.video is not None or self.display is not None

    def event(self, event: ActionEvent) -> None:
        log.info("action %-20s %.2f  frames %d-%d  (%.2fs-%.2fs)", event.label, event.score,
                 event.start_frame, event.end_frame, event.start_s, event.end_s)
        if self.jsonl is not None:
            self.jsonl.write(event.to_dict())

    def write_frame(self, image: np.ndarray) -> None:
        if self.video is not None:
            self.video.write(image)

    def show(self, image: np.ndarray) -> bool:
        """False once the user asked to quit."""
        return self.display.show(image) if self.display is not None else True

    def summary(self, summary: RunSummary) -> None:
        if self.jsonl is not None:
            self.jsonl.write({"summary": summary.to_dict()})

    def close(self) -> None:
        """Flush and rename every output into place (each one even if another fails)."""
        with contextlib.ExitStack() as stack:
            for out in (self.jsonl, self.video, self.display):
                if out is not None:
                    stack.callback(out.close)


class LiveRecognizer:
    """Frames in, smoothed scores and action events out, with per-stage latencies."""

    def __init__(self, backend: Backend, card: ModelCard | None = None, *, stride: int = 1,
                 smoothing: str = "ema", smooth_n: int = 5, ema_alpha: float = 0.3,
                 threshold: float = 0.5, topk: int = 3) -> None:
        card = card or backend.card
        if card is None:
            raise ValueError("no model card: load the backend first or pass card=")
        if topk < 1:
            raise ValueError("topk must be >= 1")
        self.backend, self.card = backend, card
        self.window = ClipWindow(card, stride)
        self.smoother = make_smoother(smoothing, card.num_classes, smooth_n, ema_alpha)
        self.detector = EventDetector(card.labels, threshold)
        self.latency = LatencyStats()
        self.k = topk
        self.top: list[tuple[str, float]] = []
        self.scores = np.zeros(card.num_classes, dtype=np.float32)
        self.frames = self.inferences = self.events = 0
        self.fps = 0.0
        self._t_last: float | None = None
        self.last_summary: RunSummary | None = None

    # -- one batch of frames -------------------------------------------------------------------
    def process(self, frames: Sequence[Frame], latest_only: bool = True) -> list[ActionEvent]:
        """Preprocess ``frames`` (oldest first) into the window and infer where a clip is due:
        only once, on the newest window, when ``latest_only`` (live: never work on stale windows),
        else at every due frame (offline: deterministic). Returns the events that ended."""
        ended: list[ActionEvent] = []
        due = False
        for f in frames:
            t = time.perf_counter()
            now_due = self.window.push(f.image, f.index, f.pts_s)
            self.latency.add("preprocess", (time.perf_counter() - t) * 1e3)
            self.latency.add("capture", f.decode_ms)
            self.frames += 1
            if now_due and not latest_only:
                self._infer(f, ended)
            due = due or now_due
        if due and latest_only:
            self._infer(frames[-1], ended)
        now = time.monotonic()
        if self._t_last is not None and now > self._t_last:
            inst = len(frames) / (now - self._t_last)
            self.fps = inst if self.fps == 0.0 else 0.9 * self.fps + 0.1 * inst
        self._t_last = now
        return ended

    def _infer(self, newest: Frame, ended: list[ActionEvent]) -> None:
        clip = self.window.clip()
        t = time.perf_counter()
        logits = self.backend.infer(clip)
        self.latency.add("inference", (time.perf_counter() - t) * 1e3)
        smoothed = self.smoother.update(softmax(logits[0]))
        self.scores[:] = smoothed
        event = self.detector.update(smoothed, newest.index, newest.pts_s)
        if event is not None:
            ended.append(event)
            self.events += 1
        self.top = topk(smoothed, self.card.labels, self.k)
        self.inferences += 1
        self.latency.add("end_to_end", (time.monotonic() - newest.timestamp) * 1e3)

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

    # -- a whole stream ------------------------------------------------------------------------
    def run(self, source: FrameSource, *, outputs: LiveOutputs | None = None,
            max_frames: int | None = None, duration: float | None = None,
            stop: threading.Event | None = None, poll_s: float = 0.25) -> RunSummary:
        """Process ``source`` (already started) until it ends, ``max_frames`` frames, ``duration``
        seconds, ``stop`` is set, the user quits the window or Ctrl-C. Events and the summary go
        to ``outputs`` (closed by the caller). An error (e.g. a lost stream) is re-raised after the
        summary, with the error, is written; the summary is also kept in :attr:`last_summary`."""
        t0 = time.monotonic()
        reason, error = "end_of_stream", None
        latest_only = source.realtime
        try:
            while True:
                if stop is not None and stop.is_set():
                    reason = "stopped"
                    break
                if duration is not None and time.monotonic() - t0 >= duration:
                    reason = "duration"
                    break
                remaining = None if max_frames is None else max_frames - self.frames
                if remaining is not None and remaining <= 0:
                    reason = "max_frames"
                    break
                try:
                    batch = source.read_batch(timeout=poll_s, max_frames=remaining)
                except EndOfStream:
                    break
                if not batch:
                    continue
                for event in self.process(batch, latest_only=latest_only):
                    if outputs is not None:
                        outputs.event(event)
                if outputs is not None and outputs.needs_frames:
                    if outputs.video is not None:
                        for f in batch:
                            outputs.write_frame(self.annotate(f.image))
                    else:
                        self.annotate(batch[-1].image)
                    if not outputs.show(batch[-1].image):
                        reason = "quit"
                        break
        except KeyboardInterrupt:
            reason = "interrupted"
        except Exception as e:  # noqa: BLE001 - summarised and written, then re-raised below
            reason, error = ("source_error" if isinstance(e, SourceError) else "error"), e
        last = self.flush()
        if last is not None and outputs is not None:
            outputs.event(last)
        wall = time.monotonic() - t0
        summary = RunSummary(reason, self.frames, self.inferences, self.events, wall,
                             self.frames / wall if wall > 0 else 0.0, source.stats.as_dict(),
                             self.latency.summary(), str(error) if error else None)
        self.last_summary = summary
        _log_summary(summary)
        if outputs is not None:
            outputs.summary(summary)
        if error is not None:
            raise error
        return summary


def _log_summary(s: RunSummary) -> None:
    log.info("stopped (%s): %d frames, %d inferences, %d events in %.1fs (%.1f fps)", s.reason,
             s.frames, s.inferences, s.events, s.wall_s, s.fps)
    c = s.capture
    if c:
        log.info("capture: read %d, delivered %d, dropped %d, decode errors %d, reconnects %d",
                 c["read"], c["delivered"], c["dropped"], c["decode_errors"], c["reconnects"])
    for stage, st in s.latency_ms.items():
        log.info("latency %-10s mean %7.2f ms  p50 %7.2f  p95 %7.2f  (n=%d)", stage,
                 st["mean_ms"], st["p50_ms"], st["p95_ms"], st["n"])


# -- the program -------------------------------------------------------------------------------
@dataclass
class LiveOptions:
    model: str | None = None
    source: str = "0"
    card: str | None = None
    backend: str = "auto"
    providers: list[str] | None = None
    plugin: str | None = None
    cuda_graph: bool = False
    stride: int = 4
    smoothing: str = "ema"
    smooth_n: int = 5
    ema_alpha: float = 0.3
    threshold: float = 0.5
    topk: int = 3
    realtime: bool | None = None
    buffer_size: int = 4
    headless: bool = False
    out_video: str | None = None
    out_jsonl: str | None = None
    max_frames: int | None = None
    duration: float | None = None


def run_live(opts: LiveOptions, stop: threading.Event | None = None) -> RunSummary:
    """Open the window (unless headless), the model and the source; run; release everything."""
    with contextlib.ExitStack() as stack:
        display = None
        if not opts.headless:
            display = WindowDisplay()  # fail before loading anything if there is no GUI
            stack.callback(display.close)
        elif not (opts.out_video or opts.out_jsonl):
            log.warning("--headless without --out-video / --out-jsonl: results are only logged")
        model = resolve_model_path(opts.model)
        backend = stack.enter_context(open_backend(
            model, opts.backend, card=opts.card, providers=opts.providers, plugin=opts.plugin,
            cuda_graph=opts.cuda_graph))
        recognizer = LiveRecognizer(backend, stride=opts.stride, smoothing=opts.smoothing,
                                    smooth_n=opts.smooth_n, ema_alpha=opts.ema_alpha,
                                    threshold=opts.threshold, topk=opts.topk)
        card = recognizer.card
        log.info("model %s (%s): %d labels, T=%d, %dx%d, span %d frames, stride %d", model,
                 backend.name, card.num_classes, card.frames, card.input_size, card.input_size,
                 recognizer.window.span, opts.stride)
        source = FrameSource(opts.source, realtime=opts.realtime, buffer_size=opts.buffer_size)
        stack.enter_context(source)  # started; stopped (thread joined, capture released) on exit
        outputs = LiveOutputs(opts.out_jsonl, opts.out_video, fps=source.fps)
        outputs.display = display
        stack.callback(outputs.close)
        return recognizer.run(source, outputs=outputs, max_frames=opts.max_frames,
                              duration=opts.duration, stop=stop)
    raise AssertionError("unreachable")  # pragma: no cover


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1 (got {value})")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m runtime.live", description=__doc__.split("\n\n")[0])
    io = p.add_argument_group("model and source")
    io.add_argument("--model", help=f".onnx, .engine/.plan or .pt (default: {DEFAULT_MODEL})")
    io.add_argument("--card", help="model card JSON overriding the one found with the model")
    io.add_argument("--source", default="0", help="camera index, video file, rtsp/http URL or a "
                    "GStreamer pipeline ('... ! appsink'); default %(default)s")
    io.add_argument("--backend", default="auto", choices=["auto", *BACKENDS],
                    help="default: from the model's suffix")
    io.add_argument("--providers", type=lambda s: [x for x in s.split(",") if x],
                    help="onnxruntime providers, comma separated: cpu,cuda,tensorrt")
    io.add_argument("--plugin", metavar="LIB", help="TensorRT plugin library (.so) to load")
    io.add_argument("--cuda-graph", action="store_true", help="TensorRT: replay a CUDA graph")
    io.add_argument("--realtime", action=argparse.BooleanOptionalAction, default=None,
                    help="files: play at their fps dropping what inference cannot keep up with "
                    "(default), or --no-realtime to process every frame")
    io.add_argument("--buffer-size", type=_positive_int, default=4,
                    help="newest frames kept between capture and inference (%(default)s)")
    rec = p.add_argument_group("recognition")
    rec.add_argument("--stride", type=_positive_int, default=4, help="infer every N frames (%(default)s)")
    rec.add_argument("--smoothing", choices=["ema", "mean"], default="ema", help="(%(default)s)")
    rec.add_argument("--smooth-n", type=_positive_int, default=5, help="windows averaged by mean (%(default)s)")
    rec.add_argument("--ema-alpha", type=float, default=0.3, help="factor of ema (%(default)s)")
    rec.add_argument("--threshold", type=float, default=0.5, help="min smoothed score of an action (%(default)s)")
    rec.add_argument("--topk", type=_positive_int, default=3, help="labels drawn on the frame (%(default)s)")
    out = p.add_argument_group("output")
    out.add_argument("--headless", action="store_true", help="no window (write files instead)")
    out.add_argument("--out-video", help="annotated video (.mp4 / .avi)")
    out.add_argument("--out-jsonl", help="recognised actions, one JSON per line, then a summary")
    out.add_argument("--max-frames", type=_positive_int, help="stop after N frames")
    out.add_argument("--duration", type=float, help="stop after N seconds")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return p


def options_from_args(args: argparse.Namespace) -> LiveOptions:
    names = LiveOptions.__dataclass_fields__
    return LiveOptions(**{k: v for k, v in vars(args).items() if k in names})


_USER_ERRORS = (FileNotFoundError, CardError, BackendError, GStreamerUnavailableError,
                DisplayUnavailableError, ValueError)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("runtime").setLevel(args.log_level)
    stop = threading.Event()

    def on_sigint(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        log.warning("Ctrl-C: finishing (press again to abort)")
        stop.set()

    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, on_sigint) if in_main else None
    try:
        summary = run_live(options_from_args(args), stop=stop)
    except _USER_ERRORS as e:
        log.error("%s", e)
        return 2
    except SourceError as e:
        log.error("source failed: %s", e)
        return 1
    finally:
        if in_main:
            signal.signal(signal.SIGINT, previous)
    return 0 if summary.error is None else 1


if __name__ == "__main__":
    sys.exit(main())
