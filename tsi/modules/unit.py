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
                   attention=cfg.attention, causal=cfg.causal)
    if cfg.motion == "me":
        return ME(width, cfg.frames, reduction=cfg.sme_reduction, causal=cfg.causal)
    return None


def build_temporal(cfg: TSIConfig, width: int) -> nn.Module | None:
    if cfg.temporal == "cti":
        return CTI(width, cfg.frames, groups=cfg.cti_groups, ci_mode=cfg.ci_mode,
                   shift_div=cfg.shift_div, causal=cfg.causal)
    if cfg.temporal == "tim":
        return TemporalConv(width, cfg.frames, cfg.shift_div, cfg.causal)
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

    def state_shapes(self, h: int, w: int) -> dict[str, tuple[int, ...]]:
        """Streaming state of the causal unit at resolution (h, w), batch axis excluded:
        ``motion.<key>`` and ``temporal.<key>`` (see SME/CTI/TemporalConv.state_shapes)."""
        shapes = {}
        for part in ("motion", "temporal"):
            mod = getattr(self, part)
            if mod is not None:
                shapes.update({f"{part}.{k}": v for k, v in mod.state_shapes(h, w).items()})
        return shapes

    def step(self, x: torch.Tensor, state: dict[str, torch.Tensor],
             primed: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One frame of the causal unit (same fusion as :meth:`forward`); returns output, new state."""
        new: dict[str, torch.Tensor] = {}

        def run(part: str, inp: torch.Tensor) -> torch.Tensor:
            mod = getattr(self, part)
            sub = {k.split(".", 1)[1]: v for k, v in state.items() if k.startswith(part + ".")}
            out, s = mod.step(inp, sub, primed) if part == "motion" else mod.step(inp, sub)
            new.update({f"{part}.{k}": v for k, v in s.items()})
            return out

        if self.fusion == "cascade":
            if self.motion is not None:
                x = run("motion", x)
            if self.temporal is not None:
                x = run("temporal", x)
            return x, new
        m, t = run("motion", x), run("temporal", x)
        return (m + t if self.fusion == "summation" else torch.cat([m, t], dim=1)), new

    def extra_repr(self) -> str:
        return f"fusion={self.fusion}"
