"""How often the crop loses the acting object: TSN multi-scale crops vs narrower scales, and a
short-side resize (the long side cut) vs a square one (the whole frame squashed; card ``resize``).

    python -m benchmarks.crop_coverage --clips 2000 --new-clips 500

For clips of the synthetic benchmark (each setting's own object tracks and frame sizes) and of the
unseen generator (``benchmarks.unseen_motion``'s scene, its truth), draws the training crop exactly
as ``TrainTransform.sample_params`` does (resize and input size as the demo model's card says, with
``resize`` set per row) and counts whether the actor's centre lies outside the crop in the card's T
TSN-sampled frames; the test-time centre crop is counted the same way. No video is decoded; the
unseen generator's clips are rendered to get their truth (hence fewer of them).
Writes ``benchmarks/results/crop_coverage.md``.
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

import numpy as np

from benchmarks.common import unseen_scene
from benchmarks.common.demo_geometry import demo_card
from tsi.data.generated import sample_format
from runtime.card import RESIZE_MODES, ModelCard
from runtime.common.files import atomic_write_text
from runtime.preprocess import resized_size
from runtime.sampling import segment_indices
from tsi.data.synthetic_scene import (CANONICAL, CLASSES, HARD_OBJECT_SCALE, sample_hard_format,
                                      sample_track)
from tsi.data.transforms import TSN_SCALES, TrainTransform

RESULTS = Path("benchmarks") / "results" / "crop_coverage.md"  # below the working directory, as the other benchmarks
SCALES = {"TSN (1 .875 .75 .66)": TSN_SCALES, "1 .875": (1.0, 0.875), "1": (1.0,)}
SETTINGS = ("easy", "hard", "new")


@functools.lru_cache(maxsize=2)
def new_clips(n: int, seed: int) -> tuple:
    """(frame size, actor centre per frame, frames) of ``n`` clips of the unseen generator, rendered
    once for every row."""
    out = []
    for k in range(n):
        label = unseen_scene.CLASSES[k % len(unseen_scene.CLASSES)]
        rng = np.random.default_rng([seed, 9, k])
        fmt = sample_format(rng, unseen_scene)
        _, truth = unseen_scene.render_clip(label, rng, fmt["frames"], fmt["size"])
        out.append((fmt["size"], {"x": truth["centre"][:, 0], "y": truth["centre"][:, 1]}, fmt["frames"]))
    return tuple(out)


def clips(setting: str, n: int, seed: int):
    """(frame size, actor track) of ``n`` clips of a setting, all classes in turn."""
    if setting == "new":
        yield from new_clips(n, seed)
        return
    rng = np.random.default_rng(seed)
    for k in range(n):
        label = CANONICAL[CLASSES[k % len(CLASSES)]][0]
        if setting == "hard":
            fmt = sample_hard_format(rng)
            size, frames = fmt["size"], fmt["frames"]
            track = sample_track(label, rng, frames, size, object_scale=HARD_OBJECT_SCALE)
        else:
            size, frames = (160, 128), 32
            track = sample_track(label, rng, frames, size)
        yield size, track, frames


def outside(setting: str, n: int, crop, card: ModelCard, seed: int = 0) -> tuple[float, float]:
    """(% clips with the actor outside the crop in >= 1 sampled frame, % sampled frames outside).
    ``crop`` is a TrainTransform, or None for the test-time centre crop."""
    rng = np.random.default_rng(seed + 1)
    any_out, frac = [], []
    for (w, h), track, frames in clips(setting, n, seed):
        rw, rh = resized_size(w, h, card)  # the frame TrainTransform crops, as the card resizes it
        sx, sy = rw / w, rh / h
        if crop is None:
            x0, y0, cw, ch = (rw - card.input_size) // 2, (rh - card.input_size) // 2, card.input_size, card.input_size
        else:
            p = crop.sample_params(rw, rh, rng)
            x0, y0, cw, ch = p.x, p.y, p.w, p.h
        idx = segment_indices(frames, card.frames, "train", rng=rng)
        x, y = track["x"][idx] * sx, track["y"][idx] * sy
        out = ~((x >= x0) & (x < x0 + cw) & (y >= y0) & (y < y0 + ch))
        any_out.append(out.any())
        frac.append(out.mean())
    return 100 * float(np.mean(any_out)), 100 * float(np.mean(frac))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", type=int, default=2000)
    p.add_argument("--new-clips", type=int, default=500, help="clips of the unseen generator (rendered)")
    p.add_argument("--table", default=str(RESULTS))
    args = p.parse_args(argv)
    if args.clips < 1 or args.new_clips < 1:
        p.error(f"--clips and --new-clips must be >= 1 (got {args.clips}, {args.new_clips})")
    demo = demo_card()
    lines = ["# Does the training crop keep the acting object?", "",
             f"Command: `python -m benchmarks.crop_coverage {' '.join(sys.argv[1:])}`", "",
             f"{args.clips} generated clips of the easy and hard settings (tracks only) and {args.new_clips} of "
             f"the unseen generator (new), T={demo.frames} TSN-sampled frames, resize to {demo.resize_short}, "
             f"input {demo.input_size}²; share of clips whose actor centre is outside the crop in at least one "
             "sampled frame / share of sampled frames.", "",
             "| resize | crop | " + " | ".join(f"{s}: clips | {s}: frames" for s in SETTINGS) + " |",
             "|---|---|" + "---|---|" * len(SETTINGS)]
    for mode in RESIZE_MODES:
        card = demo.replace(resize=mode)
        rows = [(f"train, scales {name}", TrainTransform(card, scales=sc)) for name, sc in SCALES.items()]
        rows.append(("test, centre crop", None))
        for name, crop in rows:
            cells = [outside(s, args.new_clips if s == "new" else args.clips, crop, card) for s in SETTINGS]
            lines.append(f"| {mode} | {name} | " + " | ".join(f"{c[0]:.1f}% | {c[1]:.1f}%" for c in cells) + " |")
    atomic_write_text(Path(args.table), "\n".join(lines) + "\n")
    print(Path(args.table).read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
