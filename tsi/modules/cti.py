"""Cross-perception Temporal Integration (Sec. 3.3, Eq. 7-9).

Channels split into G groups X_1..X_G (w/G each):
    T_1 = X_1,  T_2 = TConv_2(X_2),  T_g = TConv_g(CI(T_{g-1}, X_g))  for g >= 3
    CI:  alpha = softmax over 2 branches (FC(GAP(T_{g-1} + X_g))),   per frame and channel
         CI = alpha * X_g + (1 - alpha) * T_{g-1}
Ablations (Table 4d): ``ci_mode="independent"`` (T_g = TConv_g(X_g)), ``"addition"``
(T_g = TConv_g(T_{g-1} + X_g), Res2Net/TEA style). No Python loop over frames: the group loop is a
static unrolled chain of G - 1 steps.

Causal form (``TSIConfig.causal``): every TConv is the causal temporal conv (t-2, t-1, t); CI is per
frame and needs no change. The streaming form (:meth:`CTI.step`) carries one TConv state per group.
"""

from __future__ import annotations

import torch
from torch import nn

from tsi.modules.tim import TemporalConv


class CrossPerception(nn.Module):
    """alpha = softmax(FC(GAP(prev + x))) over two branches; returns alpha*x + (1-alpha)*prev."""

    def __init__(self, channels: int):
        super().__init__()
        self.channels = channels
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, 2 * channels)

    def forward(self, prev: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        pooled = self.pool(prev + x).flatten(1)  # (N*T, c)
        logits = self.fc(pooled).view(-1, 2, self.channels)
        alpha = torch.softmax(logits, dim=1)[:, 0].reshape(-1, self.channels, 1, 1)
        return alpha * x + (1.0 - alpha) * prev


class CTI(nn.Module):
    def __init__(self, channels: int, frames: int, groups: int = 4, ci_mode: str = "cross",
                 shift_div: int = 8, causal: bool = False):
        super().__init__()
        if channels % groups:
            raise ValueError(f"CTI: {channels} channels do not split into {groups} groups")
        if ci_mode not in ("cross", "independent", "addition"):
            raise ValueError(f"ci_mode must be cross, independent or addition (got {ci_mode!r})")
        self.groups = groups
        self.ci_mode = ci_mode
        c = channels // groups
        self.group_channels = c
        # TConv_2 .. TConv_G (group 1 passes through)
        self.tconvs = nn.ModuleList(TemporalConv(c, frames, shift_div, causal) for _ in range(groups - 1))
        # CI for groups 3 .. G
        self.ci = nn.ModuleList(
            CrossPerception(c) for _ in range(groups - 2 if ci_mode == "cross" else 0)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x, lambda g, xg: self.tconvs[g - 1](xg))

    def _run(self, x: torch.Tensor, tconv) -> torch.Tensor:
        """The group chain with ``tconv(g, input)`` as TConv_g (g = 1..G-1, 0-based group index)."""
        xs = x.split(self.group_channels, dim=1)
        outs = [xs[0], tconv(1, xs[1])]
        for g in range(2, self.groups):
            prev, xg = outs[-1], xs[g]
            if self.ci_mode == "cross":
                xg = self.ci[g - 2](prev, xg)
            elif self.ci_mode == "addition":
                xg = prev + xg
            outs.append(tconv(g, xg))
        return torch.cat(outs, dim=1)

    def state_shapes(self, h: int, w: int) -> dict[str, tuple[int, ...]]:
        """Streaming state (batch axis excluded): ``g<k>`` = TConv_k's past two inputs, k = 2..G."""
        return {f"g{g + 1}": self.tconvs[g - 1].state_shapes(h, w)["past"] for g in range(1, self.groups)}

    def step(self, x: torch.Tensor, state: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One frame (N, w, H, W) of the causal CTI; returns its output and the new state."""
        new: dict[str, torch.Tensor] = {}

        def tconv(g: int, xg: torch.Tensor) -> torch.Tensor:
            y, s = self.tconvs[g - 1].step(xg, {"past": state[f"g{g + 1}"]})
            new[f"g{g + 1}"] = s["past"]
            return y

        return self._run(x, tconv), new

    def extra_repr(self) -> str:
        return f"groups={self.groups}, ci_mode={self.ci_mode}"
