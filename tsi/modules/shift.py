"""TSM's temporal shift (Lin et al.), written for export.

The shift is built from split + cat + zero pad, never slice assignment or ``torch.roll``: a slice
assignment froze into a constant in TSM's own ONNX/TensorRT exports (TSM issues #77, #103, #181).

Causal form (``TSIConfig.causal``, for online use): no channel may come from the future, so the
block that the offline shift takes from t+1 is taken from t-2 instead, and the block from t-1 stays:
1/shift_div of the channels from t-2, 1/shift_div from t-1, the rest from t (missing frames before
the clip start are zero). TSM's online demo shifts only 1/8 from t-1; taking the second 1/8 from t-2
keeps the same number of shifted channels as the offline model. The streaming form
(:meth:`TemporalShift.step`) keeps the shifted channels of the last two frames as state.
"""

from __future__ import annotations

import torch
from torch import nn


def temporal_shift(x: torch.Tensor, frames: int, shift_div: int = 8, causal: bool = False) -> torch.Tensor:
    """Shift 1/shift_div of the channels one frame back in time, 1/shift_div forward, rest as is.

    ``x`` is (N*T, C, H, W). Channel block 0 takes its value from the next frame (t+1), block 1
    from the previous frame (t-1); missing neighbours at the clip ends are zero. ``causal``: block 0
    takes its value from t-2 instead of t+1.
    """
    nt, c, h, w = x.shape
    fold = c // shift_div
    if fold == 0:
        return x
    x = x.view(-1, frames, c, h, w)
    block0, from_prev, keep = x.split([fold, fold, c - 2 * fold], dim=2)
    zeros = torch.zeros_like(block0[:, :1])
    if causal:
        # t <- t-2: two zero frames at the start, drop the last two frames
        if frames > 2:
            block0 = torch.cat([zeros, zeros, block0.split([frames - 2, 2], dim=1)[0]], dim=1)
        else:
            block0 = torch.zeros_like(block0)
    else:
        # t <- t+1: drop the first frame, pad a zero frame at the end
        block0 = torch.cat([block0[:, 1:], zeros], dim=1)
    # t <- t-1: pad a zero frame at the start, drop the last frame
    from_prev = torch.cat([zeros, from_prev[:, :-1]], dim=1)
    return torch.cat([block0, from_prev, keep], dim=2).view(nt, c, h, w)


class TemporalShift(nn.Module):
    def __init__(self, frames: int, shift_div: int = 8, causal: bool = False):
        super().__init__()
        self.frames = frames
        self.shift_div = shift_div
        self.causal = causal

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return temporal_shift(x, self.frames, self.shift_div, self.causal)

    def state_shapes(self, channels: int, h: int, w: int) -> dict[str, tuple[int, ...]]:
        """Streaming state for one frame (batch axis excluded): ``prev1`` = channel blocks 0 and 1
        of frame t-1, ``prev2`` = channel block 0 of frame t-2."""
        fold = channels // self.shift_div
        if fold == 0:
            return {}
        return {"prev1": (2 * fold, h, w), "prev2": (fold, h, w)}

    def step(self, x: torch.Tensor, state: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One frame (N, C, H, W) of the causal shift; returns the shifted frame and the new state."""
        if not self.causal:
            raise RuntimeError("TemporalShift.step needs a causal shift (TSIConfig.causal=True)")
        c = x.shape[1]
        fold = c // self.shift_div
        if fold == 0:
            return x, state
        prev1, prev2 = state["prev1"], state["prev2"]
        blocks_t, keep = x.split([2 * fold, c - 2 * fold], dim=1)
        prev1_b0, prev1_b1 = prev1.split([fold, fold], dim=1)
        out = torch.cat([prev2, prev1_b1, keep], dim=1)
        return out, {"prev1": blocks_t, "prev2": prev1_b0}

    def extra_repr(self) -> str:
        return f"frames={self.frames}, shift_div={self.shift_div}, causal={self.causal}"
