"""TEA-style Motion Excitation (Li et al., TEA), the TIM+ME baseline of Table 4a.

Like SME with K = 1 and no saliency alignment: M_t = conv(Xr_{t+1}) - Xr_t, M_{T-1} = 0,
Att = sigmoid(BN(conv1x1(GAP(M)))), X + X * Att.
"""

from __future__ import annotations

from tsi.modules.sme import SME


class ME(SME):
    def __init__(self, channels: int, frames: int, reduction: int = 16, causal: bool = False):
        super().__init__(channels, frames, reduction=reduction, levels=1, align="none",
                         channel_attention=True, causal=causal)
