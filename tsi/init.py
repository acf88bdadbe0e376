"""Where a new training run's weights start: ``tsi-train --init {auto,motion,scratch}``.

- ``motion``: the shipped motion initialisation of the arch (:data:`tsi.assets.MOTION_INITS`), a
  stand-in for ImageNet/Kinetics weights, which cannot be had here: the model pretrained on a
  large synthetic motion corpus (what, how and how well: docs/training.md, "The motion
  initialisation"). Every weight whose name and shape match is copied (the classifier is
  re-initialised when the classes differ), as ``--finetune`` does. Refused in one line when the arch
  has none or the model's geometry (depth, widths, modules) differs from the shipped one's.
- ``scratch``: the model's own initialisation.
- ``auto`` (default): ``motion`` when the arch has a shipped initialisation of the same geometry
  and neither ``--pretrained`` nor ``--finetune`` is given, ``scratch`` otherwise; the log says which.
"""

from __future__ import annotations

import dataclasses

from pathlib import Path

from tsi.assets import MOTION_INITS
from tsi.checkpoint import load_checkpoint
from tsi.config import TSIConfig

CHOICES = ("auto", "motion", "scratch")
# the config fields that decide the weights' names and shapes (frames, input size, classes,
# dropout, attention implementation and causality do not)
GEOMETRY = ("depth", "input_mode", "base_width", "motion", "temporal", "sme_reduction", "sme_levels", "sme_align",
            "sme_channel_attention", "cti_groups", "ci_mode", "fusion", "tsi_stages", "tsi_blocks")


class InitError(ValueError):
    """--init motion for an arch or geometry without a shipped initialisation."""


def mismatch(cfg: TSIConfig, shipped: dict) -> list[str]:
    """``field ours vs shipped`` for each geometry field that differs."""
    out, defaults = [], {f.name: f.default for f in dataclasses.fields(TSIConfig)}
    for f in GEOMETRY:  # a field a checkpoint predates has its default
        mine, theirs = getattr(cfg, f), shipped.get(f, defaults[f])
        if isinstance(mine, tuple):
            theirs = tuple(theirs) if theirs is not None else None
        if mine != theirs:
            out.append(f"{f} {mine} vs {theirs}")
    return out


def shipped_file(arch: str) -> Path | None:
    """The arch's shipped motion initialisation, None when it has none (or its file is missing)."""
    path = MOTION_INITS.get(arch)
    return path if path is not None and path.is_file() else None


def resolve(choice: str, arch: str, cfg: TSIConfig, *,
            other_init: bool) -> tuple[Path | None, dict | None, str]:
    """(the shipped checkpoint's path and its loaded contents, or None and None; one line saying why)."""
    if choice == "scratch":
        return None, None, "from scratch (--init scratch)"
    path = shipped_file(arch)
    if choice == "motion" and other_init:
        raise InitError("--init motion and --pretrained/--finetune both initialise the model; give one")
    if choice == "auto" and other_init:
        return None, None, "from --pretrained/--finetune"
    if path is None:
        if choice == "motion":
            have = ", ".join(sorted(a for a in MOTION_INITS if shipped_file(a))) or "none"
            raise InitError(f"--init motion: no shipped motion initialisation for {arch} (there is one for: {have})")
        return None, None, f"from scratch (no shipped motion initialisation for {arch})"
    ckpt = load_checkpoint(path)
    diff = mismatch(cfg, ckpt["config"])
    if diff:
        if choice == "motion":
            raise InitError(f"--init motion: the shipped {arch} initialisation has another geometry "
                            f"({'; '.join(diff)}); train with its options or --init scratch")
        return None, None, f"from scratch (the shipped {arch} initialisation has another geometry: {diff[0]})"
    return path, ckpt, f"from the shipped motion initialisation {path.name} (--init {choice}; --init scratch to start from scratch)"
