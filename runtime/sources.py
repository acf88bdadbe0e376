"""Sources and how they are opened: a camera index, a video file, an RTSP/HTTP URL or a GStreamer
pipeline, parsed from a ``--source`` text into a :class:`SourceSpec` and opened by
:func:`open_capture` (``cv2.VideoCapture`` with the right backend). Also the option checks that a
source's reader and the run plan share (stated once here, each naming the option it checks)."""

from __future__ import annotations

import errno
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import cv2

from runtime.common.video import check_openable_path
from runtime.gstreamer import is_pipeline, require_gstreamer

__all__ = [
    "CaptureLike",
    "OPENCV_READ_TIMEOUT_S",
    "OPEN_HINTS",
    "SourceError",
    "SourceSpec",
    "check_realtime",
    "check_stall_timeout",
    "open_capture",
    "parse_source",
]

# OpenCV's FFmpeg backend gives up on a blocked read after 30 s (its default read timeout); the stall
# timeout must be shorter, or OpenCV ends the stream before the stall is noticed.
OPENCV_READ_TIMEOUT_S = 30.0
_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
KINDS = ("camera", "file", "url", "pipeline")

# what to check when a source does not open, by kind
OPEN_HINTS = {
    "camera": " (is it connected, and not in use by another program?)",
    "url": " (is the address right and the server reachable?)",
    "pipeline": " (run it with gst-launch-1.0 to see GStreamer's error)",
    "file": " (unsupported or corrupt file?)",
}


class SourceError(RuntimeError):
    """A source that cannot be opened or that stopped delivering frames."""


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
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS} (got {kind!r})")
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
            kind, text = "file", text[len("file://"):].strip()
            if not text:
                raise ValueError("no file name after file://")
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
    """The default opener: ``cv2.VideoCapture`` with the right backend for the source. A name
    OpenCV cannot be handed (not valid UTF-8: it crashes the process) raises
    :class:`~runtime.common.video.VideoDecodeError` first."""
    if isinstance(spec.target, str):
        check_openable_path(spec.target)
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


def check_stall_timeout(seconds: float | None, name: str = "stall timeout") -> None:
    """A stall timeout (None: none) must be > 0 and below OpenCV's own read timeout."""
    if seconds is not None and not 0 < seconds < OPENCV_READ_TIMEOUT_S:
        raise ValueError(f"{name} must be > 0 and below OpenCV's own read timeout "
                         f"({OPENCV_READ_TIMEOUT_S:.0f} s), got {seconds}")


def check_realtime(spec: SourceSpec, realtime: bool | None, name: str = "realtime=False") -> None:
    """Every frame (``realtime=False``) is for video files only: a live source is real time."""
    if realtime is False and spec.live:
        raise ValueError(f"{name} only applies to video files; {spec.describe()} is a live source")
