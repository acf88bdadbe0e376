"""A synthetic video set the project's recipes were never tuned on, used ONLY TO REPORT: it judges
training recipes and INT8 calibration on data they did not see while being tuned. Its scene model is
its own, in :mod:`benchmarks.common.unseen_scene` (nothing of ``tsi.data.synthetic`` or
``tsi.data.synthetic_scene``).

    python -m benchmarks.unseen_motion --out DIR --train 40 --val 12 --seed 0 [--force]

What it draws: ONE actor -- a textured stick figure whose limbs swing, a textured star with a marked
tip, or a textured ring with a gap -- among static textured clutter on a textured background, seen by
a camera that pans smoothly (random direction, constant or eased speed), jitters a few pixels per
frame and flickers mildly in brightness. The actor moves in world coordinates, so its image motion is
its own plus the camera's. Its 12 classes (:data:`CLASSES`): slide_left / slide_right (>= 35% of the
frame width), rise / sink (>= 30% of the height), grow / shrink (between ~15% and ~35% of the height,
the two overlapping in sizes), spin_cw / spin_ccw (200-400 degrees, <= ~18 a frame), fade_in / fade_out (opacity
between ~0 and 1), still, and out_and_back (away >= 30% of the height in a random direction and back).
Every motion lasts the whole clip; start position, size, angle and opacity are random, so one frame
does not tell the class.

Layout (the folder format ``tsi.data.formats`` reads): ``OUT/train/<class>/<class>_0000.mp4 ...``,
``OUT/val/<class>/...`` (``--train``/``--val`` videos per class), ``OUT/labels.txt`` (the sorted
classes) and ``OUT/unseen_motion.json`` (the parameters, with ``"complete": true`` written last).
Video k of class c (its index in :data:`CLASSES`) in split s (0 train, 1 val) is drawn from
``np.random.default_rng([seed, s, c, k])`` with its own size (:data:`SIZES`), frame count
(:data:`FRAMES`), fps (:data:`FPS`) and codec (:data:`CODECS`): the same seed gives the same videos and
a larger ``--train`` keeps the first ones unchanged.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from benchmarks.common.unseen_scene import CLASSES, CODECS, FAMILIES, FPS, FRAMES, SIZES, render_clip, sample_format
from runtime.common.files import atomic_write_text, exclusive
from runtime.common.video import write_video
from tsi.data.formats import complete_generated
from tsi.cli import UsageError, cli_main, non_negative_int, output_folder, parser, positive_int

log = logging.getLogger("bench.unseen_motion")

MARKER = "unseen_motion.json"
MARKER_FORMAT = "tsi-unseen-motion"
SPLITS = ("train", "val")

def _previous(out: Path, force: bool) -> bool:
    """May we write into ``out``? Returns whether it holds a previous output of this generator."""
    if not out.exists() or not any(out.iterdir()):
        return False
    try:
        if json.loads((out / MARKER).read_text(encoding="utf-8")).get("format") == MARKER_FORMAT:
            return True
    except (OSError, ValueError, AttributeError):
        pass
    if not force:
        raise UsageError(f"{out} is not empty and holds no {MARKER} of a previous unseen-motion output; "
                         "choose an empty folder or pass --force")
    log.warning("--force: writing into non-empty %s", out)
    return False


def generate(out: str | os.PathLike, *, train: int = 40, val: int = 12, seed: int = 0,
             force: bool = False) -> dict[str, Any]:
    """Write the set (``train``/``val`` videos per class) into ``out``; returns the marker dict."""
    out = Path(out)
    if train + val == 0:
        raise UsageError("nothing to write: --train and --val are both 0")
    with exclusive(out):
        previous = _previous(out, force)
        params = {"format": MARKER_FORMAT, "version": 1, "seed": seed, "train": train, "val": val,
                  "classes": list(CLASSES), "sizes": [list(s) for s in SIZES], "frames": list(FRAMES),
                  "fps": list(FPS), "codecs": [list(c) for c in CODECS], "families": list(FAMILIES),
                  "rng": "np.random.default_rng([seed, split_index, class_index, video_index])",
                  "use": "reporting only: never tune a recipe on it", "complete": False}
        atomic_write_text(out / MARKER, json.dumps(params, indent=2) + "\n")
        written = set()
        for si, (split, n) in enumerate(zip(SPLITS, (train, val))):
            for ci, label in enumerate(CLASSES):
                for k in range(n):
                    rng = np.random.default_rng([int(seed), si, ci, k])
                    fmt = sample_format(rng)
                    frames, _ = render_clip(label, rng, fmt["frames"], fmt["size"])
                    path = out / split / label / f"{label}_{k:04d}{fmt['suffix']}"
                    write_video(path, frames, fps=fmt["fps"], fourcc=fmt["fourcc"])
                    written.add(path)
        # a regenerated output keeps no video of a larger earlier run
        complete_generated(out, SPLITS, CLASSES, written, params, MARKER, previous=previous)
    log.info("wrote %d videos (%d classes, %d train + %d val each) to %s", len(written), len(CLASSES),
             train, val, out)
    return params


def build_parser():
    p = parser("tsi-bench-unseen-motion", __doc__)
    p.add_argument("--out", required=True, help=f"output folder (train/, val/, labels.txt, {MARKER})")
    p.add_argument("--train", type=positive_int, default=40, help="training videos per class")
    p.add_argument("--val", type=non_negative_int, default=12, help="validation videos per class")
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--force", action="store_true", help="write into a non-empty folder without the marker")
    return p


def run(argv: Iterable[str] | None = None) -> dict[str, Any]:
    args = build_parser().parse_args(None if argv is None else list(argv))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return generate(output_folder(args.out, "--out"), train=args.train, val=args.val, seed=args.seed,
                    force=args.force)


def main(argv: list[str] | None = None) -> int:
    return cli_main(run, argv, "tsi-bench-unseen-motion")


if __name__ == "__main__":
    sys.exit(main())
