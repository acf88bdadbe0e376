"""Depthwise temporal convolution (TIM, Liu et al. TEINet), the building block of TIM and CTI."""

from __future__ import annotations

import torch
from torch import nn


def init_shift_like(weight: torch.Tensor, shift_div: int = 8) -> None:
    """TIM/TSM initialisation of a (C, 1, 3, 1) depthwise temporal kernel.

    Cross-correlation: out_t = w[0] x_{t-1} + w[1] x_t + w[2] x_{t+1}. The first C/8 channels copy
    the previous frame ([1, 0, 0]), the next C/8 the next frame ([0, 0, 1]), the rest are identity
    ([0, 1, 0]). With fewer than 8 channels no channel is shifted (C // 8 == 0, as TSM does).
    """
    c = weight.shape[0]
    fold = c // shift_div
    with torch.no_grad():
        weight.zero_()
        weight[:fold, 0, 0, 0] = 1.0
        weight[fold : 2 * fold, 0, 2, 0] = 1.0
        weight[2 * fold :, 0, 1, 0] = 1.0


class TemporalConv(nn.Module):
    """Depthwise conv over time (kernel 3, zero padding 1 inside each clip, no bias).

    (N*T, C, H, W) -> (N*T, C, H, W). Implemented as a depthwise Conv2d with a (3, 1) kernel on the
    (N, C, T, H*W) view: a plain 2-D conv for ONNX and TensorRT (no Conv1d/Conv3d needed).
    """

    def __init__(self, channels: int, frames: int, shift_div: int = 8):
        super().__init__()
        self.frames = frames
        self.conv = nn.Conv2d(channels, channels, (3, 1), padding=(1, 0), groups=channels, bias=False)
        init_shift_like(self.conv.weight, shift_div)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nt, c, h, w = x.shape
        y = x.view(-1, self.frames, c, h * w).transpose(1, 2)  # (N, C, T, HW)
        y = self.conv(y)
        return y.transpose(1, 2).reshape(nt, c, h, w)
