"""Named training recipes: ``tsi-train --recipe {paper,small}``.

A recipe is a set of option values; an option given on the command line keeps its value.

- ``paper`` (default): the parser's own defaults, the paper's recipe (Sec. 4.2: SGD, 50 epochs).
- ``small``: the small-data, CPU-budget recipe at the demo geometry (TSI-R18, 64², base width 32),
  what docs/training.md measures on the project's settings and on data no recipe was tuned on. It
  has two forms, chosen by where the weights start:

  * from a shipped motion initialisation (``--init auto`` or ``motion`` for an arch that has one)
    or ``--pretrained`` / ``--finetune``: :data:`SMALL`, on frames;
  * from scratch (``--init scratch``, or an arch without a shipped initialisation): :data:`SMALL`
    with :data:`SMALL_SCRATCH` over it, on frame differences at the rate the range test chose
    (docs/training.md, "The learning rate from scratch on frame differences").
"""

from __future__ import annotations

import argparse

from tsi import init as tsi_init
from tsi.resume import flag

CHOICES = ("paper", "small")
SMALL = {"epochs": 20, "lr_steps": [14, 18], "optimizer": "adamw", "lr": 0.008, "weight_decay": 0.01,
         "input_size": 64, "base_width": 32, "sme_reduction": 8, "span_frames": 32, "dropout": 0.2,
         "warmup_epochs": 1.0, "crop_scales": [1.0, 0.875], "resize": "square"}
SMALL_SCRATCH = {"input_mode": "diff", "lr": 0.0149}


def from_scratch(args: argparse.Namespace) -> bool:
    """Whether the run's weights start from the model's own initialisation (as :func:`tsi.init.resolve`
    decides it, before the model exists: a geometry given on the command line that the shipped
    initialisation does not have is not foreseen, and starts from scratch on frames)."""
    if args.pretrained or args.finetune:
        return False
    return args.init == "scratch" or tsi_init.shipped_file(args.arch) is None


def apply(args: argparse.Namespace, given: set[str]) -> str | None:
    """Set the recipe's values on ``args`` for the options not in ``given``; one line saying what
    was set (None for ``paper``)."""
    if args.recipe == "paper":
        return None
    values = dict(SMALL)
    form = "on frames"
    if from_scratch(args):
        values.update(SMALL_SCRATCH)
        form = "from scratch, on frame differences"
    set_ = {k: v for k, v in values.items() if k not in given}
    for k, v in set_.items():
        setattr(args, k, v)
    kept = sorted(set(values) - set(set_))
    return (f"recipe small ({form}): {flags(set_)}"
            + (f"; given on the command line: {', '.join(map(flag, kept))}" if kept else ""))


def flags(values: dict) -> str:
    """``values`` as the command line's options: ``--lr-steps 14 18 --lr 0.008 ...``."""
    def show(v) -> str:
        return f"{v:g}" if isinstance(v, float) else str(v)
    return " ".join(f"{flag(k)} " + (" ".join(map(show, v)) if isinstance(v, list) else show(v))
                    for k, v in values.items())
