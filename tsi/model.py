"""TSI-family video networks and their builders (timm style: a plain dict of functions)."""

from __future__ import annotations

import os
from typing import Any, Callable

import torch
from torch import nn

from tsi.backbone import ResNet
from tsi.config import TSIConfig
from tsi.pretrained import load_pretrained


class TSINet(nn.Module):
    """(N, T, 3, H, W) clip -> (N, num_classes) logits.

    The clip is folded once to (N*T, 3, H, W); the head is dropout + a per-frame FC, averaged over
    T (TSN consensus).
    """

    def __init__(self, cfg: TSIConfig):
        super().__init__()
        self.cfg = cfg
        self.backbone = ResNet(cfg)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(cfg.dropout)
        self.fc = nn.Linear(self.backbone.out_channels, cfg.num_classes)
        nn.init.normal_(self.fc.weight, std=0.001)
        nn.init.zeros_(self.fc.bias)

    def check_input(self, x: torch.Tensor) -> None:
        t = self.cfg.frames
        if x.dim() != 5 or x.shape[1] != t or x.shape[2] != 3:
            raise ValueError(
                f"expected a clip of shape (N, {t}, 3, H, W) (T={t} frames, from the config), "
                f"got {tuple(x.shape)}"
            )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        if self.cfg.input_mode == "diff":
            x = frame_differences(x)
        return self.backbone(x.flatten(0, 1))

    def forward_head(self, feats: torch.Tensor) -> torch.Tensor:
        y = self.dropout(self.pool(feats).flatten(1))
        return self.fc(y).view(-1, self.cfg.frames, self.cfg.num_classes).mean(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def frame_differences(x: torch.Tensor) -> torch.Tensor:
    """(N, T, C, H, W) -> each frame less the one before; the first frame takes the second's
    (TSN's RGB difference between the clip's sampled frames: what moved, not what is there)."""
    d = x[:, 1:] - x[:, :-1]
    return torch.cat([d[:, :1], d], dim=1)


def view_probabilities(model: nn.Module, clips: torch.Tensor) -> torch.Tensor:
    """Class probabilities of (N, T, 3, H, W) clips, or of (N, views, T, 3, H, W) multi-view clips
    with the views' softmax scores averaged (the 30-view protocol)."""
    if clips.dim() == 6:
        n, v = clips.shape[:2]
        return model(clips.flatten(0, 1)).softmax(-1).view(n, v, -1).mean(1)
    return model(clips).softmax(-1)


# -- builders ------------------------------------------------------------------------------------
FAMILIES: dict[str, dict[str, Any]] = {
    "tsn": dict(motion="none", temporal="none"),
    "tsm": dict(motion="none", temporal="tsm"),
    "tim": dict(motion="none", temporal="tim"),
    "tim_me": dict(motion="me", temporal="tim"),
    "cti": dict(motion="none", temporal="cti"),
    "sme_tim": dict(motion="sme", temporal="tim"),
    "tsi": dict(motion="sme", temporal="cti"),
}


def _builder(family: str, depth: int) -> Callable[..., TSINet]:
    def build(**fields: Any) -> TSINet:
        """Fields not given (``frames``, ``num_classes``, ``input_size``, ...) take TSIConfig's defaults."""
        return TSINet(TSIConfig(depth=depth, **{**FAMILIES[family], **fields}))

    build.__name__ = f"{family}_r{depth}"
    build.__doc__ = f"{family.upper()} on ResNet-{depth} ({FAMILIES[family]})."
    return build


MODELS: dict[str, Callable[..., TSINet]] = {
    f"{family}_r{depth}": _builder(family, depth)
    for family in FAMILIES
    for depth in (18, 34, 50, 101)
}
globals().update(MODELS)  # tsi.model.tsi_r50, tsi.model.tsn_r18, ...


def create_model(name: str, *, pretrained: str | os.PathLike | None = None, **kwargs: Any) -> TSINet:
    """Build ``name`` (e.g. ``tsi_r50``) with config overrides ``kwargs``; ``pretrained``: an ImageNet
    ResNet weights file (torchvision / timm, see :mod:`tsi.pretrained`) for the backbone."""
    try:
        builder = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(sorted(MODELS))}") from None
    model = builder(**kwargs)
    if pretrained is not None:
        load_pretrained(model, pretrained)
    return model


def arch_name(cfg: TSIConfig) -> str:
    """The builder name of a config's family, e.g. 'tsi_r50' (or 'custom_r50' for ablations)."""
    for family, fields in FAMILIES.items():
        if all(getattr(cfg, k) == v for k, v in fields.items()):
            return f"{family}_r{cfg.depth}"
    return f"custom_r{cfg.depth}"
