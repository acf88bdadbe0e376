"""The motion pretraining corpus: the clips the shipped motion initialisations learn from before a
user's small data set (``tsi-train --init motion``; docs/training.md). Its scene is its own
(:mod:`tsi.data.corpus_scene`: procedural actors, a noise-field world, a still, panning, zooming or
wandering camera) and its :data:`~tsi.data.corpus_scene.CLASSES` a vocabulary of 2-D motion.

    python -m tsi.data.motion_corpus --out DIR --train 100 --val 6 --seed 100 [--workers 2] [--force]

Layout (the folder format ``tsi.data.formats`` reads): ``OUT/train/<class>/<class>_0000.mp4 ...``,
``OUT/val/<class>/...`` (``--train``/``--val`` videos per class), ``OUT/labels.txt`` and
``OUT/motion_corpus.json`` (the parameters, ``"complete": true`` written last). Video k of class c
in split s is drawn from ``np.random.default_rng([seed, s, c, k])`` with its own size, frame
count, fps and codec (the scene's ``SIZES``, ``FRAMES``, ``FPS``, ``CODECS``): the same seed gives
the same videos, whatever ``--workers``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Iterable

from runtime.common.files import atomic_write_text, exclusive
from tsi.cli import UsageError, cli_main, non_negative_int, output_folder, parser, positive_int
from tsi.data import corpus_scene
from tsi.data.formats import complete_generated, generator_marker
from tsi.data.generated import scene_params, write_scene_videos

log = logging.getLogger("tsi.motion_corpus")

MARKER = "motion_corpus.json"
MARKER_FORMAT = "tsi-motion-corpus"
SPLITS = ("train", "val")


def _previous(out: Path, force: bool) -> bool:
    """May we write into ``out``? Returns whether it holds a previous corpus."""
    if not out.exists() or not any(out.iterdir()):
        return False
    if generator_marker(out, MARKER, MARKER_FORMAT) is not None:
        return True
    if not force:
        raise UsageError(f"{out} is not empty and holds no {MARKER} of a previous motion corpus; "
                         "choose an empty folder or pass --force")
    log.warning("--force: writing into non-empty %s", out)
    return False


def generate(out: str | os.PathLike, *, train: int = 100, val: int = 6, seed: int = 100, workers: int = 1,
             force: bool = False) -> dict[str, Any]:
    """Write the corpus (``train``/``val`` videos per class) into ``out``; returns the marker dict."""
    out = Path(out)
    if train + val == 0:
        raise UsageError("nothing to write: --train and --val are both 0")
    sc = corpus_scene
    with exclusive(out):
        previous = _previous(out, force)
        params = {"format": MARKER_FORMAT, "version": 1, "seed": seed, "train": train, "val": val,
                  **scene_params(sc), "cameras": list(sc.CAMERAS), "complete": False}
        atomic_write_text(out / MARKER, json.dumps(params, indent=2) + "\n")
        written = write_scene_videos(out, sc, sc.render_clip, SPLITS, (train, val), seed, workers)
        complete_generated(out, SPLITS, sc.CLASSES, written, params, MARKER, previous=previous)
    log.info("wrote %d corpus videos (%d classes, %d train + %d val each) to %s", len(written),
             len(sc.CLASSES), train, val, out)
    return params


def build_parser():
    p = parser("tsi-motion-corpus", __doc__)
    p.add_argument("--out", required=True, help=f"output folder (train/, val/, labels.txt, {MARKER})")
    p.add_argument("--train", type=non_negative_int, default=100, help="training videos per class")
    p.add_argument("--val", type=non_negative_int, default=6, help="validation videos per class")
    p.add_argument("--seed", type=non_negative_int, default=100)
    p.add_argument("--workers", type=positive_int, default=1, help="processes writing videos (one class at a time)")
    p.add_argument("--force", action="store_true", help="write into a non-empty folder without the marker")
    return p


def run(argv: Iterable[str] | None = None) -> dict[str, Any]:
    args = build_parser().parse_args(None if argv is None else list(argv))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return generate(output_folder(args.out, "--out"), train=args.train, val=args.val, seed=args.seed,
                    workers=args.workers, force=args.force)


def main(argv: list[str] | None = None) -> int:
    return cli_main(run, argv, "tsi-motion-corpus")


if __name__ == "__main__":
    sys.exit(main())
