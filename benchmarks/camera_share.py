"""How much of a frame-difference input is the camera: the mean |difference| between a clip's
consecutive sampled frames as ``--input-mode diff`` sees them, raw, after each frame's mean is taken
out (a flicker's gain), and after the earlier frame is also moved by the best sub-pixel shift
(a pan's or a shake's translation) -- what a camera-compensated difference could remove at most.

    python -m benchmarks.camera_share --data artifacts/unseen/val artifacts/unseen_b/val

Clips: one centre clip per video (the runtime's preprocessing, ``calib.clips.load_clip``), up to
``--videos`` videos a folder, at the demo model's geometry (T, input size, span) with ``--resize``.
The shift is searched on the clip's grey image over +-``--radius`` px in ``--step`` px (bilinear,
the border reflected) and the error is taken inside a ``--margin`` px border. No model is involved.
Writes ``benchmarks/results/camera_share.md``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

from benchmarks.common.demo_geometry import demo_card
from benchmarks.common.val_clips import val_clips
from runtime.card import RESIZE_MODES
from runtime.common.files import atomic_write_text

RESULTS = Path("benchmarks") / "results" / "camera_share.md"  # below the working directory, as the other benchmarks


def best_shift(a: np.ndarray, b: np.ndarray, shifts: np.ndarray, margin: int) -> tuple[float, float]:
    """(least mean |a - b shifted| inside the margin, the shift's length in px)."""
    import cv2

    inner = (slice(margin, -margin), slice(margin, -margin))
    best = (np.inf, 0.0)
    for dx in shifts:
        for dy in shifts:
            m = np.float32([[1, 0, dx], [0, 1, dy]])
            moved = cv2.warpAffine(b, m, b.shape[::-1], flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            err = float(np.abs(a - moved)[inner].mean())
            if err < best[0]:
                best = (err, float(np.hypot(dx, dy)))
    return best


def measure(clips: np.ndarray, shifts: np.ndarray, margin: int) -> dict[str, float]:
    """Means over every consecutive pair of every clip (clips: N, T, 3, H, W, as ``load_clip`` gives)."""
    grey = clips.astype(np.float32).mean(2)  # N, T, H, W
    inner = (slice(margin, -margin), slice(margin, -margin))
    raw, flat, moved, length = [], [], [], []
    for g in grey:
        for t in range(1, len(g)):
            a, b = g[t], g[t - 1]
            raw.append(float(np.abs(a - b)[inner].mean()))
            a, b = a - a.mean(), b - b.mean()
            flat.append(float(np.abs(a - b)[inner].mean()))
            err, d = best_shift(a, b, shifts, margin)
            moved.append(err)
            length.append(d)
    raw_m, moved_m = float(np.mean(raw)), float(np.mean(moved))
    return {"pairs": len(raw), "raw": raw_m, "mean_out": float(np.mean(flat)), "shifted": moved_m,
            "left": moved_m / raw_m if raw_m else 0.0, "median_shift": float(np.median(length)),
            "shift_half_px": float(np.mean(np.asarray(length) >= 0.5))}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", nargs="+", type=Path, required=True, help="folders of class folders of videos")
    p.add_argument("--videos", type=int, default=48, help="videos per folder, evenly spread (%(default)s)")
    p.add_argument("--resize", default="square", choices=RESIZE_MODES, help="%(default)s")
    p.add_argument("--radius", type=float, default=2.0, help="largest shift searched, px (%(default)s)")
    p.add_argument("--step", type=float, default=0.25, help="shift step, px (%(default)s)")
    p.add_argument("--margin", type=int, default=4, help="border left out of the error, px (%(default)s)")
    p.add_argument("--table", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    if args.videos < 1 or args.radius <= 0 or args.step <= 0 or args.margin < 0:
        p.error("--videos must be >= 1, --radius and --step > 0, --margin >= 0")
    labels = {data: sorted(d.name for d in data.iterdir() if d.is_dir()) if data.is_dir() else [] for data in args.data}
    for data, names in labels.items():  # every folder checked before any is read
        if not names:
            p.error(f"--data {data} is not a folder of class folders")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    shifts = np.arange(-args.radius, args.radius + args.step / 2, args.step)
    base = demo_card()
    lines = ["# How much of a frame-difference input is the camera", "",
             f"Command: `python -m benchmarks.camera_share {' '.join(sys.argv[1:] if argv is None else argv)}`", "",
             f"One centre clip per video (up to {args.videos} a folder), T={base.frames}, {base.input_size}², "
             f"span {base.span_frames}, resize {args.resize}; grey mean |difference| of consecutive sampled frames "
             f"(pixel units of the model's normalised input) inside a {args.margin} px border: raw; each frame's mean "
             f"taken out; and then the earlier frame moved by the best shift within ±{args.radius:g} px in "
             f"{args.step:g} px steps. 'Left' is the last over the raw.", "",
             "| data | pairs | raw | mean out | best shift too | left | median shift px | pairs shifted >= 0.5 px |",
             "|---|---|---|---|---|---|---|---|"]
    for data, names in labels.items():
        card = base.replace(resize=args.resize, labels=names)
        clips, _, _ = val_clips(data, card, args.videos)
        r = measure(clips, shifts, args.margin)
        lines.append(f"| {data} | {r['pairs']} | {r['raw']:.4f} | {r['mean_out']:.4f} | {r['shifted']:.4f} | "
                     f"{r['left']:.2f} | {r['median_shift']:.2f} | {100 * r['shift_half_px']:.0f}% |")
    atomic_write_text(args.table, "\n".join(lines) + "\n")
    print(args.table.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
