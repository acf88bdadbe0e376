"""The demo model's geometry, read once from the card inside the shipped demo checkpoint
(``tsi.assets.DEMO_CHECKPOINT``): the studies default to it (T, input size, short side, span, width,
classes) instead of restating those numbers, so a new demo model moves them all."""

from __future__ import annotations

from functools import cache

from runtime.card import ModelCard


@cache
def demo_card() -> ModelCard:
    """The demo checkpoint's model card (its ``config`` is the model's ``TSIConfig`` as a dict)."""
    from tsi.assets import DEMO_CHECKPOINT
    from tsi.checkpoint import load_checkpoint

    return ModelCard.from_dict(load_checkpoint(DEMO_CHECKPOINT)["card"], f"{DEMO_CHECKPOINT} (card)")


def demo_config():
    """The demo model's ``tsi.config.TSIConfig`` (base width, SME reduction, attention, ...)."""
    from tsi.config import TSIConfig

    return TSIConfig.from_dict(demo_card().config)
