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

Causal form (``TSIConfig.causal``, for online use): the same pairs, assigned to their later frame,
so frame t sees only frames t-1 and t:
    M_t = sum_k (D_k(Xsa_t) - Xr_{t-1})  with Xsa_t aligned from query Xr_{t-1}, key/value Xr_t
    M_0 = 0                              the first frame has no predecessor: zero motion, as the
                                         offline model gives its last frame
i.e. the offline motion map moved one frame later. The streaming form (:meth:`SME.step`) keeps
Xr_{t-1} as state; a ``primed`` flag (0 on the first frame after a reset, 1 after) zeroes M_0.
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
        causal: bool = False,
    ):
        super().__init__()
        self.causal = causal
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

    def pair_motion(self, cur: torch.Tensor, nxt: torch.Tensor) -> torch.Tensor:
        """Motion of frame pairs (N, P, d, H, W) x2 -> sum_k (D_k(Xsa) - cur), (N, P, d, H, W)."""
        xsa = self.align_pairs(cur, nxt)
        n, t1, d, h, w = xsa.shape
        xsa = xsa.reshape(n * t1, d, h, w)
        dk = self.pyramid[0](xsa)
        total = dk
        for conv in self.pyramid[1:]:
            dk = conv(dk + xsa)
            total = total + dk
        return total.view(n, t1, d, h, w) - len(self.pyramid) * cur  # sum_k (D_k - Xr_t)

    def motion(self, x: torch.Tensor) -> torch.Tensor:
        """The pyramidal motion map M, (N*T, d, H, W), zero for the last frame of each clip
        (causal: zero for the first frame, the pair (t-1, t) at frame t)."""
        xr = self.reduce(x)
        cur, nxt = pair_views(xr, self.frames)
        m = self.pair_motion(cur, nxt)
        n, _, d, h, w = m.shape
        zeros = torch.zeros_like(m[:, :1])
        m = torch.cat([zeros, m] if self.causal else [m, zeros], dim=1)
        return m.view(n * self.frames, d, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.excite(x, self.motion(x))

    def state_shapes(self, h: int, w: int) -> dict[str, tuple[int, ...]]:
        """Streaming state (batch axis excluded): ``prev`` = Xr_{t-1}, (d, H, W)."""
        return {"prev": (self.reduced, h, w)}

    def step(self, x: torch.Tensor, state: dict[str, torch.Tensor],
             primed: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One frame (N, w, H, W) of the causal SME; ``primed`` (N, 1, 1, 1) is 0 on the first frame
        of a stream (zero motion) and 1 after. Returns X_SME and the new state (Xr_t)."""
        if not self.causal:
            raise RuntimeError("SME.step needs a causal SME (TSIConfig.causal=True)")
        xr = self.reduce(x)
        m = self.pair_motion(state["prev"].unsqueeze(1), xr.unsqueeze(1)).squeeze(1)
        return self.excite(x, m * primed), {"prev": xr}

    def excite(self, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """X_SME from X and its motion map M."""
        if self.channel_attention:
            att = torch.sigmoid(self.recover(self.pool(m)))
            return x + x * att
        return x + self.recover(m)

    def extra_repr(self) -> str:
        return (
            f"frames={self.frames}, d={self.reduced}, K={len(self.pyramid)}, align={self.align}, "
            f"channel_attention={self.channel_attention}, attention={self.attention}"
        )
