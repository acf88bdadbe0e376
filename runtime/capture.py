"""Frame sources: a camera index, a video file, an RTSP/HTTP URL or a GStreamer pipeline.

A :class:`FrameSource` reads on its own thread into a small bounded buffer that keeps only the newest
frames, so a slow consumer never builds up lag: the older frames are dropped and *counted*. Every
frame carries its index in the stream and its capture timestamp.

* Live sources (camera, URL, pipeline) are always real time. When the stream drops, freezes (a
  ``read()`` blocked for ``stall_timeout`` seconds: the connection is open but no frame comes) or is
  not up yet when the source starts, the reader (re)connects with exponential back-off
  (:class:`ReconnectPolicy`) and raises :class:`StreamLostError` to the consumer once the attempts
  or the outage limit are spent. The first frame after an outage carries a :class:`Gap`.
* A file plays at its own fps with ``realtime=True`` (frames the consumer was too slow for are
  dropped and counted, exactly as with a camera) or delivers every frame with ``realtime=False``.
  The end of the file is a clean :class:`EndOfStream`; a file that ends before the frame count its
  container declares is reported as truncated (:attr:`CaptureStats.declared_frames`). A file that
  cannot be opened fails at once (no retries).
* A read that fails mid-stream, or a malformed frame, is counted as a decode error and skipped.
* Every wait has a timeout. A reader blocked inside ``read()`` for ``stall_timeout`` seconds is
  abandoned (OpenCV cannot interrupt it; it exits when OpenCV's own read timeout, 30 s, returns)
  and a new reader reconnects; for a file that is an error.

The capture object is made by an ``opener`` callable (default :func:`open_capture`, i.e.
``cv2.VideoCapture``), so tests and unusual cameras can inject their own.
"""

from __future__ import annotations

import collections
import errno
import logging
import math
import re
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol

import cv2
import numpy as np

from runtime.gstreamer import is_pipeline, require_gstreamer

log = logging.getLogger(__name__)

__all__ = [
    "CaptureLike",
    "CaptureStats",
    "EndOfStream",
    "Frame",
    "FrameSource",
    "Gap",
    "OPENCV_READ_TIMEOUT_S",
    "ReconnectPolicy",
    "SourceError",
    "SourceSpec",
    "StreamLostError",
    "open_capture",
    "parse_source",
]

# OpenCV's FFmpeg backend gives up on a blocked read after 30 s (its default read timeout); the stall
# timeout must be shorter, or OpenCV ends the stream before the stall is noticed.
OPENCV_READ_TIMEOUT_S = 30.0
_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
_DEFAULT_FPS = 30.0


class SourceError(RuntimeError):
    """A source that cannot be opened or that stopped delivering frames."""


class StreamLostError(SourceError):
    """A live stream dropped and did not come back within the reconnect policy."""


class EndOfStream(Exception):
    """The source has ended (end of file, or stopped) and every buffered frame was delivered."""


class CaptureLike(Protocol):
    """What a source needs from ``cv2.VideoCapture`` (``grab`` is optional)."""

    def read(self) -> tuple[bool, Any]: ...
    def isOpened(self) -> bool: ...  # noqa: N802 (OpenCV's name)
    def release(self) -> None: ...
    def get(self, prop_id: int) -> float: ...


@dataclass(frozen=True)
class SourceSpec:
    """A parsed ``--source``: ``kind`` is camera, file, url or pipeline."""

    kind: str
    target: int | str
    api: int = cv2.CAP_ANY

    @property
    def live(self) -> bool:
        return self.kind != "file"

    def describe(self) -> str:
        return f"{self.kind} {self.target!r}"


def parse_source(source: int | str | Path, kind: str | None = None) -> SourceSpec:
    """``"0"`` -> camera 0; ``"a ! b ! appsink"`` -> GStreamer pipeline; ``"rtsp://..."`` -> URL;
    ``/dev/video0`` -> camera; anything else -> a video file. ``kind`` forces the kind."""
    kinds = ("camera", "file", "url", "pipeline")
    if kind is not None and kind not in kinds:
        raise ValueError(f"kind must be one of {kinds} (got {kind!r})")
    if isinstance(source, Path):
        source = str(source)
    if isinstance(source, int):
        return SourceSpec("camera", source)
    text = str(source).strip()
    if not text:
        raise ValueError("empty source")
    if kind is None:
        if text.isdigit():
            kind = "camera"
        elif is_pipeline(text):
            kind = "pipeline"
        elif text.startswith("file://"):
            kind, text = "file", text[len("file://"):]
        elif _URL_RE.match(text):
            kind = "url"
        elif re.fullmatch(r"/dev/video\d+", text):
            kind = "camera"
        else:
            kind = "file"
    if kind == "camera":
        return SourceSpec("camera", int(text) if text.isdigit() else text)
    if kind == "pipeline":
        return SourceSpec("pipeline", text, cv2.CAP_GSTREAMER)
    return SourceSpec(kind, text)


def open_capture(spec: SourceSpec) -> cv2.VideoCapture:
    """The default opener: ``cv2.VideoCapture`` with the right backend for the source."""
    if spec.kind == "file":
        path = Path(str(spec.target))
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, "the source is a folder, not a video file",
                                    str(path))
        if not path.is_file():
            raise FileNotFoundError(errno.ENOENT, "video file not found", str(path))
    if spec.kind == "pipeline":
        require_gstreamer(str(spec.target))
    cap = cv2.VideoCapture(spec.target, spec.api)
    if spec.kind == "camera" and cap.isOpened():
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # keep the driver from queueing stale frames
    return cap


@dataclass(frozen=True)
class ReconnectPolicy:
    """Exponential back-off for live streams: wait ``initial_delay * factor**k`` (at most
    ``max_delay``) before attempt ``k``; give up after ``max_retries`` attempts or once the outage
    would exceed ``timeout`` seconds (``None``: no limit of that kind)."""

    initial_delay: float = 0.5
    max_delay: float = 8.0
    factor: float = 2.0
    max_retries: int | None = 10
    timeout: float | None = 120.0

    def __post_init__(self) -> None:
        if self.initial_delay < 0 or self.max_delay < self.initial_delay or self.factor < 1:
            raise ValueError(f"invalid back-off {self}")
        if self.max_retries is not None and self.max_retries < 0:
            raise ValueError("max_retries must be >= 0 or None")
        if self.timeout is not None and self.timeout <= 0:
            raise ValueError("timeout must be > 0 or None")

    def delay(self, attempt: int) -> float:
        return min(self.max_delay, self.initial_delay * self.factor ** attempt)

    def describe(self) -> str:
        attempts = "unlimited attempts" if self.max_retries is None else f"at most {self.max_retries} attempts"
        limit = "no time limit" if self.timeout is None else f"for at most {self.timeout:g}s"
        return f"{attempts}, {limit}, waits {self.initial_delay:g}s doubling to {self.max_delay:g}s"


@dataclass
class CaptureStats:
    """``read``: frames obtained from the source; ``delivered``: handed to the consumer;
    ``dropped``: discarded because the consumer was too slow (after the end,
    ``read == delivered + dropped``); ``decode_errors``: failed reads and malformed frames skipped;
    ``reconnects``: successful reconnections of a live stream; ``stalls``: reads abandoned after
    ``stall_timeout``; ``declared_frames``: the frame count a file's container declares (0: none or
    a live source); ``truncated``: a file that ended before it (frames decoded < declared)."""

    read: int = 0
    delivered: int = 0
    dropped: int = 0
    decode_errors: int = 0
    reconnects: int = 0
    stalls: int = 0
    declared_frames: int = 0
    truncated: bool = False

    def as_dict(self) -> dict[str, int | bool]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Gap:
    """An outage of a live stream, carried by the first frame after it. ``reason``: ``dropped``
    (reads failed), ``stalled`` (a read blocked for ``stall_timeout``) or ``not_up`` (not up at
    start); ``start_s`` / ``end_s``: stream times (``pts_s``) of the last frame before it (the
    source's start if none) and of the frame after it; ``attempts``: connection attempts made."""

    reason: str
    start_s: float
    end_s: float
    attempts: int

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def to_dict(self) -> dict[str, Any]:
        return {"reason": self.reason, "start_s": round(self.start_s, 6),
                "end_s": round(self.end_s, 6), "duration_s": round(self.duration_s, 6),
                "attempts": self.attempts}


@dataclass(slots=True)
class Frame:
    """One BGR frame. ``timestamp``: ``time.monotonic()`` when it was captured; ``pts_s``: its
    position in the stream in seconds (file: index / fps; live: since the source started);
    ``decode_ms``: time spent in ``read()``; ``gap``: the outage just before this frame, if any."""

    index: int
    timestamp: float
    pts_s: float
    image: np.ndarray
    decode_ms: float = 0.0
    gap: Gap | None = None


def _as_bgr(img: Any) -> np.ndarray | None:
    """The frame as (H, W, 3) uint8, or None if it is malformed."""
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.size == 0:
        return None
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    if img.ndim != 3 or img.shape[2] != 3:
        return None
    return img


class FrameSource:
    """Threaded frame reader with a bounded newest-frames buffer. Use as a context manager::

        with FrameSource("video.mp4", realtime=False) as src:
            for frame in src:
                ...

    ``notify``: an event set whenever a frame, the end or an error is ready (one event can serve
    several sources, so a consumer of many streams waits on one thing)."""

    def __init__(
        self,
        source: int | str | Path,
        *,
        realtime: bool | None = None,
        buffer_size: int = 4,
        reconnect: ReconnectPolicy | None = None,
        opener: Callable[[SourceSpec], CaptureLike] | None = None,
        kind: str | None = None,
        fps: float | None = None,
        max_consecutive_failures: int = 5,
        stall_timeout: float | None = 10.0,
        notify: threading.Event | None = None,
    ) -> None:
        self.spec = parse_source(source, kind)
        if realtime is None:
            realtime = True
        if not realtime and self.spec.live:
            raise ValueError(
                f"realtime=False only applies to video files; {self.spec.describe()} is a live source"
            )
        if buffer_size < 1:
            raise ValueError("buffer_size must be >= 1")
        if max_consecutive_failures < 1:
            raise ValueError("max_consecutive_failures must be >= 1")
        if stall_timeout is not None and not 0 < stall_timeout < OPENCV_READ_TIMEOUT_S:
            raise ValueError(f"stall timeout must be > 0 and below OpenCV's own read timeout "
                             f"({OPENCV_READ_TIMEOUT_S:.0f} s), got {stall_timeout}")
        self.reconnect = reconnect or ReconnectPolicy()
        if opener is None and self.spec.kind == "pipeline":
            require_gstreamer(str(self.spec.target))  # fail now, not with an empty stream
        self.realtime = realtime
        self.buffer_size = buffer_size
        self._opener = opener or open_capture
        self._fps_hint = fps
        self._max_failures = max_consecutive_failures
        self._stall_timeout = stall_timeout
        self._notify = notify

        self.fps = float(fps) if fps else _DEFAULT_FPS
        self.frame_size: tuple[int, int] | None = None  # (width, height) when the source says
        self._buf: collections.deque[Frame] = collections.deque()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._generation = 0  # the current reader; older ones were abandoned (stalled)
        self._blocked_since: float | None = None  # when the current reader entered read()/open
        self._stats = CaptureStats()
        self._ended = False
        self._error: BaseException | None = None
        self._t_start = 0.0
        self._frame_count = 0
        self._next_index = 0  # stream position of the next frame (carried across reconnects)
        self._last_pts: float | None = None

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> "FrameSource":
        """Open the source and start reading. A file that cannot be opened fails here; a live
        source that is not up yet is retried by the reader with the reconnect policy."""
        if self._thread is not None:
            raise RuntimeError("source already started")
        self._t_start = time.monotonic()
        try:
            cap = self._opener(self.spec)  # FileNotFoundError / GStreamerUnavailableError propagate
        except (FileNotFoundError, IsADirectoryError, PermissionError):
            raise
        except Exception as e:  # noqa: BLE001 - a live source may fail in many ways; retried
            if not self.spec.live:
                raise
            log.debug("opening %s failed: %s", self.spec.describe(), e)
            cap = None
        if cap is None or not cap.isOpened():
            if cap is not None:
                cap.release()
            hint = {
                "camera": " (is it connected, and not in use by another program?)",
                "url": " (is the address right and the server reachable?)",
                "pipeline": " (run it with gst-launch-1.0 to see GStreamer's error)",
                "file": " (unsupported or corrupt file?)",
            }[self.spec.kind]
            if not self.spec.live:
                raise SourceError(f"cannot open {self.spec.describe()}{hint}")
            log.warning("%s is not up yet%s: retrying with back-off (%s)", self.spec.describe(),
                        hint, self.reconnect.describe())
            cap = None
        else:
            self._read_properties(cap)
            log.info("opened %s (%.2f fps, %s)", self.spec.describe(), self.fps,
                     "real time" if self.realtime else "every frame")
        self._spawn(cap, None if cap is not None else "not_up")
        return self

    def _spawn(self, cap: CaptureLike | None, reason: str | None) -> None:
        self._generation += 1
        self._thread = threading.Thread(target=self._reader, args=(self._generation, cap, reason),
                                        name=f"tsi-capture-{self._generation}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 3.0) -> None:
        """Stop the reader, join it and release the capture (idempotent)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("capture thread still blocked in read() after %.1fs; leaving it "
                            "(daemon) to exit on its own", timeout)

    close = stop

    def set_notify(self, event: threading.Event | None) -> None:
        """The event to set when a frame, the end or an error is ready (see the class doc)."""
        self._notify = event

    def __enter__(self) -> "FrameSource":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- state ---------------------------------------------------------------------------------
    @property
    def stats(self) -> CaptureStats:
        with self._cond:
            return CaptureStats(**self._stats.as_dict())

    @property
    def ended(self) -> bool:
        with self._cond:
            return self._ended and not self._buf

    @property
    def buffered(self) -> int:
        with self._cond:
            return len(self._buf)

    # -- consumer side -------------------------------------------------------------------------
    def read_batch(self, timeout: float = 1.0, max_frames: int | None = None) -> list[Frame]:
        """Every buffered frame (oldest first, at most ``max_frames``), waiting up to ``timeout``
        seconds for one. ``[]`` on timeout; :class:`EndOfStream` once the source has ended and
        the buffer is empty; the reader's error (e.g. :class:`StreamLostError`) likewise."""
        if self._thread is None:
            raise RuntimeError("call start() first (or use the source as a context manager)")
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._buf:
                if self._error is not None:
                    raise self._error
                if self._ended:
                    raise EndOfStream(self.spec.describe())
                self._check_stall()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return []
                self._cond.wait(min(remaining, 0.25))
            n = len(self._buf) if max_frames is None else max(1, min(max_frames, len(self._buf)))
            out = [self._buf.popleft() for _ in range(n)]
            self._stats.delivered += n
            self._cond.notify_all()  # room for an offline (realtime=False) reader
            return out

    def read(self, timeout: float = 1.0) -> Frame | None:
        """The oldest buffered frame, or None after ``timeout`` seconds (see :meth:`read_batch`)."""
        batch = self.read_batch(timeout, max_frames=1)
        return batch[0] if batch else None

    def __iter__(self) -> Iterator[Frame]:
        while True:
            try:
                frame = self.read(timeout=0.5)
            except EndOfStream:
                return
            if frame is not None:
                yield frame

    def _check_stall(self) -> None:
        """(Holding the lock.) A reader blocked in read() or open for ``stall_timeout``: a live
        source is reconnected by a new reader (the blocked one is abandoned), a file fails."""
        since = self._blocked_since
        if self._stall_timeout is None or since is None or self._stop.is_set():
            return
        idle = time.monotonic() - since
        if idle <= self._stall_timeout:
            return
        if not self.spec.live:
            raise SourceError(
                f"{self.spec.describe()} stalled: no frame and no read() return for {idle:.1f}s "
                f"(stall timeout {self._stall_timeout}s)"
            )
        self._stats.stalls += 1
        self._blocked_since = None
        log.warning("%s stalled: no frame for %.1fs (stall timeout %.1fs); reconnecting",
                    self.spec.describe(), idle, self._stall_timeout)
        self._spawn(None, "stalled")  # the blocked reader exits when its read() returns

    # -- reader thread -------------------------------------------------------------------------
    def _read_properties(self, cap: CaptureLike) -> None:
        get = getattr(cap, "get", None)
        fps = float(get(cv2.CAP_PROP_FPS)) if get else 0.0
        if self._fps_hint:
            self.fps = float(self._fps_hint)
        elif math.isfinite(fps) and 0 < fps <= 1000:
            self.fps = fps
        else:
            log.warning("%s reports no usable fps (%r); assuming %.0f", self.spec.describe(), fps,
                        _DEFAULT_FPS)
            self.fps = _DEFAULT_FPS
        if get:
            w, h = int(get(cv2.CAP_PROP_FRAME_WIDTH) or 0), int(get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
            self.frame_size = (w, h) if w > 0 and h > 0 else None
        count = float(get(cv2.CAP_PROP_FRAME_COUNT)) if get else 0.0
        if not self.spec.live and math.isfinite(count) and count > 0:
            self._frame_count = int(count)
            with self._cond:
                self._stats.declared_frames = self._frame_count

    def _current(self, generation: int) -> bool:
        return generation == self._generation and not self._stop.is_set()

    def _reader(self, generation: int, cap: CaptureLike | None, reason: str | None) -> None:
        index = self._next_index
        failures = 0  # consecutive failed reads, not yet classified
        period = 1.0 / self.fps
        pace = self.realtime and not self.spec.live
        gap: Gap | None = None
        t0 = time.monotonic()
        try:
            if cap is None:  # not up yet, or taking over from a stalled reader
                cap, gap = self._connect(generation, reason or "dropped")
            while cap is not None and self._current(generation):
                skip = False
                if pace:  # play the file at its own fps, like a camera
                    due = t0 + index * period
                    now = time.monotonic()
                    if now < due:
                        if self._stop.wait(due - now):
                            break
                    elif now - due > period and hasattr(cap, "grab"):
                        skip = True  # decoding fell behind the clock: skip without retrieving
                t_read = self._blocked_since = time.monotonic()
                if skip:
                    ok, img = bool(cap.grab()), None
                else:
                    ok, img = cap.read()
                t_done = time.monotonic()
                if generation != self._generation:
                    break  # abandoned while blocked (stalled): a newer reader took over
                self._blocked_since = None
                if not ok:
                    failures += 1
                    if failures < self._max_failures and not self._at_end(index):
                        continue
                    if not self.spec.live:
                        self._end_of_file(index, failures)
                        break  # end of file (trailing failed reads are the end, not errors)
                    failures = 0
                    cap.release()
                    cap, gap = self._connect(generation, "dropped")
                    continue
                with self._cond:
                    self._stats.decode_errors += failures  # failed reads followed by a good one
                index += failures
                failures = 0
                frame_index = index
                index += 1
                self._next_index = index
                if skip:
                    with self._cond:
                        self._stats.read += 1
                        self._stats.dropped += 1
                    continue
                image = _as_bgr(img)
                if image is None:
                    with self._cond:
                        self._stats.decode_errors += 1
                    log.debug("malformed frame %d skipped (%r)", frame_index,
                              getattr(img, "shape", type(img).__name__))
                    continue
                pts = frame_index * period if not self.spec.live else t_done - self._t_start
                if gap is not None:
                    gap = Gap(gap.reason, gap.start_s, pts, gap.attempts)
                self._last_pts = pts
                self._push(Frame(frame_index, t_done, pts, image, (t_done - t_read) * 1e3, gap))
                gap = None
        except BaseException as e:  # noqa: BLE001 - handed to the consumer, which re-raises it
            log.debug("capture thread failed: %s", e)
            if generation == self._generation:
                with self._cond:
                    self._error = e
        finally:
            if cap is not None:
                cap.release()
            if generation == self._generation:
                self._blocked_since = None
                with self._cond:
                    self._ended = True
                    self._cond.notify_all()
                if self._notify is not None:
                    self._notify.set()
            log.debug("capture thread %d finished: %s", generation, self._stats)

    def _at_end(self, index: int) -> bool:
        return not self.spec.live and self._frame_count > 0 and index >= self._frame_count

    def _end_of_file(self, index: int, failures: int) -> None:
        """Compare the frames read with the count the container declares (a cut file)."""
        declared = self._frame_count
        if declared and index < declared:
            missing = declared - index
            with self._cond:
                self._stats.truncated = True
            log.warning("%s ended after %d of the %d frames its container declares (%d missing): "
                        "the file is truncated or damaged", self.spec.describe(), index, declared,
                        missing)

    def _push(self, frame: Frame) -> None:
        with self._cond:
            self._stats.read += 1
            if self.realtime:
                carry: Gap | None = None
                while len(self._buf) >= self.buffer_size:
                    old = self._buf.popleft()
                    carry = old.gap or carry
                    self._stats.dropped += 1
                if carry is not None:  # the outage must reach the consumer with a later frame
                    target = self._buf[0] if self._buf else frame
                    if target.gap is None:
                        target.gap = Gap(carry.reason, carry.start_s, target.pts_s, carry.attempts)
            else:
                while len(self._buf) >= self.buffer_size and not self._stop.is_set():
                    self._cond.wait(0.1)
                if self._stop.is_set():
                    self._stats.dropped += 1
                    return
            self._buf.append(frame)
            self._cond.notify_all()
        if self._notify is not None:
            self._notify.set()

    def _connect(self, generation: int, reason: str) -> tuple[CaptureLike | None, Gap | None]:
        """Open the live source with back-off (after a drop, a stall, or at a start where it was
        not up); (None, None) if stopped or superseded meanwhile. Raises :class:`StreamLostError`
        once the policy's attempts or time limit are spent."""
        policy = self.reconnect
        t_lost = time.monotonic()
        start_s = self._last_pts if self._last_pts is not None else t_lost - self._t_start
        what = {"not_up": "did not come up", "dropped": "dropped and did not come back",
                "stalled": "stalled and did not come back"}[reason]
        attempt = 0
        while self._current(generation):
            elapsed = time.monotonic() - t_lost
            delay = policy.delay(attempt) if reason != "not_up" or attempt else 0.0
            if policy.max_retries is not None and attempt >= policy.max_retries:
                raise StreamLostError(
                    f"{self.spec.describe()} {what} after {attempt} connection attempt(s) over "
                    f"{elapsed:.1f}s"
                )
            if policy.timeout is not None and elapsed + delay > policy.timeout:
                raise StreamLostError(
                    f"{self.spec.describe()} {what} within {policy.timeout:.1f}s "
                    f"({attempt} connection attempt(s))"
                )
            if delay > 0:
                log.warning("%s %s; connecting in %.2fs (attempt %d%s)", self.spec.describe(),
                            reason.replace("_", " "), delay, attempt + 1,
                            f"/{policy.max_retries}" if policy.max_retries is not None else "")
                if self._stop.wait(delay):
                    return None, None
            attempt += 1
            self._blocked_since = time.monotonic()
            try:
                new = self._opener(self.spec)
            except Exception as e:  # noqa: BLE001 - any open failure is one failed attempt
                log.warning("connection attempt %d to %s failed: %s", attempt,
                            self.spec.describe(), e)
                continue
            finally:
                if generation == self._generation:
                    self._blocked_since = None
            if generation != self._generation:  # abandoned while opening
                if new is not None:
                    new.release()
                return None, None
            if new is not None and new.isOpened():
                if reason == "not_up":
                    self._read_properties(new)
                else:
                    with self._cond:
                        self._stats.reconnects += 1
                log.info("%s %s after %.2fs (%d attempt(s))", self.spec.describe(),
                         "up" if reason == "not_up" else "reconnected", time.monotonic() - t_lost,
                         attempt)
                return new, Gap(reason, start_s, start_s, attempt)
            if new is not None:
                new.release()
        return None, None
