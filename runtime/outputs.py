"""Where the live runtime's results go: a JSONL of events, an annotated video (the window:
:mod:`runtime.display`).

* The JSONL is written under its final name from the start, one line at a time, each line flushed
  (``tail -f`` works during a run, and every line written survives a kill).
* The annotated video is written under a hidden temporary name in its own folder and renamed into
  place on close (a half-written MP4 cannot be decoded, so it never appears under the final name).
  For a live source its frame rate is *measured* from the frames' capture times before the writer
  opens (a stream's claimed fps is often wrong, and real time drops frames).
* Output files get the usual permissions (umask), and replacing an existing file is logged.

:func:`check_output_path` does every check on an output name that can be done before a run starts.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from runtime.common.files import atomic_path
from runtime.common.video import VideoDecodeError, check_openable_path, shown_path

log = logging.getLogger(__name__)

__all__ = ["AtomicVideoWriter", "JSONL_SUFFIXES", "JsonlWriter", "OutputPathError", "OutputWriteError",
           "WRITABLE_VIDEO_SUFFIXES", "check_output_path"]

_FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}
WRITABLE_VIDEO_SUFFIXES = tuple(_FOURCC)  # what the annotated video may be written as
JSONL_SUFFIXES = (".jsonl", ".ndjson")


class OutputPathError(ValueError):
    """An output file name that cannot be written (wrong extension, a folder, under a file...)."""


class OutputWriteError(RuntimeError):
    """An output that could not be written during a run (the disk is full, an I/O error)."""


def _write_error(path: Path, e: OSError | None) -> OutputWriteError:
    """The one line for a failed write to ``path`` (``e`` None: its disk was found full)."""
    full = e is None or e.errno in (errno.ENOSPC, errno.EDQUOT)
    return OutputWriteError(f"{'no space left on device' if full else e.strerror or e} writing {shown_path(path)}")


def _disk_full(folder: Path) -> bool:
    """No block left that this process may write (root may use the reserved ones)."""
    try:
        st = os.statvfs(folder)
    except (AttributeError, OSError):  # no statvfs (Windows), or the folder is gone
        return False
    return (st.f_bfree if os.geteuid() == 0 else st.f_bavail) == 0


def check_output_path(path: str | os.PathLike, suffixes: tuple[str, ...], what: str) -> Path:
    """Every check on an output file that can be made before a run: a name OpenCV can be handed
    (valid UTF-8, no NUL), its extension, that it is not a folder, that no part of its folder is a file, and that its folder (or the nearest existing
    parent) is writable. Raises :class:`OutputPathError` naming the problem."""
    try:
        check_openable_path(path)
    except VideoDecodeError as e:
        raise OutputPathError(f"{what} {e}") from None
    path = Path(path)
    if path.suffix.lower() not in suffixes:
        raise OutputPathError(f"{what} {path}: the name must end in {' or '.join(suffixes)} "
                              f"(got {path.suffix or 'no extension'!r})")
    if path.is_dir():
        raise OutputPathError(f"{what} {path} is a folder: give a file name inside it")
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise OutputPathError(f"{what} {path}: {parent} is a file, not a folder")
    for part in reversed(path.parents):
        if part.exists() and not part.is_dir():
            raise OutputPathError(f"{what} {path}: {part} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputPathError(f"{what} {path}: no permission to write in {parent}")
    if path.exists() and not os.access(path, os.W_OK):
        raise OutputPathError(f"{what} {path} exists and is read-only: no permission to replace it")
    return path


def _note_replacing(path: Path) -> None:
    if path.exists():
        log.warning("replacing the existing %s", path)


class JsonlWriter:
    """One JSON object per line, under the final name from the start, one write per line (no
    buffer). A failed write (a full disk) raises :class:`OutputWriteError` once, cuts the file
    back to its last whole line and drops what follows: every line written before is kept."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _note_replacing(self.path)
        try:
            self._f = open(self.path, "wb", buffering=0)  # noqa: SIM115 - closed in close()
        except OSError as e:
            raise _write_error(self.path, e) from None
        self.lines = 0
        self._size = 0
        self.failed: OutputWriteError | None = None

    def write(self, obj: dict[str, Any]) -> None:
        if self._f is None:
            raise ValueError(f"{self.path} is closed")
        if self.failed is not None:
            return  # already reported
        line = (json.dumps(obj, sort_keys=False) + "\n").encode("utf-8")
        try:
            done = 0
            while done < len(line):  # a raw write may take part of it
                done += self._f.write(line[done:])
        except OSError as e:
            self.failed = _write_error(self.path, e)
            with contextlib.suppress(OSError):
                os.ftruncate(self._f.fileno(), self._size)  # no half line at the end
            raise self.failed from None
        self._size += len(line)
        self.lines += 1

    def close(self) -> Path | None:
        if self._f is None:
            return None
        f, self._f = self._f, None
        try:
            if self.failed is None:
                os.fsync(f.fileno())
        except OSError as e:
            if e.errno != errno.EINVAL:  # EINVAL: a file that cannot be synced (a pipe, a device)
                self.failed = _write_error(self.path, e)
                raise self.failed from None
        finally:
            f.close()
        log.info("wrote %s (%d lines)", self.path, self.lines)
        return self.path


class AtomicVideoWriter:
    """``cv2.VideoWriter`` opened on the first frame (its size), renamed into place on close.

    ``fps=None``: the frame rate is measured from the capture times passed to :meth:`write` over
    the first ``measure_s`` seconds / ``measure_frames`` frames (bounded to ``measure_bytes`` of
    frames held), then the writer opens and those frames are written."""

    def __init__(self, path: str | os.PathLike, fps: float | None, fourcc: str | None = None, *,
                 measure_frames: int = 30, measure_s: float = 2.0,
                 measure_bytes: int = 64 << 20) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if fps is not None and not fps > 0:
            raise ValueError(f"video fps must be > 0 (got {fps})")
        self.fps = float(fps) if fps is not None else None
        self.measured = fps is None
        self.fourcc = fourcc or _FOURCC.get(self.path.suffix.lower(), "mp4v")
        self._measure = (max(2, measure_frames), measure_s, measure_bytes)
        self._held: list[tuple[np.ndarray, float]] = []
        self._tmp_ctx: contextlib.AbstractContextManager | None = None
        self._tmp: Path | None = None
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None
        self.frames = 0
        self.failed: OutputWriteError | None = None

    def write(self, frame: np.ndarray, t: float | None = None) -> None:
        """Add a frame; ``t``: its capture time (``time.monotonic()``), used to measure the rate."""
        if self.failed is not None:
            return  # already reported
        if self._writer is None and self.fps is None:
            self._held.append((frame.copy(), time.monotonic() if t is None else t))
            n_max, span_s, max_bytes = self._measure
            n, span = len(self._held), self._held[-1][1] - self._held[0][1]
            if n >= n_max or span >= span_s or n * frame.nbytes >= max_bytes:
                self._open_measured()
            return
        self._write(frame)

    def _open_measured(self) -> None:
        held, self._held = self._held, []
        n, span = len(held), (held[-1][1] - held[0][1]) if held else 0.0
        fps = (n - 1) / span if n >= 2 and span > 0 else 30.0
        self.fps = float(min(240.0, max(1.0, fps)))
        log.info("%s: measured %.2f fps over %d frames", self.path.name, self.fps, n)
        for image, _ in held:
            self._write(image)

    def _write(self, frame: np.ndarray) -> None:
        h, w = frame.shape[:2]
        if self._writer is None:
            _note_replacing(self.path)
            self._tmp_ctx = atomic_path(self.path, suffix=f".partial{self.path.suffix}")
            try:
                self._tmp = self._tmp_ctx.__enter__()
            except OSError as e:
                self._tmp_ctx = None
                raise _write_error(self.path, e) from None
            self._writer = cv2.VideoWriter(check_openable_path(self._tmp), cv2.VideoWriter_fourcc(*self.fourcc),
                                           self.fps, (w, h))
            if not self._writer.isOpened():
                self._writer = None
                if _disk_full(self.path.parent):  # not the codec's fault
                    self._fail()
                self._discard()
                raise OutputPathError(f"cannot write video {self.path} with codec {self.fourcc!r} "
                                      "(try an .avi or .mp4 name)")
            self._size = (w, h)
        elif (w, h) != self._size:
            frame = cv2.resize(frame, self._size)
        if _disk_full(self.path.parent):  # OpenCV's writer drops what it cannot write, unsaid
            self._fail()
        self._writer.write(frame)
        self.frames += 1

    def _fail(self) -> None:
        """The disk is full: the partial video is removed (it cannot be decoded), later frames
        dropped, and :class:`OutputWriteError` raised once."""
        self.failed = _write_error(self.path, None)
        writer, self._writer, self._held = self._writer, None, []
        if writer is not None:
            writer.release()
        self._discard()
        raise self.failed

    def _discard(self) -> None:
        ctx, self._tmp_ctx = self._tmp_ctx, None
        if ctx is not None:
            with contextlib.suppress(RuntimeError):
                ctx.__exit__(OutputPathError, OutputPathError("discarded"), None)

    def close(self) -> Path | None:
        if self._held:
            self._open_measured()
        if self._writer is None:
            return None
        self._writer.release()
        if _disk_full(self.path.parent):  # the last frames or the index may be missing
            self._fail()
        self._writer = None
        ctx, self._tmp_ctx = self._tmp_ctx, None
        ctx.__exit__(None, None, None)  # rename into place
        log.info("wrote %s (%d frames at %.2f fps%s)", self.path, self.frames, self.fps,
                 ", measured" if self.measured else "")
        return self.path
