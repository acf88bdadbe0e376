"""TSM's temporal shift (Lin et al.), written for export.

The shift is built from split + cat + zero pad, never slice assignment or ``torch.roll``: a slice
assignment froze into a constant in TSM's own ONNX/TensorRT exports (TSM issues #77, #103, #181).
"""

from __future__ import annotations

import torch
from torch import nn


def temporal_shift(x: torch.Tensor, frames: int, shift_div: int = 8) -> torch.Tensor:
    """Shift 1/shift_div of the channels one frame back in time, 1/shift_div forward, rest as is.

    ``x`` is (N*T, C, H, W). Channel block 0 takes its value from the next frame (t+1), block 1
    from the previous frame (t-1); missing neighbours at the clip ends are zero.
    """
    nt, c, h, w = x.shape
    fold = c // shift_div
    if fold == 0:
        return x
    x = x.view(-1, frames, c, h, w)
    from_next, from_prev, keep = x.split([fold, fold, c - 2 * fold], dim=2)
    zeros = torch.zeros_like(from_next[:, :1])
    # t <- t+1: drop the first frame, pad a zero frame at the end
    from_next = torch.cat([from_next[:, 1:], zeros], dim=1)
    # t <- t-1: pad a zero frame at the start, drop the last frame
    from_prev = torch.cat([zeros, from_prev[:, :-1]], dim=1)
    return torch.cat([from_next, from_prev, keep], dim=2).view(nt, c, h, w)


class TemporalShift(nn.Module):
    def __init__(self, frames: int, shift_div: int = 8):
        super().__init__()
        self.frames = frames
        self.shift_div = shift_div

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return temporal_shift(x, self.frames, self.shift_div)

    def extra_repr(self) -> str:
        return f"frames={self.frames}, shift_div={self.shift_div}"
