"""Salient Motion Excitation (Sec. 3.2, Eq. 1-6), as pinned down in tsi-spec.md.

    Xr   = BN(conv1x1(X))                      w -> d = w / r
    S_t  = softmax(Xr_t Xr_{t+1}^T / sqrt d) Xr_{t+1}      all pairs t = 0..T-2 at once
    Xsa  = Xr_{t+1} * S_t     (alignment "mul"; "add": Xr_{t+1} + S_t; "none": Xr_{t+1})
    D_1  = conv_1(Xsa),  D_k = conv_k(D_{k-1} + Xsa)        K depthwise 3x3 convs
    M_t  = sum_k (D_k - Xr_t),  M_{T-1} = 0                 the last frame has no successor
    Att  = sigmoid(BN(conv1x1 d -> w)(GAP(M)))
    X_SME = X + X * Att

With channel attention off (Table 4b "w/o CA") the recovered motion map is added instead:
X_SME = X + BN(conv1x1(M)) — the paper does not say what replaces it; this keeps the motion path.
"""

from __future__ import annotations

import torch
from torch import nn

from tsi.modules.attention import ATTENTION_IMPLS


def pair_views(xr: torch.Tensor, frames: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(N*T, d, H, W) -> (current frames 0..T-2, next frames 1..T-1), each (N, T-1, d, H, W).

    Split, not indexing with a shifted range, so the export sees two static Split outputs.
    """
    nt, d, h, w = xr.shape
    x5 = xr.view(-1, frames, d, h, w)
    cur, _ = x5.split([frames - 1, 1], dim=1)
    _, nxt = x5.split([1, frames - 1], dim=1)
    return cur, nxt


def to_sequence(x5: torch.Tensor) -> torch.Tensor:
    """(N, T', d, H, W) -> (N*T', H*W, d): one attention 'batch' per frame pair."""
    n, t, d, h, w = x5.shape
    return x5.reshape(n * t, d, h * w).transpose(1, 2)


def from_sequence(seq: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    n, t, d, h, w = like.shape
    return seq.transpose(1, 2).reshape(n, t, d, h, w)


class SME(nn.Module):
    def __init__(
        self,
        channels: int,
        frames: int,
        reduction: int = 16,
        levels: int = 4,
        align: str = "mul",
        channel_attention: bool = True,
        attention: str = "sdpa",
    ):
        super().__init__()
        if align not in ("mul", "add", "none"):
            raise ValueError(f"align must be mul, add or none (got {align!r})")
        self.frames = frames
        self.align = align
        self.channel_attention = channel_attention
        self.attention = attention
        self._attend = ATTENTION_IMPLS[attention]
        d = max(1, channels // reduction)
        self.reduced = d
        self.reduce = nn.Sequential(nn.Conv2d(channels, d, 1, bias=False), nn.BatchNorm2d(d))
        self.pyramid = nn.ModuleList(
            nn.Conv2d(d, d, 3, padding=1, groups=d, bias=False) for _ in range(levels)
        )
        self.recover = nn.Sequential(nn.Conv2d(d, channels, 1, bias=False), nn.BatchNorm2d(channels))
        self.pool = nn.AdaptiveAvgPool2d(1)

    def align_pairs(self, cur: torch.Tensor, nxt: torch.Tensor) -> torch.Tensor:
        """Saliency alignment of every next frame to its current frame: returns Xsa (N, T-1, d, H, W)."""
        if self.align == "none":
            return nxt
        kv = to_sequence(nxt)
        s = from_sequence(self._attend(to_sequence(cur), kv, kv), nxt)
        return nxt * s if self.align == "mul" else nxt + s

    def motion(self, x: torch.Tensor) -> torch.Tensor:
        """The pyramidal motion map M, (N*T, d, H, W), zero for the last frame of each clip."""
        xr = self.reduce(x)
        cur, nxt = pair_views(xr, self.frames)
        xsa = self.align_pairs(cur, nxt)
        n, t1, d, h, w = xsa.shape
        xsa = xsa.reshape(n * t1, d, h, w)
        dk = self.pyramid[0](xsa)
        total = dk
        for conv in self.pyramid[1:]:
            dk = conv(dk + xsa)
            total = total + dk
        m = total.view(n, t1, d, h, w) - len(self.pyramid) * cur  # sum_k (D_k - Xr_t)
        m = torch.cat([m, torch.zeros_like(m[:, :1])], dim=1)
        return m.view(n * self.frames, d, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.motion(x)
        if self.channel_attention:
            att = torch.sigmoid(self.recover(self.pool(m)))
            return x + x * att
        return x + self.recover(m)

    def extra_repr(self) -> str:
        return (
            f"frames={self.frames}, d={self.reduced}, K={len(self.pyramid)}, align={self.align}, "
            f"channel_attention={self.channel_attention}, attention={self.attention}"
        )
