"""Depthwise temporal convolution (TIM, Liu et al. TEINet), the building block of TIM and CTI.

Causal form (``TSIConfig.causal``): the kernel covers (t-2, t-1, t) instead of (t-1, t, t+1), with
two zero frames padded before the clip start; its shift-like initialisation takes the first C/8
channels from t-1 and the next C/8 from t-2 (the causal shift's choice). The streaming form
(:meth:`TemporalConv.step`) keeps the conv's inputs at t-2 and t-1 as state.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def init_shift_like(weight: torch.Tensor, shift_div: int = 8, causal: bool = False) -> None:
    """TIM/TSM initialisation of a (C, 1, 3, 1) depthwise temporal kernel.

    Cross-correlation: out_t = w[0] x_{t-1} + w[1] x_t + w[2] x_{t+1}. The first C/8 channels copy
    the previous frame ([1, 0, 0]), the next C/8 the next frame ([0, 0, 1]), the rest are identity
    ([0, 1, 0]). With fewer than 8 channels no channel is shifted (C // 8 == 0, as TSM does).

    ``causal``: out_t = w[0] x_{t-2} + w[1] x_{t-1} + w[2] x_t; the first C/8 channels copy t-1
    ([0, 1, 0]), the next C/8 copy t-2 ([1, 0, 0]), the rest are identity ([0, 0, 1]).
    """
    c = weight.shape[0]
    fold = c // shift_div
    with torch.no_grad():
        weight.zero_()
        if causal:
            weight[:fold, 0, 1, 0] = 1.0
            weight[fold : 2 * fold, 0, 0, 0] = 1.0
            weight[2 * fold :, 0, 2, 0] = 1.0
            return
        weight[:fold, 0, 0, 0] = 1.0
        weight[fold : 2 * fold, 0, 2, 0] = 1.0
        weight[2 * fold :, 0, 1, 0] = 1.0


class TemporalConv(nn.Module):
    """Depthwise conv over time (kernel 3, zero padding 1 inside each clip, no bias).

    (N*T, C, H, W) -> (N*T, C, H, W). Implemented as a depthwise Conv2d with a (3, 1) kernel on the
    (N, C, T, H*W) view: a plain 2-D conv for ONNX and TensorRT (no Conv1d/Conv3d needed).
    """

    def __init__(self, channels: int, frames: int, shift_div: int = 8, causal: bool = False):
        super().__init__()
        self.frames = frames
        self.causal = causal
        self.channels = channels
        # causal: no conv padding; two zero frames are padded before the clip start in forward()
        self.conv = nn.Conv2d(channels, channels, (3, 1), padding=(0 if causal else 1, 0),
                              groups=channels, bias=False)
        init_shift_like(self.conv.weight, shift_div, causal)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nt, c, h, w = x.shape
        y = x.view(-1, self.frames, c, h * w).transpose(1, 2)  # (N, C, T, HW)
        if self.causal:
            y = F.pad(y, (0, 0, 2, 0))  # (N, C, T+2, HW): x_{-2} = x_{-1} = 0
        y = self.conv(y)
        return y.transpose(1, 2).reshape(nt, c, h, w)

    def state_shapes(self, h: int, w: int) -> dict[str, tuple[int, ...]]:
        """Streaming state (batch axis excluded): ``past`` = the inputs at t-2 and t-1, (C, 2, H*W)."""
        return {"past": (self.channels, 2, h * w)}

    def step(self, x: torch.Tensor, state: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One frame (N, C, H, W) of the causal conv; returns its output and the new state."""
        if not self.causal:
            raise RuntimeError("TemporalConv.step needs a causal conv (TSIConfig.causal=True)")
        n, c, h, w = x.shape
        seq = torch.cat([state["past"], x.reshape(n, c, 1, h * w)], dim=2)  # (N, C, 3, HW)
        y = self.conv(seq)  # (N, C, 1, HW)
        _, past = seq.split([1, 2], dim=2)
        return y.reshape(n, c, h, w), {"past": past}

    def extra_repr(self) -> str:
        return f"frames={self.frames}, causal={self.causal}"
