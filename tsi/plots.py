"""Training curves from the ``log.csv`` that ``tsi.train`` writes: loss and top-1 per epoch.

    python -m tsi.plots runs/tsn/log.csv runs/tsi/log.csv --labels TSN TSI --out curves.png

One figure, two panels: training loss (and validation loss where evaluated) on the left, training
and validation top-1 on the right; one colour per run, solid = train, dashed with markers =
validation (``--eval-every`` epochs only). Written atomically as a PNG (matplotlib, Agg backend).
"""

from __future__ import annotations

import argparse
import csv
import io
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from runtime.common.files import atomic_write_bytes
from tsi.cli import UsageError, cli_main, new_output_file, parser

log = logging.getLogger("tsi.plots")


class LogFormatError(UsageError):
    """A log.csv that is missing, empty or lacks the epoch / train columns."""


def read_log(path: str | os.PathLike) -> dict[str, list[float | None]]:
    """``log.csv`` -> {column: per-epoch values} (an empty cell, e.g. a validation column of an
    epoch that was not evaluated, is None)."""
    path = Path(path)
    if not path.is_file():
        raise LogFormatError(f"{path}: no such log file")
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"epoch", "train_loss", "train_top1"} <= set(rows[0]):
        raise LogFormatError(f"{path}: not a tsi.train log.csv (needs epoch, train_loss, train_top1 rows)")

    def num(v: str | None) -> float | None:
        return float(v) if v not in (None, "") else None

    return {k: [num(r.get(k)) for r in rows] for k in rows[0]}


def pyplot():
    """matplotlib's pyplot on the Agg backend (no display needed); imported on first use."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Write ``fig`` to ``path`` as a PNG atomically (a crash never leaves half a file there) and
    close it; returns the path."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    pyplot().close(fig)
    return atomic_write_bytes(Path(path), buf.getvalue())


def plot_curves(logs: Sequence[str | os.PathLike], out: str | os.PathLike, *,
                labels: Sequence[str] | None = None, title: str = "") -> Path:
    """Draw the runs' curves into one PNG at ``out``; returns its path."""
    plt = pyplot()
    if labels is not None and len(labels) != len(logs):
        raise UsageError(f"--labels: {len(labels)} labels for {len(logs)} logs")
    data = [read_log(p) for p in logs]
    labels = list(labels) if labels else [Path(p).parent.name or str(p) for p in logs]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4.2))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (d, name) in enumerate(zip(data, labels)):
        c = colours[i % len(colours)]
        ep = d["epoch"]
        ax_loss.plot(ep, d["train_loss"], color=c, label=f"{name} train")
        ax_acc.plot(ep, d["train_top1"], color=c, label=f"{name} train")
        for key, ax in (("val_loss", ax_loss), ("val_top1", ax_acc)):
            pts = [(e, v) for e, v in zip(ep, d.get(key, [])) if v is not None]
            if pts:
                ax.plot(*zip(*pts), color=c, ls="--", marker="o", ms=4, label=f"{name} val")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="top-1 (%)", title="top-1", ylim=(0, 100))
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_png(fig, out)


def build_parser() -> argparse.ArgumentParser:
    p = parser("tsi-plots", __doc__)
    p.add_argument("logs", nargs="+", help="log.csv files of tsi.train runs")
    p.add_argument("--out", required=True, help="PNG to write")
    p.add_argument("--labels", nargs="+", help="one name per log (default: each run folder's name)")
    p.add_argument("--title", default="")
    return p


def run(argv: list[str] | None = None) -> Path:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    new_output_file(args.out, "--out")
    out = plot_curves(args.logs, args.out, labels=args.labels, title=args.title)
    log.info("wrote %s", out)
    return out


def main(argv: list[str] | None = None) -> int:
    return cli_main(run, argv, "tsi-plots")


if __name__ == "__main__":
    sys.exit(main())
