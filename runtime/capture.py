"""The frame source: a camera, a file, a URL or a pipeline read on its own thread into a small
bounded buffer that keeps only the newest frames, so a slow consumer never builds up lag: the older
frames are dropped and *counted*. Every frame carries its index in the stream and its capture
timestamp (:mod:`runtime.frames`).

* Live sources (camera, URL, pipeline) are always real time. When the stream drops, freezes (a
  ``read()`` blocked for ``stall_timeout`` seconds: the connection is open but no frame comes) or is
  not up yet when the source starts, the reader (re)connects with exponential back-off
  (:mod:`runtime.reconnect`) and raises :class:`~runtime.reconnect.StreamLostError` to the consumer
  once the attempts or the outage limit are spent. The first frame after an outage carries a
  :class:`~runtime.frames.Gap`.
* A file plays at its own fps with ``realtime=True`` (frames the consumer was too slow for are
  dropped and counted, exactly as with a camera) or delivers every frame with ``realtime=False``.
  The end of the file is a clean :class:`~runtime.frames.EndOfStream`; a file that ends before the
  frame count its container declares is reported as truncated
  (:attr:`~runtime.frames.CaptureStats.declared_frames`). A file that cannot be opened fails at
  once (no retries).
* A read that fails mid-stream, or a malformed frame, is counted as a decode error and skipped
  (:class:`runtime.reading.ReadFailures` tells those from the end of a stream).
* Every wait has a timeout. A reader blocked inside ``read()`` for ``stall_timeout`` seconds is
  abandoned (OpenCV cannot interrupt it; it exits when OpenCV's own read timeout, 30 s, returns)
  and a new reader reconnects; for a file that is an error.

The capture object is made by an ``opener`` callable (default
:func:`runtime.sources.open_capture`, i.e. ``cv2.VideoCapture``), so tests and unusual cameras can
inject their own.
"""

from __future__ import annotations

import collections
import logging
import math
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import cv2

from runtime.frames import CaptureStats, EndOfStream, Frame, Gap, as_bgr
from runtime.gstreamer import require_gstreamer
from runtime.reading import SKIP, STOP, Pacer, ReadFailures
from runtime.reconnect import ReconnectPolicy, connect_with_backoff
from runtime.sources import (OPEN_HINTS, CaptureLike, SourceError, SourceSpec, check_realtime,
                             check_stall_timeout, open_capture, parse_source)

log = logging.getLogger(__name__)

__all__ = ["BUFFER_SIZE", "DEFAULT_FPS", "FrameSource", "STALL_TIMEOUT_S"]

BUFFER_SIZE = 4  # newest frames kept between the reader and the consumer
STALL_TIMEOUT_S = 10.0  # a read blocked this long is a stall (below OpenCV's own 30 s)
DEFAULT_FPS = 30.0  # a source that reports no usable frame rate


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
        buffer_size: int = BUFFER_SIZE,
        reconnect: ReconnectPolicy | None = None,
        opener: Callable[[SourceSpec], CaptureLike] | None = None,
        kind: str | None = None,
        fps: float | None = None,
        max_consecutive_failures: int = 5,
        stall_timeout: float | None = STALL_TIMEOUT_S,
        notify: threading.Event | None = None,
    ) -> None:
        self.spec = parse_source(source, kind)
        check_realtime(self.spec, realtime)
        realtime = True if realtime is None else realtime
        if buffer_size < 1:
            raise ValueError("buffer_size must be >= 1")
        if max_consecutive_failures < 1:
            raise ValueError("max_consecutive_failures must be >= 1")
        check_stall_timeout(stall_timeout)
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

        self.fps = float(fps) if fps else DEFAULT_FPS
        self.frame_size: tuple[int, int] | None = None  # (width, height) when the source says
        self._buf: collections.deque[Frame] = collections.deque()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._generation = 0  # the current reader; older ones were abandoned (stalled)
        self._blocked_since: float | None = None  # when the current reader entered read()/open
        self._connecting = False  # the reader is (re)connecting a live stream
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
            hint = OPEN_HINTS[self.spec.kind]
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
    def connecting(self) -> bool:
        """A live stream being (re)connected now (not up at start, dropped or stalled)."""
        return self._connecting

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
                        DEFAULT_FPS)
            self.fps = DEFAULT_FPS
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
        """The reader thread: pace, read, classify failures, reconnect, stamp gaps, push."""
        index = self._next_index
        failures = ReadFailures(self._max_failures)
        pacer = Pacer(self.fps, self.realtime and not self.spec.live, self._stop.wait)
        gap: Gap | None = None
        try:
            if cap is None:  # not up yet, or taking over from a stalled reader
                cap, gap = self._connect(generation, reason or "dropped")
            while cap is not None and self._current(generation):
                action = pacer.before(index, can_skip=hasattr(cap, "grab"))
                if action == STOP:
                    break
                t_read = self._blocked_since = time.monotonic()
                ok, img = (bool(cap.grab()), None) if action == SKIP else cap.read()
                t_done = time.monotonic()
                if generation != self._generation:
                    break  # abandoned while blocked (stalled): a newer reader took over
                self._blocked_since = None
                if not ok:
                    if not failures.failed(self._at_end(index)):
                        continue  # a decode error, or the start of the end: the next reads tell
                    if not self.spec.live:
                        self._end_of_file(index)
                        break  # end of file (trailing failed reads are the end, not errors)
                    cap.release()
                    cap, gap = self._connect(generation, "dropped")
                    continue
                skipped = failures.recovered()  # failed reads followed by a good one
                frame_index = index + skipped
                index = self._next_index = frame_index + 1
                image = self._accept(action == SKIP, img, frame_index, skipped)
                if image is None:
                    continue
                pts = frame_index * pacer.period if not self.spec.live else t_done - self._t_start
                gap = gap.ending_at(pts) if gap is not None else None
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

    def _accept(self, skipped_frame: bool, img: object, frame_index: int, decode_errors: int):
        """The frame as BGR, or None for one skipped by the pacer (dropped) or malformed (a
        decode error); the counts updated."""
        with self._cond:
            self._stats.decode_errors += decode_errors
            if skipped_frame:
                self._stats.read += 1
                self._stats.dropped += 1
                return None
        image = as_bgr(img)
        if image is None:
            with self._cond:
                self._stats.decode_errors += 1
            log.debug("malformed frame %d skipped (%r)", frame_index,
                      getattr(img, "shape", type(img).__name__))
        return image

    def _at_end(self, index: int) -> bool:
        return not self.spec.live and self._frame_count > 0 and index >= self._frame_count

    def _end_of_file(self, index: int) -> None:
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
                self._make_room(frame)
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

    def _make_room(self, frame: Frame) -> None:
        """(Holding the lock.) Drop the oldest frames (counted) until ``frame`` fits; an outage a
        dropped frame carried is stamped on the oldest frame kept, so it reaches the consumer."""
        carry: Gap | None = None
        while len(self._buf) >= self.buffer_size:
            old = self._buf.popleft()
            carry = old.gap or carry
            self._stats.dropped += 1
        if carry is not None:
            target = self._buf[0] if self._buf else frame
            if target.gap is None:
                target.gap = carry.ending_at(target.pts_s)

    def _connect(self, generation: int, reason: str) -> tuple[CaptureLike | None, Gap | None]:
        """Open the live source with back-off (:func:`runtime.reconnect.connect_with_backoff`);
        (None, None) if stopped or superseded meanwhile; else the capture and the outage's gap."""
        start_s = (self._last_pts if self._last_pts is not None
                   else time.monotonic() - self._t_start)

        def blocked(inside: bool) -> None:
            if inside:
                self._blocked_since = time.monotonic()
            elif generation == self._generation:
                self._blocked_since = None

        self._connecting = True
        try:
            got = connect_with_backoff(self.spec, self._opener, self.reconnect, reason,
                                       current=lambda: self._current(generation),
                                       wait=self._stop.wait, blocked=blocked)
        finally:
            if generation == self._generation:
                self._connecting = False
        if got is None:
            return None, None
        cap, attempts = got
        if reason == "not_up":
            self._read_properties(cap)
        else:
            with self._cond:
                self._stats.reconnects += 1
        return cap, Gap(reason, start_s, start_s, attempts)
