"""ResNet-18/34/50/101 written in the project (no torchvision), with TSI blocks.

Frames are folded into the batch: every tensor is (N*T, C, H, W); the temporal modules unfold it
with the static T of the config. Strides sit on the 3x3 conv (ResNet v1.5).
"""

from __future__ import annotations

import torch
from torch import nn

from tsi.config import TSIConfig
from tsi.modules.shift import TemporalShift
from tsi.modules.unit import TemporalUnit

STAGE_BLOCKS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}


def conv_bn(cin: int, cout: int, k: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False), nn.BatchNorm2d(cout)]


class Block(nn.Module):
    """Bottleneck (expansion 4) or basic block (expansion 1) with an optional temporal unit.

    Bottleneck: 1x1 -> 3x3 (stride) -> [SME, CTI] -> 1x1 (x4), + shortcut, ReLU.
    Basic:      3x3 (stride) -> [SME, CTI] -> 3x3, + shortcut, ReLU.
    TSM's shift, when used, is applied to the residual branch's input.
    """

    def __init__(self, cin: int, width: int, stride: int, bottleneck: bool,
                 cfg: TSIConfig | None):
        super().__init__()
        self.expansion = 4 if bottleneck else 1
        self.in_channels, self.stride = cin, stride
        cout = width * self.expansion
        self.shift = (TemporalShift(cfg.frames, cfg.shift_div, cfg.causal)
                      if cfg is not None and cfg.temporal == "tsm" else None)
        self.unit = TemporalUnit(cfg, width) if cfg is not None and cfg.has_block_modules else None
        mid = self.unit.out_channels if self.unit is not None else width
        if bottleneck:
            self.head = nn.Sequential(*conv_bn(cin, width, 1), nn.ReLU(inplace=True),
                                      *conv_bn(width, width, 3, stride), nn.ReLU(inplace=True))
            self.tail = nn.Sequential(*conv_bn(mid, cout, 1))
        else:
            self.head = nn.Sequential(*conv_bn(cin, width, 3, stride), nn.ReLU(inplace=True))
            self.tail = nn.Sequential(*conv_bn(mid, cout, 3))
        self.shortcut = (nn.Sequential(*conv_bn(cin, cout, 1, stride))
                         if stride != 1 or cin != cout else nn.Identity())
        self.relu = nn.ReLU(inplace=True)

    @property
    def is_temporal(self) -> bool:
        return self.shift is not None or self.unit is not None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.shift(x) if self.shift is not None else x
        y = self.head(y)
        if self.unit is not None:
            y = self.unit(y)
        y = self.tail(y)
        return self.relu(y + self.shortcut(x))

    def out_size(self, size: int) -> int:
        """Spatial size after this block (and at its temporal unit) for an input of ``size``."""
        return (size - 1) // self.stride + 1

    def state_shapes(self, size: int) -> dict[str, tuple[int, ...]]:
        """Streaming state of the causal block for a (size x size) input, batch axis excluded:
        ``shift.<key>`` at the block input, ``unit.<key>`` at the 3x3 conv's output."""
        shapes = {}
        if self.shift is not None:
            shapes.update({f"shift.{k}": v for k, v in
                           self.shift.state_shapes(self.in_channels, size, size).items()})
        if self.unit is not None:
            s = self.out_size(size)
            shapes.update({f"unit.{k}": v for k, v in self.unit.state_shapes(s, s).items()})
        return shapes

    def step(self, x: torch.Tensor, state: dict[str, torch.Tensor],
             primed: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One frame (N, C, H, W) of the causal block; returns its output and the new state."""
        new: dict[str, torch.Tensor] = {}

        def sub(part: str) -> dict[str, torch.Tensor]:
            return {k.split(".", 1)[1]: v for k, v in state.items() if k.startswith(part + ".")}

        y = x
        if self.shift is not None:
            y, s = self.shift.step(x, sub("shift"))
            new.update({f"shift.{k}": v for k, v in s.items()})
        y = self.head(y)
        if self.unit is not None:
            y, s = self.unit.step(y, sub("unit"), primed)
            new.update({f"unit.{k}": v for k, v in s.items()})
        y = self.tail(y)
        return self.relu(y + self.shortcut(x)), new


class ResNet(nn.Module):
    def __init__(self, cfg: TSIConfig):
        super().__init__()
        self.cfg = cfg
        bottleneck = cfg.depth >= 50
        base = cfg.base_width
        self.stem = nn.Sequential(*conv_bn(3, base, 7, 2), nn.ReLU(inplace=True),
                                  nn.MaxPool2d(3, stride=2, padding=1))
        cin = base
        stages = []
        for i, n_blocks in enumerate(STAGE_BLOCKS[cfg.depth]):
            stage_id = i + 2  # the paper's Stage2..Stage5
            width = base * 2**i
            blocks = []
            for b in range(n_blocks):
                temporal = stage_id in cfg.tsi_stages and (cfg.tsi_blocks == "all" or b == 0)
                blk = Block(cin, width, 2 if (b == 0 and i > 0) else 1, bottleneck,
                            cfg if temporal else None)
                blocks.append(blk)
                cin = width * blk.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.out_channels = cin
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d) and m.groups == 1:
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        # zero-init the last BN of each residual branch: every block starts as an identity,
        # which trains from scratch far more stably (Goyal et al. 2017).
        for blk in self.modules():
            if isinstance(blk, Block) and self.cfg.zero_init_residual:
                nn.init.zeros_(blk.tail[-1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))
