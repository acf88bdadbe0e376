"""Checkpoints: weights + config + model card in one file, written atomically, loaded safely.

Layout (a plain dict, loadable with ``torch.load(..., weights_only=True)``)::

    {"format": "tsi-checkpoint", "version": 1, "model": state_dict, "config": TSIConfig dict,
     "card": ModelCard dict, "epoch": int, ... training state (optimizer, scheduler, rng) ...}
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from pathlib import Path
from typing import Any

import torch

from runtime.card import CardError, ModelCard
from runtime.common.files import atomic_write_bytes
from tsi.config import TSIConfig
from tsi.model import TSINet, arch_name

CKPT_FORMAT = "tsi-checkpoint"
CKPT_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, corrupt, or does not match its config or card."""


def make_card(cfg: TSIConfig, labels: list[str] | tuple[str, ...], *, resize_short: int | None = None,
              **extra: Any) -> ModelCard:
    """The card of a model of ``cfg``: T and input size from it; ``resize_short`` defaults to the
    input size x 256/224 (the usual ImageNet ratio); ``extra`` card fields (``span_frames``, ``fps``,
    ...) default to :class:`ModelCard`'s."""
    if len(labels) != cfg.num_classes:
        raise CardError(f"{len(labels)} labels for a model with {cfg.num_classes} classes")
    return ModelCard(arch=arch_name(cfg), labels=tuple(labels), frames=cfg.frames,
                     input_size=cfg.input_size,
                     resize_short=resize_short or round(cfg.input_size * 256 / 224),
                     config=cfg.to_dict(), **extra)


def check_card_matches(card: ModelCard, cfg: TSIConfig, source: str) -> None:
    problems = []
    if card.frames != cfg.frames:
        problems.append(f"card T={card.frames} but model T={cfg.frames}")
    if card.input_size != cfg.input_size:
        problems.append(f"card input_size={card.input_size} but model {cfg.input_size}")
    if card.num_classes != cfg.num_classes:
        problems.append(f"card has {card.num_classes} labels but model {cfg.num_classes} classes")
    if problems:
        raise CheckpointError(f"{source}: model card does not match the model: " + "; ".join(problems))


def save_checkpoint(path: str | os.PathLike, model: TSINet, card: ModelCard, **state: Any) -> Path:
    """Write weights, config, card and any extra training state atomically."""
    check_card_matches(card, model.cfg, str(path))
    payload = {"format": CKPT_FORMAT, "version": CKPT_VERSION,
               "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
               "config": model.cfg.to_dict(), "card": card.to_dict(), **state}
    buf = io.BytesIO()
    torch.save(payload, buf)
    return atomic_write_bytes(Path(path), buf.getvalue())


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load and validate a checkpoint dict (weights_only: no code from the file is run)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    not_zip = not_a_zip_checkpoint(path)
    if not_zip:
        raise CheckpointError(f"{path}: {not_zip}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises several types for corrupt or foreign files
        raise CheckpointError(f"{path}: {why_refused(e)}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CKPT_FORMAT:
        raise CheckpointError(f"{path}: not a TSI checkpoint (no 'format': '{CKPT_FORMAT}' entry)")
    if ckpt.get("version") != CKPT_VERSION:
        raise CheckpointError(f"{path}: checkpoint version {ckpt.get('version')}, expected {CKPT_VERSION}")
    for key in ("model", "config", "card"):
        if key not in ckpt:
            raise CheckpointError(f"{path}: checkpoint has no '{key}' entry")
    return ckpt


_ZIP_MAGIC = b"PK\x03\x04"
_GLOBAL_RE = re.compile(r"GLOBAL ([\w.]+)")


def not_a_zip_checkpoint(path: Path) -> str | None:
    """Why ``path`` cannot be what ``torch.save`` writes (a zip archive), read from its first bytes
    and its zip directory before torch reads it; ``None`` when it may be one."""
    with open(path, "rb") as f:
        head = f.read(4)
    if not head:
        return "empty file, not a checkpoint"
    if head != _ZIP_MAGIC:
        return "not a PyTorch checkpoint (not the zip archive torch.save writes)"
    if not zipfile.is_zipfile(path):
        return "truncated or corrupt checkpoint (its zip archive is incomplete)"
    return None


def why_refused(error: Exception) -> str:
    """What ``torch.load(weights_only=True)`` refused in a zip checkpoint, in a few words: code the
    safe loader will not run, or corrupt content. Never PyTorch's advice to load it unsafely."""
    found = _GLOBAL_RE.search(str(error))
    if found:
        return (f"the checkpoint holds an object the safe loader refuses to run ({found.group(1)}); "
                "a TSI checkpoint holds only tensors and plain values")
    first = re.sub(r"\x1b\[[0-9;]*m", "", str(error)).strip().splitlines()
    return f"corrupt checkpoint ({type(error).__name__}{': ' + first[0][:120] if first else ''})"


def load_model(path: str | os.PathLike, map_location: str | torch.device = "cpu",
               **config_overrides: Any) -> tuple[TSINet, ModelCard]:
    """Build the model from the checkpoint's own config, load its weights strictly, return it in
    eval mode with its card. ``config_overrides`` may change fields that leave the weights'
    shapes alone (e.g. ``attention="matmul"`` for export)."""
    ckpt = load_checkpoint(path, map_location)
    try:
        cfg = TSIConfig.from_dict(ckpt["config"]).replace(**config_overrides)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: bad config in checkpoint: {e}") from None
    try:
        card = ModelCard.from_dict(ckpt["card"], f"{path} (card)")
    except CardError as e:
        raise CheckpointError(str(e)) from None
    check_card_matches(card, cfg, str(path))
    model = TSINet(cfg)
    try:
        model.load_state_dict(ckpt["model"], strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{path}: weights do not match the config's architecture: {e}") from None
    return model.eval(), card
