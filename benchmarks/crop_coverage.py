"""How often the training crop loses the acting object: TSN multi-scale crops vs narrower scales.

    python -m benchmarks.crop_coverage --clips 2000

For clips of the synthetic benchmark (each setting's own object tracks and frame sizes), draws the
training crop exactly as ``TrainTransform.sample_params`` does (short side resized and input size
as the demo model's card says) and counts whether the actor's centre lies outside the crop in the
card's T TSN-sampled frames; the test-time centre crop is counted the same way. No video is decoded: the
tracks come from the generator. Writes ``benchmarks/results/crop_coverage.md``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from benchmarks.common.demo_geometry import demo_card
from runtime.card import ModelCard
from runtime.common.files import atomic_write_text
from runtime.sampling import segment_indices
from tsi.data.synthetic_scene import (CANONICAL, CLASSES, HARD_OBJECT_SCALE, sample_hard_format,
                                      sample_track)
from tsi.data.transforms import TSN_SCALES, TrainTransform

RESULTS = Path("benchmarks") / "results" / "crop_coverage.md"  # below the working directory, as the other benchmarks
SCALES = {"TSN (1 .875 .75 .66)": TSN_SCALES, "1 .875": (1.0, 0.875), "1": (1.0,)}


def clips(setting: str, n: int, seed: int):
    """(frame size, actor track) of ``n`` clips of a setting, all classes in turn."""
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
        s = card.resize_short / min(w, h)
        rw, rh = round(w * s), round(h * s)
        if crop is None:
            x0, y0, cw, ch = (rw - card.input_size) // 2, (rh - card.input_size) // 2, card.input_size, card.input_size
        else:
            p = crop.sample_params(rw, rh, rng)
            x0, y0, cw, ch = p.x, p.y, p.w, p.h
        idx = segment_indices(frames, card.frames, "train", rng=rng)
        x, y = track["x"][idx] * s, track["y"][idx] * s
        out = ~((x >= x0) & (x < x0 + cw) & (y >= y0) & (y < y0 + ch))
        any_out.append(out.any())
        frac.append(out.mean())
    return 100 * float(np.mean(any_out)), 100 * float(np.mean(frac))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", type=int, default=2000)
    p.add_argument("--table", default=str(RESULTS))
    args = p.parse_args(argv)
    if args.clips < 1:
        p.error(f"--clips must be >= 1 (got {args.clips})")
    card = demo_card()
    lines = ["# Does the training crop keep the acting object?", "",
             f"Command: `python -m benchmarks.crop_coverage {' '.join(sys.argv[1:])}`", "",
             f"{args.clips} generated clips per setting (tracks only), T={card.frames} TSN-sampled frames, "
             f"short side {card.resize_short}, input {card.input_size}²; share of clips whose actor centre is "
             "outside the crop in at least one sampled frame / share of sampled frames.", "",
             "| crop | easy: clips | easy: frames | hard: clips | hard: frames |", "|---|---|---|---|---|"]
    rows = [(f"train, scales {name}", TrainTransform(card, scales=sc)) for name, sc in SCALES.items()]
    rows.append(("test, centre crop", None))
    for name, crop in rows:
        e, h = outside("easy", args.clips, crop, card), outside("hard", args.clips, crop, card)
        lines.append(f"| {name} | {e[0]:.1f}% | {e[1]:.1f}% | {h[0]:.1f}% | {h[1]:.1f}% |")
    atomic_write_text(Path(args.table), "\n".join(lines) + "\n")
    print(Path(args.table).read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
