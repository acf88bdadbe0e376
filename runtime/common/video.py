"""Frame readers (OpenCV): video files and folders of numbered images, BGR uint8 out.

Two layouts hold a clip: a video file (mp4, avi, webm, mkv, ... anything ``cv2.VideoCapture`` opens
through FFmpeg) or a folder of numbered images (the SSv1/SSv2 jpg layout, ``00001.jpg ...``, sorted
naturally so ``2.jpg`` comes before ``10.jpg``). Every function takes either.

Decoding a subset of frames walks the stream once, front to back: ``grab()`` every frame up to the
last wanted one and ``retrieve()`` (the colour conversion) only the wanted ones. Seeking per frame
is slower and, with inter-frame codecs, not frame-exact.

A file that cannot be opened, or that decodes to no frame, raises :class:`VideoDecodeError` naming
the file (so does a name OpenCV cannot be handed, :func:`check_openable_path`, which every path
passes before it reaches OpenCV); a stream that ends before a wanted index raises its subclass
:class:`ShortVideoError`, which carries the number of frames that did decode.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger(__name__)

# the containers a clip may come in, for training, extraction and calibration alike
VIDEO_SUFFIXES = (".mp4", ".avi", ".webm", ".mkv", ".mov", ".m4v")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
# containers whose frame count in the header is exact (FFmpeg reads nb_frames); for others
# (webm, mkv) FFmpeg estimates it from duration x fps, so those are decoded to the end instead
TRUSTED_COUNT_SUFFIXES = (".mp4", ".m4v", ".mov", ".avi")


class VideoDecodeError(RuntimeError):
    """A video or frame folder that cannot be opened or decodes to no frame."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class ShortVideoError(VideoDecodeError):
    """The stream ended before a requested frame index; ``num_frames`` frames did decode."""

    def __init__(self, path: str | os.PathLike, num_frames: int, wanted: int):
        self.num_frames = num_frames
        super().__init__(path, f"decoded {num_frames} frames, frame index {wanted} was requested")


# control characters (a newline, a NUL) shown escaped, so a message naming a path stays one line
_CONTROL = {c: f"\\x{c:02x}" for c in (*range(32), 127)} | {ord("\n"): "\\n", ord("\t"): "\\t", 0: "\\0"}


def shown_path(path: str | os.PathLike) -> str:
    """``path`` as text that can be printed on one line: bytes that are not UTF-8 (kept by Python as
    surrogate escapes) shown as ``\\xe9``, control characters as ``\\n``, ``\\0``, ``\\x1b``."""
    text = os.fspath(path)
    try:
        raw = os.fsencode(text)
    except UnicodeEncodeError:  # a lone surrogate no file system byte stands for (e.g. \ud800)
        raw = text.encode("utf-8", "surrogatepass")
    return raw.decode("utf-8", "backslashreplace").translate(_CONTROL)


def check_openable_path(path: str | os.PathLike) -> str:
    """The text to hand OpenCV for ``path`` (``cv2.VideoCapture``, ``cv2.imread``,
    ``cv2.VideoWriter``), or :class:`VideoDecodeError` when OpenCV cannot be given it: a name whose
    bytes are not valid UTF-8 (``caf\\xe9.mp4`` from a Latin-1 system) makes OpenCV's Python binding
    crash the process, and a NUL byte would cut the name short."""
    text = os.fspath(path)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise VideoDecodeError(shown_path(text), "the file name is not valid UTF-8, which OpenCV "
                               "cannot open; rename it (e.g. convmv -f latin1 -t utf8)") from None
    if "\0" in text:
        raise VideoDecodeError(shown_path(text), "the file name holds a NUL byte")
    return text


def natural_key(name: str) -> list:
    """Sort key that orders embedded numbers by value: img_2.jpg < img_10.jpg."""
    return [int(tok) if tok.isdigit() else tok.lower() for tok in re.split(r"(\d+)", name)]


def list_frame_files(folder: str | os.PathLike) -> list[Path]:
    """The image files of a frame folder, in natural order; raises if there is none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise VideoDecodeError(folder, "frame folder does not exist")
    files = [p for p in folder.iterdir()
             if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()]
    if not files:
        raise VideoDecodeError(folder, f"frame folder holds no image ({', '.join(IMAGE_SUFFIXES)})")
    return sorted(files, key=lambda p: natural_key(p.name))


def _check_indices(indices: Sequence[int] | np.ndarray) -> np.ndarray:
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    if idx.size == 0:
        raise ValueError("no frame index requested")
    if idx.min() < 0:
        raise ValueError(f"negative frame index {int(idx.min())}")
    return idx


def _open(path: Path) -> cv2.VideoCapture:
    text = check_openable_path(path)
    if not path.is_file():
        raise VideoDecodeError(path, "file does not exist")
    cap = cv2.VideoCapture(text)
    if not cap.isOpened():
        cap.release()
        raise VideoDecodeError(path, "OpenCV cannot open the video (unknown format or corrupt file)")
    return cap


def read_video(path: str | os.PathLike, indices: Sequence[int] | np.ndarray | None = None) -> list[np.ndarray]:
    """Decode a video file to BGR uint8 frames (H, W, 3).

    Without ``indices`` every frame is returned. With ``indices`` (any order, repeats allowed) the
    frames at those positions are returned in that order, decoding once up to the largest index.
    """
    path = Path(path)
    idx = None if indices is None else _check_indices(indices)
    cap = _open(path)
    try:
        if idx is None:
            frames = []
            while True:
                ok, frame = cap.read()
                if not ok:
                    break
                frames.append(frame)
            if not frames:
                raise VideoDecodeError(path, "decodes to zero frames")
            return frames
        wanted = set(idx.tolist())
        last = int(idx.max())
        got: dict[int, np.ndarray] = {}
        for i in range(last + 1):
            if not cap.grab():
                if i == 0:
                    raise VideoDecodeError(path, "decodes to zero frames")
                raise ShortVideoError(path, num_frames=i, wanted=last)
            if i in wanted:
                ok, frame = cap.retrieve()
                if not ok or frame is None:
                    raise VideoDecodeError(path, f"frame {i} was grabbed but cannot be retrieved")
                got[i] = frame
        return [got[i] for i in idx.tolist()]
    finally:
        cap.release()


def iter_video(path: str | os.PathLike) -> Iterator[np.ndarray]:
    """Decode a video file frame by frame (BGR uint8), without holding the whole video; raises
    :class:`VideoDecodeError` if it opens to no frame."""
    path = Path(path)
    cap = _open(path)
    try:
        n = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            n += 1
            yield frame
        if n == 0:
            raise VideoDecodeError(path, "decodes to zero frames")
    finally:
        cap.release()


def read_frame_folder(folder: str | os.PathLike, indices: Sequence[int] | np.ndarray | None = None) -> list[np.ndarray]:
    """Read a folder of numbered images (natural order); with ``indices``, only those images."""
    files = list_frame_files(folder)
    if indices is None:
        chosen = files
    else:
        idx = _check_indices(indices)
        if idx.max() >= len(files):
            raise ShortVideoError(folder, num_frames=len(files), wanted=int(idx.max()))
        chosen = [files[i] for i in idx.tolist()]
    frames, cache = [], {}
    for f in chosen:
        if f not in cache:  # repeated indices (short clips) read the image once
            img = cv2.imread(check_openable_path(f), cv2.IMREAD_COLOR)
            if img is None:
                raise VideoDecodeError(f, "OpenCV cannot read the image")
            cache[f] = img
        frames.append(cache[f])
    return frames


def read_frames(path: str | os.PathLike, indices: Sequence[int] | np.ndarray | None = None) -> list[np.ndarray]:
    """A video file or a frame folder, whichever ``path`` is."""
    return read_frame_folder(path, indices) if Path(path).is_dir() else read_video(path, indices)


def count_frames(path: str | os.PathLike, *, exact: bool = False) -> int:
    """Number of frames of a video file or frame folder.

    For video files the container header is used when it is trustworthy (mp4, avi, mov) and
    ``exact`` is False; otherwise the stream is walked with ``grab()`` (decodes, no colour
    conversion). Raises :class:`VideoDecodeError` for a file that opens to no frame.
    """
    path = Path(path)
    if path.is_dir():
        return len(list_frame_files(path))
    cap = _open(path)
    try:
        if not exact and path.suffix.lower() in TRUSTED_COUNT_SUFFIXES:
            n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
            if n > 0:
                return n
        n = 0
        while cap.grab():
            n += 1
    finally:
        cap.release()
    if n == 0:
        raise VideoDecodeError(path, "decodes to zero frames")
    return n


def read_sampled(path: str | os.PathLike, pick: Callable[[int], np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
    """Frames chosen by ``pick(num_frames) -> indices``, opening the video as few times as possible.

    Returns ``(frames, indices)``. Frame folders and videos with a trustworthy header count are
    decoded only up to the last picked frame; when the header overstates the count (the stream ends
    early) the indices are picked again from the true count. Other containers are decoded to the
    end once, then picked from.
    """
    path = Path(path)
    if path.is_dir():
        n = count_frames(path)
        idx = np.asarray(pick(n))
        return read_frame_folder(path, idx), idx
    if path.suffix.lower() in TRUSTED_COUNT_SUFFIXES:
        n = count_frames(path)
        idx = np.asarray(pick(n))
        try:
            return read_video(path, idx), idx
        except ShortVideoError as e:
            log.debug("%s: header says %d frames, %d decode; re-picking", path, n, e.num_frames)
            idx = np.asarray(pick(e.num_frames))
            return read_video(path, idx), idx
    frames = read_video(path)
    idx = np.asarray(pick(len(frames)))
    return [frames[i] for i in idx.tolist()], idx


def write_video(path: str | os.PathLike, frames: Iterable[np.ndarray], *, fps: float,
                size: tuple[int, int] | None = None, fourcc: str = "mp4v") -> int:
    """Encode BGR frames of ``size`` = (width, height) (default: the first frame's) to ``path``
    atomically: a temporary file in the same folder, decoded back to check its frame count, then
    renamed. Returns the frame count; raises :class:`VideoDecodeError` when OpenCV cannot write or
    read back the video."""
    from runtime.common.files import atomic_path

    path = Path(path)
    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        raise ValueError(f"{path}: no frame to write")
    if size is None:
        size = (first.shape[1], first.shape[0])
    with atomic_path(path, suffix=f".tmp{path.suffix}") as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*fourcc), float(fps), tuple(size))
        if not writer.isOpened():
            raise VideoDecodeError(path, f"OpenCV cannot write {fourcc} video (FFmpeg backend missing?)")
        n = 0
        try:
            for frame in itertools.chain([first], frames):
                if frame.shape != (size[1], size[0], 3):
                    raise ValueError(f"{path}: frame {n} has shape {frame.shape}, expected {(size[1], size[0], 3)}")
                writer.write(frame)
                n += 1
        finally:
            writer.release()
        got = count_frames(tmp, exact=True)
        if got != n:
            raise VideoDecodeError(path, f"wrote {n} frames but {got} read back")
    return n
