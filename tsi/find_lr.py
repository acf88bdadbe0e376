"""Learning-rate range test (Smith, "Cyclical learning rates", 2017; fastai's ``lr_find``).

    tsi-train --data DIR --arch tsi_r18 ... --out runs/x --find-lr

trains from the model's initial weights for ``--find-lr-steps`` steps while the learning rate grows
geometrically from ``start`` to ``end`` (both in the CLI's units: the rate for a global batch of 64
clips), records the loss of every step and its smoothed curve (an exponential moving average,
debiased), and stops early once the smoothed loss exceeds ``DIVERGE`` times its minimum. The
suggestion is the rate at the steepest descent of the smoothed loss against log(lr), taken before
its minimum; the minimum's rate / 10 is reported beside it. When the smoothed loss never falls
:data:`MIN_DROP` below its start, no rate is suggested: the run is on a plateau (the loss at chance
for every rate), which a learning rate does not fix -- see docs/training.md. Nothing is saved but the curve
(``find_lr.csv``) and its plot (``find_lr.png``): the run's weights are thrown away.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

from runtime.common.files import atomic_write_text

START, END, STEPS = 1e-5, 10.0, 100
SMOOTHING = 0.9  # EMA factor of the smoothed loss
DIVERGE = 4.0    # stop once the smoothed loss is this many times its minimum
# the smoothed loss must fall this fraction below its first value somewhere, or no rate is
# suggested: the loss is on a plateau that no learning rate leaves within the test
MIN_DROP = 0.03
CSV_NAME, PNG_NAME = "find_lr.csv", "find_lr.png"


@dataclass(frozen=True)
class Point:
    lr: float        # CLI units (per 64 clips)
    loss: float
    smoothed: float


def schedule(step: int, steps: int, start: float = START, end: float = END) -> float:
    """The rate of ``step`` (0-based) of ``steps``: geometric from ``start`` to ``end``."""
    return start * (end / start) ** (step / max(steps - 1, 1))


class RangeTest:
    """Feed it one loss per step (:meth:`add`); :attr:`diverged` says when to stop."""

    def __init__(self, steps: int = STEPS, start: float = START, end: float = END):
        if not 0 < start < end:
            raise ValueError(f"the range test needs 0 < start < end, got {start} and {end}")
        self.steps, self.start, self.end = steps, start, end
        self.points: list[Point] = []
        self._avg = 0.0

    def lr(self, step: int) -> float:
        return schedule(step, self.steps, self.start, self.end)

    def add(self, step: int, loss: float) -> None:
        if not math.isfinite(loss):
            loss = float("inf")
        self._avg = SMOOTHING * self._avg + (1 - SMOOTHING) * min(loss, 1e30)
        smoothed = self._avg / (1 - SMOOTHING ** (len(self.points) + 1))
        self.points.append(Point(self.lr(step), loss, smoothed))

    @property
    def diverged(self) -> bool:
        if len(self.points) < 5:
            return False
        last = self.points[-1]
        return not math.isfinite(last.loss) or last.smoothed > DIVERGE * min(p.smoothed for p in self.points)

    @property
    def drop(self) -> float:
        """How far the smoothed loss fell below its first value, as a fraction of it."""
        first = self.points[0].smoothed
        return (first - min(p.smoothed for p in self.points)) / first if first > 0 else 0.0

    def suggestion(self) -> tuple[float, float] | None:
        """(steepest-descent rate, minimum's rate / 10), or None on a plateau (the loss never fell
        :data:`MIN_DROP`); raises ValueError with too few points."""
        pts = self.points
        if len(pts) < 5:
            raise ValueError(f"the range test recorded {len(pts)} steps; it needs at least 5")
        if self.drop < MIN_DROP:
            return None
        lowest = min(range(len(pts)), key=lambda i: pts[i].smoothed)
        span = pts[: max(lowest, 2) + 1]
        slopes = [(span[i + 1].smoothed - span[i - 1].smoothed) / math.log(span[i + 1].lr / span[i - 1].lr)
                  for i in range(1, len(span) - 1)]
        steepest = min(range(len(slopes)), key=slopes.__getitem__) + 1
        return span[steepest].lr, pts[lowest].lr / 10

    def write(self, out: Path, title: str = "") -> tuple[Path, Path]:
        """``out/find_lr.csv`` and ``out/find_lr.png`` (each written atomically)."""
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["step", "lr", "loss", "smoothed"])
        for i, p in enumerate(self.points):
            w.writerow([i, f"{p.lr:.6g}", f"{p.loss:.6g}", f"{p.smoothed:.6g}"])
        atomic_write_text(out / CSV_NAME, buf.getvalue())
        return out / CSV_NAME, self.plot(out / PNG_NAME, title)

    def plot(self, path: Path, title: str = "") -> Path:
        from tsi.plots import pyplot, save_png

        plt = pyplot()
        found = self.suggestion()
        finite = [p for p in self.points if math.isfinite(p.loss)]
        fig, ax = plt.subplots(figsize=(6.5, 4))
        ax.plot([p.lr for p in finite], [p.loss for p in finite], alpha=0.35, label="loss per step")
        ax.plot([p.lr for p in self.points], [p.smoothed for p in self.points], label="smoothed")
        if found is not None:
            ax.axvline(found[0], ls="--", c="g", label=f"steepest descent {found[0]:.3g}")
            ax.axvline(found[1], ls=":", c="r", label=f"minimum / 10 {found[1]:.3g}")
        else:
            ax.plot([], [], " ", label=f"plateau: the loss never fell {MIN_DROP:.0%}")
        ax.set_xscale("log")
        lo = min(p.smoothed for p in self.points)
        ax.set_ylim(lo * 0.9, max(p.smoothed for p in self.points[: max(len(self.points) // 4, 1)]) * 1.3)
        ax.set_xlabel("--lr (learning rate for a global batch of 64 clips)")
        ax.set_ylabel("training loss")
        ax.set_title(title or "learning-rate range test")
        ax.legend(fontsize=8)
        fig.tight_layout()
        return save_png(fig, path)
