"""Synthetic Something-Something stand-in: real mp4 files, folder per class, deterministic by seed.

    python -m tsi.data.synthetic --out data/synth --train 100 --val 20 --seed 0

writes ``OUT/train/<class>/<class>_0000.mp4 ...``, ``OUT/val/<class>/...`` (``--train``/``--val``
videos *per class*), ``OUT/labels.txt`` (one class per line, the sorted :data:`CLASSES`, i.e. the
label order of the folder format) and ``OUT/synthetic.json`` (the parameters; it marks the folder as
a synthetic output that a later run may overwrite). The classes need the order of frames (see
:mod:`tsi.data.synthetic_scene`). Video k of class c in split s is drawn from
``np.random.default_rng([seed, s, c, k])``: the same seed gives the same frames, and a larger
``--train`` keeps the first videos unchanged.

``--setting hard`` writes the harder variant of the same classes (small object among moving
distractors, camera pan and zoom, each video with its own size among
:data:`~tsi.data.synthetic_scene.HARD_SIZES`, frame rate among ``HARD_FPS`` -- a clip lasts the
same ~1.07 s, so it has 16 to 64 frames -- and codec among ``HARD_CODECS``: mp4v .mp4, MJPG and
XVID .avi, VP8 .webm); ``--frames``, ``--size`` and ``--fps`` then do not apply.

:func:`write_sequence_video` writes one continuous video of consecutive actions (same background,
continuing camera path) with the ground-truth segments, for testing a live runtime.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from runtime.common.files import atomic_write_text
from runtime.common.progress import progress_bar
from runtime.common.video import write_video
from tsi.cli import UsageError, cli_main, parser, positive_float, positive_int
from tsi.data.formats import complete_generated, generator_marker
from tsi.data.synthetic_scene import (CLASSES, REVERSED_PAIRS, camera_path, contrast_against, frame_effects, make_sprite,
                                      new_scene, render_clip, render_clip_hard, render_frame, sample_hard_format,
                                      sample_track)

__all__ = ["CLASSES", "REVERSED_PAIRS", "render_clip", "sample_track", "write_video",
           "write_sequence_video", "generate", "main"]

log = logging.getLogger(__name__)

MARKER = "synthetic.json"
MARKER_FORMAT = "tsi-synthetic"
SPLITS = ("train", "val")
SEQUENCE_STREAM = 7  # rng stream id of sequence videos, apart from the split ids 0 and 1
SETTINGS = ("easy", "hard")


def write_sequence_video(path: str | os.PathLike, labels: Sequence[str | None], seed: int, *,
                         frames_per_segment: int | Sequence[int] = 32, size: tuple[int, int] = (160, 128),
                         fps: float = 30.0) -> list[dict[str, Any]]:
    """One video of consecutive actions ``labels`` over one background and a continuing camera path.

    Each segment shows a new object doing its action; a ``None`` label is an idle stretch (the scene
    and the camera go on, no object). ``frames_per_segment`` is one length for every segment or one
    per label. Returns the ground truth, one dict per action (idle stretches are the gaps):
    ``{"label", "start_frame", "end_frame"}`` with ``end_frame`` exclusive.
    """
    if not labels:
        raise ValueError("write_sequence_video needs at least one label")
    lengths = ([int(frames_per_segment)] * len(labels) if np.isscalar(frames_per_segment)
               else [int(n) for n in frames_per_segment])
    if len(lengths) != len(labels):
        raise ValueError(f"frames_per_segment has {len(lengths)} lengths for {len(labels)} labels")
    if min(lengths) < 2:
        raise ValueError(f"frames_per_segment must be >= 2 (got {min(lengths)})")
    rng = np.random.default_rng([int(seed), SEQUENCE_STREAM])
    starts = np.concatenate([[0], np.cumsum(lengths)]).astype(int)
    total = int(starts[-1])
    background = new_scene(rng, size)
    cam = camera_path(rng, total)
    seeds, gains = frame_effects(rng, total)
    segments, objects = [], []
    for i, (label, n) in enumerate(zip(labels, lengths)):
        sprite, mask = make_sprite(rng)
        sprite = contrast_against(sprite, background)
        track = sample_track(CLASSES[0] if label is None else label, rng, n, size)
        if label is None:
            track["alpha"] = np.zeros(n)  # idle: nobody in the scene
        else:
            segments.append({"label": label, "start_frame": int(starts[i]), "end_frame": int(starts[i + 1])})
        objects.append((sprite, mask, track))

    def frames() -> Iterable[np.ndarray]:
        for k in range(total):
            i = int(np.searchsorted(starts, k, side="right")) - 1
            sprite, mask, track = objects[i]
            j = k - starts[i]
            yield render_frame(background, cam[k], sprite, mask, {n: v[j] for n, v in track.items()},
                               seeds[k], gains[k], size)

    write_video(path, frames(), fps=fps, size=size)
    return segments


def _check_out(out: Path, force: bool) -> bool:
    """May we write into ``out``? Returns whether it holds a previous synthetic output."""
    if not out.exists() or not any(out.iterdir()):
        return False
    if generator_marker(out, MARKER, MARKER_FORMAT) is not None:
        return True
    if not force:
        raise FileExistsError(f"{out} is not empty and holds no {MARKER} of a previous synthetic "
                              "output; choose an empty folder or pass --force")
    log.warning("--force: writing into non-empty %s", out)
    return False


def generate(out: str | os.PathLike, *, train: int = 100, val: int = 20, seed: int = 0, frames: int = 32,
             size: tuple[int, int] = (160, 128), fps: float = 30.0, force: bool = False,
             progress: bool = True, setting: str = "easy") -> dict[str, Any]:
    """Write the synthetic dataset (``train``/``val`` videos per class); returns the marker dict.
    ``setting="hard"`` draws size, frame rate, frame count and codec per video (the arguments
    ``frames``, ``size`` and ``fps`` are then unused)."""
    out = Path(out)
    if setting not in SETTINGS:
        raise ValueError(f"setting must be one of {SETTINGS} (got {setting!r})")
    w, h = size
    if w < 32 or h < 32 or w % 2 or h % 2:
        raise ValueError(f"size must be even and at least 32x32 (got {w}x{h})")
    if frames < 2 or train < 0 or val < 0 or train + val == 0:
        raise ValueError(f"need frames >= 2 and some videos (frames={frames}, train={train}, val={val})")
    previous = _check_out(out, force)
    params = {"format": MARKER_FORMAT, "version": 1, "seed": seed, "train": train, "val": val,
              "frames": frames, "size": [w, h], "fps": fps, "fourcc": "mp4v", "classes": list(CLASSES),
              "setting": setting, "complete": False}
    if setting == "hard":
        from tsi.data import synthetic_scene as sc
        params.update(frames=None, size=None, fps=None, fourcc=None,
                      sizes=[list(s) for s in sc.HARD_SIZES], fps_choices=list(sc.HARD_FPS),
                      codecs=[list(c) for c in sc.HARD_CODECS], duration_s=sc.HARD_DURATION_S)
    atomic_write_text(out / MARKER, json.dumps(params, indent=2) + "\n")
    jobs = [(s, si, c, ci, k) for si, (s, n) in enumerate(zip(SPLITS, (train, val)))
            for ci, c in enumerate(CLASSES) for k in range(n)]
    written = set()
    for split, si, label, ci, k in progress_bar(jobs, desc="synthetic videos", enabled=progress, unit="video"):
        rng = np.random.default_rng([int(seed), si, ci, k])
        if setting == "hard":
            fmt = sample_hard_format(rng)
            path = out / split / label / f"{label}_{k:04d}{fmt['suffix']}"
            write_video(path, render_clip_hard(label, rng, fmt["frames"], fmt["size"]), fps=fmt["fps"],
                        size=fmt["size"], fourcc=fmt["fourcc"])
        else:
            path = out / split / label / f"{label}_{k:04d}.mp4"
            write_video(path, render_clip(label, rng, frames, size), fps=fps, size=size)
        written.add(path)
    # a regenerated output must not keep videos of a larger earlier run (or setting)
    complete_generated(out, SPLITS, CLASSES, written, params, MARKER, previous=previous)
    log.info("wrote %d %s videos (%d classes, %d train + %d val each) to %s",
             len(jobs), setting, len(CLASSES), train, val, out)
    return params


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be WIDTHxHEIGHT, e.g. 160x128 (got {text!r})") from None
    return w, h


def write_sequence_file(path: Path, labels: Sequence[str], *, seed: int, frames: int,
                        size: tuple[int, int], fps: float, force: bool) -> dict[str, Any]:
    """``--sequence``: one video of consecutive actions plus ``<video>.json`` with its segments."""
    truth = path.with_suffix(".json")
    for p in (path, truth):
        if p.exists() and not force:
            raise FileExistsError(f"{p} exists (pass --force to replace it)")
    segments = write_sequence_video(path, labels, seed, frames_per_segment=frames, size=size, fps=fps)
    info = {"video": str(path), "fps": fps, "frames_per_segment": frames, "seed": seed,
            "segments": segments}
    atomic_write_text(truth, json.dumps(info, indent=2) + "\n")
    log.info("wrote %s: %s", path, ", ".join(s["label"] for s in segments))
    return info


def build_parser() -> argparse.ArgumentParser:
    p = parser("tsi-synthetic", __doc__)
    p.add_argument("--out", required=True,
                   help="output folder (train/, val/, labels.txt, synthetic.json); with --sequence, "
                        "the video file to write (its ground truth goes to <out>.json)")
    p.add_argument("--sequence", nargs="+", metavar="LABEL",
                   help="write ONE continuous video of these actions in order (a live-runtime sample)")
    p.add_argument("--train", type=positive_int, default=100, help="training videos per class")
    p.add_argument("--val", type=positive_int, default=20, help="validation videos per class")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--frames", type=positive_int, default=32, help="frames per video")
    p.add_argument("--size", type=_size, default=(160, 128), help="WIDTHxHEIGHT")
    p.add_argument("--fps", type=positive_float, default=30.0)
    p.add_argument("--force", action="store_true", help="write into a non-empty folder without a marker")
    p.add_argument("--setting", default="easy", choices=SETTINGS,
                   help="hard: small object among moving distractors, camera pan and zoom, sizes, "
                        "frame rates and codecs varied per video (--frames/--size/--fps unused)")
    return p


def run(argv: list[str] | None = None) -> dict[str, Any]:
    """The CLI's work, returning its result (``main`` is the console script: exit code 0)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.sequence:
            return write_sequence_file(Path(args.out), args.sequence, seed=args.seed,
                                       frames=args.frames, size=args.size, fps=args.fps,
                                       force=args.force)
        return generate(args.out, train=args.train, val=args.val, seed=args.seed, frames=args.frames,
                        size=args.size, fps=args.fps, force=args.force, setting=args.setting)
    except ValueError as e:  # the generator's own checks of its options
        raise UsageError(str(e)) from None


def main(argv: list[str] | None = None) -> int:
    return cli_main(run, argv, "tsi-synthetic")


if __name__ == "__main__":
    sys.exit(main())
