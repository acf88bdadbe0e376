"""The SME-CTI cube of a TSI block: motion and temporal modules and how they are fused (Table 4d).

Placed between the 3x3 conv and the last 1x1 conv of a bottleneck, at width w:
- cascade:        CTI(SME(x))                     (the paper's choice)
- summation:      SME(x) + CTI(x)                 (parallel, shared input)
- concatenation:  cat(SME(x), CTI(x)) on channels (the last 1x1 conv then takes 2w)
"""

from __future__ import annotations

import torch
from torch import nn

from tsi.config import TSIConfig
from tsi.modules.cti import CTI
from tsi.modules.me import ME
from tsi.modules.sme import SME
from tsi.modules.tim import TemporalConv


def build_motion(cfg: TSIConfig, width: int) -> nn.Module | None:
    if cfg.motion == "sme":
        return SME(width, cfg.frames, reduction=cfg.sme_reduction, levels=cfg.sme_levels,
                   align=cfg.sme_align, channel_attention=cfg.sme_channel_attention,
                   attention=cfg.attention)
    if cfg.motion == "me":
        return ME(width, cfg.frames, reduction=cfg.sme_reduction)
    return None


def build_temporal(cfg: TSIConfig, width: int) -> nn.Module | None:
    if cfg.temporal == "cti":
        return CTI(width, cfg.frames, groups=cfg.cti_groups, ci_mode=cfg.ci_mode,
                   shift_div=cfg.shift_div)
    if cfg.temporal == "tim":
        return TemporalConv(width, cfg.frames, cfg.shift_div)
    return None  # "tsm" is a shift at the block input, "none" is nothing


class TemporalUnit(nn.Module):
    def __init__(self, cfg: TSIConfig, width: int):
        super().__init__()
        self.fusion = cfg.fusion
        self.motion = build_motion(cfg, width)
        self.temporal = build_temporal(cfg, width)
        self.out_channels = 2 * width if cfg.fusion == "concatenation" else width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fusion == "cascade":
            if self.motion is not None:
                x = self.motion(x)
            if self.temporal is not None:
                x = self.temporal(x)
            return x
        m, t = self.motion(x), self.temporal(x)
        if self.fusion == "summation":
            return m + t
        return torch.cat([m, t], dim=1)

    def extra_repr(self) -> str:
        return f"fusion={self.fusion}"
