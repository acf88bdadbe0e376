"""Calibration clips from a folder of videos, prepared exactly as the runtime prepares them.

Each clip is ``card.frames`` frames by TSN centre sampling (one frame from the centre of each of T
equal segments) over the whole video, or over the centred window of ``card.span_frames`` frames when
the card sets one (the runtime's sliding window); every frame goes through
``runtime.preprocess.FramePreprocessor(card)``, the runtime's own per-frame preprocessing.
Torch-free (OpenCV + NumPy), so it also runs on the Jetson.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from runtime.common.errors import CalibrationError
from runtime.card import ModelCard
from runtime.preprocess import FramePreprocessor
from runtime.common.video import VIDEO_SUFFIXES, VideoDecodeError, read_sampled
from runtime.sampling import span_test_indices

log = logging.getLogger(__name__)

MIN_CLIPS = 8  # below this the ranges are noise: refuse
DEFAULT_MAX_CLIPS = 256  # clips a calibration uses at most (classes interleaved)
RECOMMENDED_CLIPS = 100  # TensorRT's guidance is ~500 images for ImageNet CNNs; warn below 100 clips


@dataclass
class ClipSet:
    clips: np.ndarray  # (N, T, 3, S, S) float32
    sources: list[Path]
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    folder: Path | None = None

    def __len__(self) -> int:
        return len(self.clips)


def find_videos(folder: str | os.PathLike) -> list[Path]:
    """Video files under ``folder`` (recursive), sorted; a missing or empty folder is an error."""
    folder = Path(folder)
    if not folder.exists():
        raise CalibrationError(f"calibration folder not found: {folder}")
    if not folder.is_dir():
        raise CalibrationError(f"calibration path is not a folder: {folder}")
    videos = sorted(p for p in folder.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
    if not videos:
        raise CalibrationError(f"calibration folder {folder} holds no video ({', '.join(VIDEO_SUFFIXES)}, "
                               "searched recursively)")
    return videos


def interleave_by_folder(videos: list[Path]) -> list[Path]:
    """Round-robin over parent folders (classes), so the first N clips cover every class."""
    groups: dict[Path, list[Path]] = defaultdict(list)
    for v in videos:
        groups[v.parent].append(v)
    lists = [groups[k] for k in sorted(groups)]
    out = []
    for i in range(max(len(g) for g in lists)):
        out += [g[i] for g in lists if i < len(g)]
    return out


def clip_indices(num_frames: int, card: ModelCard) -> np.ndarray:
    """T centre-sampled indices over the video, or over its centred ``span_frames`` window
    (:func:`runtime.sampling.span_test_indices`, as evaluation samples)."""
    return span_test_indices(num_frames, card.frames, card.span_frames)[0]


class ShortClipError(ValueError):
    """A video with fewer frames than the model's T: its clip would repeat frames (no motion the
    runtime's window ever shows), so calibration refuses it."""

    def __init__(self, num_frames: int, frames: int):
        super().__init__(f"{num_frames} frame(s), fewer than the model's {frames}")
        self.num_frames = num_frames


def _indices_of_whole_clip(num_frames: int, card: ModelCard) -> np.ndarray:
    if num_frames < card.frames:
        raise ShortClipError(num_frames, card.frames)
    return clip_indices(num_frames, card)


def load_clip(path: str | os.PathLike, card: ModelCard, pre: FramePreprocessor | None = None) -> np.ndarray:
    """One (T, 3, S, S) float32 clip of a video file (raises VideoDecodeError if unreadable,
    :class:`ShortClipError` if it has fewer than T frames)."""
    pre = pre or FramePreprocessor(card)
    frames, _ = read_sampled(path, lambda n: _indices_of_whole_clip(n, card))
    out = np.empty(card.input_shape, dtype=np.float32)
    for t, frame in enumerate(frames):
        pre(frame, out=out[t])
    return out


def load_calibration_clips(folder: str | os.PathLike, card: ModelCard, *, max_clips: int | None = None,
                           min_clips: int = MIN_CLIPS, recommended: int = RECOMMENDED_CLIPS,
                           progress: bool = True) -> ClipSet:
    """Up to ``max_clips`` clips (all videos when None), classes interleaved. Unreadable videos are
    skipped with a warning and counted, and so are videos shorter than T frames (one warning for
    all); fewer than ``min_clips`` usable clips is an error, fewer than ``recommended`` a warning."""
    from runtime.common.progress import progress_bar

    folder = Path(folder)
    videos = interleave_by_folder(find_videos(folder))
    want = len(videos) if max_clips is None else min(max_clips, len(videos))
    if max_clips is not None and max_clips < 1:
        raise CalibrationError(f"--calib-clips must be >= 1 (got {max_clips})")
    pre = FramePreprocessor(card)
    clips, sources, skipped, short = [], [], [], []
    bar = progress_bar(total=want, desc="calibration clips", unit="clip", enabled=progress, leave=False)
    for path in videos:
        if len(clips) >= want:
            break
        try:
            clips.append(load_clip(path, card, pre))
            sources.append(path)
            bar.update(1)
        except ShortClipError as e:
            log.debug("skipping short calibration video %s: %s", path, e)
            short.append((path, str(e)))
        except (VideoDecodeError, ValueError) as e:
            log.warning("skipping unreadable calibration video %s: %s", path, e)
            skipped.append((path, str(e)))
    bar.close()
    if skipped:
        log.warning("%d of %d calibration videos in %s were unreadable and skipped",
                    len(skipped), len(sources) + len(skipped), folder)
    too_short = f", {len(short)} shorter than the model's {card.frames} frames" if short else ""
    if short:
        log.warning("%d calibration video(s) in %s have fewer than the model's %d frames and were skipped "
                    "(e.g. %s)", len(short), folder, card.frames, short[0][0].name)
    if len(clips) < min_clips:
        raise CalibrationError(
            f"calibration folder {folder}: {len(clips)} usable clip(s) ({len(videos)} video(s), "
            f"{len(skipped)} unreadable{too_short}); at least {min_clips} are needed")
    if len(clips) < recommended:
        log.warning("calibrating on %d clips from %s; %d or more (covering every class) give stabler "
                    "INT8 ranges", len(clips), folder, recommended)
    log.info("calibration: %d clips of %s from %s", len(clips), card.input_shape, folder)
    return ClipSet(np.stack(clips), sources, skipped + short, folder)


HOLD_OUT = 3  # every 3rd calibration clip is held out to measure an INT8 model (export.int8_choice)


def split_clips(clips: np.ndarray, hold_out: int = HOLD_OUT) -> tuple[np.ndarray, np.ndarray]:
    """(calibration clips, held-out clips): every ``hold_out``-th clip is held out."""
    held = np.arange(len(clips)) % hold_out == hold_out - 1
    return clips[~held], clips[held]
