"""A synthetic video set the project's recipes were never tuned on, used ONLY TO REPORT: it judges
training recipes and INT8 calibration on data they did not see while being tuned. Two scenes, each
its own model (nothing of ``tsi.data.synthetic`` or ``tsi.data.synthetic_scene``, nor of each other):
scene a (:mod:`benchmarks.common.unseen_scene`, the default) and scene b
(:mod:`benchmarks.common.unseen_scene_b`), written later so that a change guided by scene a's
results can be judged on a scene nothing was decided on.

    python -m benchmarks.unseen_motion --out DIR --train 40 --val 12 --seed 0 [--scene a|b] [--force]

Scene a draws ONE actor -- a textured stick figure whose limbs swing, a textured star with a marked
tip, or a textured ring with a gap -- among static textured clutter on a textured background, seen by
a camera that pans smoothly (random direction, constant or eased speed), jitters a few pixels per
frame and flickers mildly in brightness. The actor moves in world coordinates, so its image motion is
its own plus the camera's. Its 12 classes: slide_left / slide_right (>= 35% of the
frame width), rise / sink (>= 30% of the height), grow / shrink (between ~15% and ~35% of the height,
the two overlapping in sizes), spin_cw / spin_ccw (200-400 degrees, <= ~18 a frame), fade_in / fade_out (opacity
between ~0 and 1), still, and out_and_back (away >= 30% of the height in a random direction and back).

Scene b draws ONE actor -- a rigid cloud of dots, a thick letter-like stroke, a chain of blobs
joined by bars, or an irregular plate with holes, with a soft drop shadow -- over a textured floor
(weave, foliage, planks or cobbles) with static crosses, crescents, arcs and dashes, seen by a
tripod camera that breathes in zoom (1.0-1.1) and rolls (<= 2.5 degrees), with motion blur, a
vignette and sensor noise. Its 12 classes: bounce (falls >= 30% of the height onto a floor, 2-3
lower hops), cartwheel (rolls sideways >= 35% of the width, turning as a wheel), glide / dash_then_stop
/ wait_then_dash (>= 30% of the height in a random direction over the whole clip / its first / its
last 30-45%), orbit_cw / orbit_ccw (0.8-1.2 turns on a circle of radius >= 16% of the height),
pendulum (swings +-30-45 degrees on an arm >= 30% of the height, tilting), pulse (size between
~16% and ~33% of the height, 1.5-2.5 beats), rock (turns back and forth +-30-50 degrees), shake
(+-7-10% of the height every 3-5 frames) and zigzag (sideways >= 35% of the width in 2-3 up-down legs).

In both, every motion lasts the whole clip (unless it is one to rest); start position, size, angle
and look are random, so one frame does not tell the class (:data:`CLASSES` of the scene's module).

Layout (the folder format ``tsi.data.formats`` reads): ``OUT/train/<class>/<class>_0000.mp4 ...``,
``OUT/val/<class>/...`` (``--train``/``--val`` videos per class), ``OUT/labels.txt`` (the sorted
classes) and ``OUT/unseen_motion.json`` (the parameters and the scene, with ``"complete": true``
written last). A folder holding the other scene's output is refused (``--force`` replaces it).
Video k of class c (its index in the scene's classes) in split s (0 train, 1 val) is drawn from
``np.random.default_rng([seed, s, c, k])`` with its own size, frame count, fps and codec (the scene's
``SIZES``, ``FRAMES``, ``FPS``, ``CODECS``): the same seed gives the same videos and a larger
``--train`` keeps the first ones unchanged.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Iterable

from benchmarks.common import unseen_scene, unseen_scene_b
from benchmarks.common.unseen_scene import render_clip  # scene a's
from runtime.common.files import atomic_write_text, exclusive
from runtime.common.video import VIDEO_SUFFIXES
from tsi.data.formats import complete_generated, generator_marker
from tsi.data.generated import scene_params, write_scene_videos
from tsi.cli import UsageError, cli_main, non_negative_int, output_folder, parser, positive_int

log = logging.getLogger("bench.unseen_motion")

MARKER = "unseen_motion.json"
MARKER_FORMAT = "tsi-unseen-motion"
SPLITS = ("train", "val")

SCENES = {"a": unseen_scene, "b": unseen_scene_b}


def _previous(out: Path, force: bool, scene: str) -> tuple[str, list[str]] | None:
    """May we write ``scene`` into ``out``? Returns the scene and classes of a previous output of
    this generator there (None when there is none); another scene's is refused unless ``force``."""
    if not out.exists() or not any(out.iterdir()):
        return None
    marker = generator_marker(out, MARKER, MARKER_FORMAT)
    if marker is not None:
        found = str(marker.get("scene", "a"))  # an output from before scene b is scene a's
        classes = marker.get("classes")
        classes = [c for c in classes if isinstance(c, str)] if isinstance(classes, list) else []
        if found != scene and not force:
            raise UsageError(f"{out} holds a scene-{found} unseen-motion output; writing scene {scene} there "
                             f"would mix the two: choose another folder or pass --force to replace it")
        return found, classes
    if not force:
        raise UsageError(f"{out} is not empty and holds no {MARKER} of a previous unseen-motion output; "
                         "choose an empty folder or pass --force")
    log.warning("--force: writing into non-empty %s", out)
    return None


def _remove_other_scene(out: Path, found: str, old_classes: list[str], classes) -> None:
    """--force over another scene's output: remove its videos (of the classes this scene lacks)."""
    removed = 0
    for split in SPLITS:
        for c in old_classes:
            folder = out / split / c
            if c in classes or Path(c).name != c or c.startswith(".") or not folder.is_dir():
                continue
            for p in folder.glob(f"{c}_*"):
                if p.suffix.lower() in VIDEO_SUFFIXES:
                    p.unlink()
                    removed += 1
            if not any(folder.iterdir()):
                folder.rmdir()
    log.warning("--force: removed %d videos of the scene-%s output in %s", removed, found, out)


def generate(out: str | os.PathLike, *, train: int = 40, val: int = 12, seed: int = 0, scene: str = "a",
             force: bool = False) -> dict[str, Any]:
    """Write the set of ``scene`` (``train``/``val`` videos per class) into ``out``; returns the
    marker dict."""
    out = Path(out)
    if scene not in SCENES:
        raise UsageError(f"unknown scene {scene!r}; one of {sorted(SCENES)}")
    if train + val == 0:
        raise UsageError("nothing to write: --train and --val are both 0")
    sc = SCENES[scene]
    # scene a through this module's names (a test replaces render_clip here)
    render = render_clip if scene == "a" else sc.render_clip
    classes = sc.CLASSES
    with exclusive(out):
        previous = _previous(out, force, scene)
        params = {"format": MARKER_FORMAT, "version": 1, "scene": scene, "seed": seed, "train": train, "val": val,
                  **scene_params(sc), "use": "reporting only: never tune a recipe on it", "complete": False}
        atomic_write_text(out / MARKER, json.dumps(params, indent=2) + "\n")
        if previous is not None and previous[0] != scene:
            _remove_other_scene(out, previous[0], previous[1], classes)
        written = write_scene_videos(out, sc, render, SPLITS, (train, val), seed)
        # a regenerated output keeps no video of a larger earlier run
        complete_generated(out, SPLITS, classes, written, params, MARKER, previous=previous is not None)
    log.info("wrote %d videos of scene %s (%d classes, %d train + %d val each) to %s", len(written), scene,
             len(classes), train, val, out)
    return params


def build_parser():
    p = parser("tsi-bench-unseen-motion", __doc__)
    p.add_argument("--out", required=True, help=f"output folder (train/, val/, labels.txt, {MARKER})")
    p.add_argument("--train", type=positive_int, default=40, help="training videos per class")
    p.add_argument("--val", type=non_negative_int, default=12, help="validation videos per class")
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--scene", choices=sorted(SCENES), default="a",
                   help="the scene model: a (unseen_scene, the default) or b (unseen_scene_b)")
    p.add_argument("--force", action="store_true",
                   help="write into a non-empty folder without the marker, or replace the other scene's output")
    return p


def run(argv: Iterable[str] | None = None) -> dict[str, Any]:
    args = build_parser().parse_args(None if argv is None else list(argv))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return generate(output_folder(args.out, "--out"), train=args.train, val=args.val, seed=args.seed,
                    scene=args.scene, force=args.force)


def main(argv: list[str] | None = None) -> int:
    return cli_main(run, argv, "tsi-bench-unseen-motion")


if __name__ == "__main__":
    sys.exit(main())
