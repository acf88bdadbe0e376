"""What ``tsi-train --resume`` takes from ``last.pt`` and what from the command line.

* The model and its card come from the checkpoint: its weights were made with them. An option of
  either given on the command line with another value is refused in one line naming the option
  and both values (``--arch tsi_r50`` on a ``tsi_r18`` run would otherwise be ignored silently).
* The recipe (batch size, learning rate, schedule, seed, augmentation) comes from the options the
  checkpoint saved, unless given again: ``--resume`` alone continues exactly. One given with
  another value is used, and said: the run is then no longer the uninterrupted one.
* Where the data lives and how it is read (``--data``, lists, ``--workers``, ``--device``) always
  comes from the command line.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any, Sequence

from tsi.cli import UsageError

log = logging.getLogger("tsi.train")

# option -> where the checkpoint holds it: ("config", field), ("card", field) or ("args", option)
MODEL = {"arch": ("card", "arch"), "frames": ("config", "frames"), "input_size": ("config", "input_size"),
         "base_width": ("config", "base_width"), "sme_reduction": ("config", "sme_reduction"),
         "attention": ("config", "attention"), "dropout": ("config", "dropout"),
         "input_mode": ("config", "input_mode"),
         "causal": ("config", "causal"), "span_frames": ("card", "span_frames"), "fps": ("card", "fps"),
         "resize_short": ("card", "resize_short"), "resize": ("card", "resize"),
         "no_zero_init": ("args", "no_zero_init"),
         "optimizer": ("args", "optimizer"), "recipe": ("args", "recipe")}
# a new model's initialisation: meaningless for a run that has its weights (--qat's quantizers and
# their learnt ranges are in the checkpoint too)
INIT = ("pretrained", "finetune", "init", "qat")
RECIPE = ("epochs", "batch_size", "lr", "lr_steps", "warmup_epochs", "momentum", "weight_decay",
          "clip_grad", "max_steps", "seed", "eval_every", "flip", "flip_map", "crop_scales", "warm_state",
          "mix_background", "partial_bn")
# changing these leaves the epochs already run as they would have been
HARMLESS = ("epochs", "eval_every")


def flag(option: str) -> str:
    return "--" + option.replace("_", "-")


def given_options(p: argparse.ArgumentParser, argv: Sequence[str] | None) -> set[str]:
    """The options the command line gave (not defaulted): ``p`` parsed again with every default
    suppressed (``p`` is spent: its defaults are changed)."""
    for action in p._actions:
        action.default = argparse.SUPPRESS
    return set(vars(p.parse_args(argv)))


def apply_checkpoint(args: argparse.Namespace, given: set[str], ckpt: dict[str, Any], source: str) -> None:
    """Refuse a model, card or initialisation option that contradicts ``ckpt``; take the recipe
    options not given from the options ``ckpt`` saved (``args`` is changed); log what came from where."""
    saved = ckpt.get("args") or {}
    for option in INIT:
        if option in given and getattr(args, option):
            raise UsageError(f"{flag(option)} initialises a new model; --resume continues {source}, "
                             f"which has its weights: drop {flag(option)} or start a new --out")
    kept = []
    for option, (where, key) in MODEL.items():
        held = saved.get(key) if where == "args" else ckpt.get(where, {}).get(key)
        if held is None:
            continue
        kept.append(f"{flag(option)} {held}")
        mine = getattr(args, option)
        if option in given and not (option == "resize_short" and mine == 0) and mine != held:
            raise UsageError(f"{flag(option)} {mine} differs from the resumed run's {held} ({source}); "
                             f"a resumed run keeps its model: drop {flag(option)} or start a new --out")
        setattr(args, option, held)  # the optimizer (and what the new checkpoint saves) follow the run's
    carried, changed = [], []
    for option in RECIPE:
        if option not in saved:
            continue
        if option not in given:
            setattr(args, option, saved[option])
            carried.append(f"{flag(option)} {saved[option]}")
        elif getattr(args, option) != saved[option]:
            changed.append(option)
    mine = [f"{flag(o)} {getattr(args, o)} (was {saved[o]})" for o in changed]
    log.info("--resume %s: model, card and optimizer state from the checkpoint (%s); from its saved "
             "options: %s; from the command line: the data options%s", source, ", ".join(kept),
             ", ".join(carried) or "none", ", " + ", ".join(mine) if mine else "")
    inexact = [o for o in changed if o not in HARMLESS]
    if inexact:
        log.warning("--resume %s: %s changed, so the resumed run is not the uninterrupted one",
                    source, ", ".join(flag(o) for o in inexact))
