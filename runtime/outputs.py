"""Where the live runtime's results go: a JSONL of events, an annotated video, a window.

Files are written under a temporary name in the destination folder and renamed on close, so a
consumer never sees a half-written file under the final name.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np

log = logging.getLogger(__name__)

__all__ = ["AtomicVideoWriter", "DisplayUnavailableError", "JsonlWriter", "WindowDisplay"]

_FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}


class DisplayUnavailableError(RuntimeError):
    """This OpenCV cannot open a window."""


def _temp_path(path: Path) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".partial{path.suffix}",
                               dir=path.parent)
    os.close(fd)
    return Path(tmp)


class JsonlWriter:
    """One JSON object per line, flushed per line, renamed into place by :meth:`close`."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = _temp_path(self.path)
        self._f = open(self._tmp, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self.lines = 0

    def write(self, obj: dict[str, Any]) -> None:
        self._f.write(json.dumps(obj, sort_keys=False) + "\n")
        self._f.flush()
        self.lines += 1

    def close(self) -> Path | None:
        if self._f is None:
            return None
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()
        self._f = None
        os.replace(self._tmp, self.path)
        log.info("wrote %s (%d lines)", self.path, self.lines)
        return self.path


class AtomicVideoWriter:
    """``cv2.VideoWriter`` opened on the first frame (its size), renamed into place on close."""

    def __init__(self, path: str | os.PathLike, fps: float, fourcc: str | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fps = float(fps)
        self.fourcc = fourcc or _FOURCC.get(self.path.suffix.lower(), "mp4v")
        self._tmp: Path | None = None
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None
        self.frames = 0

    def write(self, frame: np.ndarray) -> None:
        h, w = frame.shape[:2]
        if self._writer is None:
            self._tmp = _temp_path(self.path)
            self._writer = cv2.VideoWriter(str(self._tmp), cv2.VideoWriter_fourcc(*self.fourcc),
                                           self.fps, (w, h))
            if not self._writer.isOpened():
                self._tmp.unlink(missing_ok=True)
                self._writer = None
                raise RuntimeError(f"cannot write video {self.path} with codec {self.fourcc!r} "
                                   "(try an .avi or .mp4 name)")
            self._size = (w, h)
        elif (w, h) != self._size:
            frame = cv2.resize(frame, self._size)
        self._writer.write(frame)
        self.frames += 1

    def close(self) -> Path | None:
        if self._writer is None:
            return None
        self._writer.release()
        self._writer = None
        os.replace(self._tmp, self.path)
        log.info("wrote %s (%d frames at %.2f fps)", self.path, self.frames, self.fps)
        return self.path


class WindowDisplay:
    """A ``cv2.imshow`` window; :meth:`show` returns False once 'q' or Esc was pressed."""

    def __init__(self, title: str = "TSI live") -> None:
        self.title = title
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL)
        except cv2.error as e:
            raise DisplayUnavailableError(
                "this OpenCV has no GUI support (opencv-python-headless, or built without GTK/Qt), "
                "so it cannot open a window: run with --headless --out-video out.mp4 --out-jsonl "
                "events.jsonl, or pip install opencv-python (on a Jetson use JetPack's OpenCV, "
                f"which has GTK) [{str(e).strip().splitlines()[0][:120]}]"
            ) from None
        self._open = True

    def show(self, frame: np.ndarray) -> bool:
        cv2.imshow(self.title, frame)
        key = cv2.waitKey(1) & 0xFF
        if key in (ord("q"), 27):
            return False
        try:  # the user closed the window
            return cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) >= 1
        except cv2.error:
            return False

    def close(self) -> None:
        if self._open:
            self._open = False
            try:
                cv2.destroyWindow(self.title)
                cv2.waitKey(1)
            except cv2.error:
                pass  # window already gone
