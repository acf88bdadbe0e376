"""Partial BatchNorm (TSN, Wang et al. 2016, Sec. 3.2): when fine-tuning a pretrained model on a
small dataset, every BatchNorm layer but the first keeps the statistics and the affine parameters
it was pretrained with; only the first adapts to the new data's input distribution. It is the
TSN/TSM codebases' default for fine-tuning, against the over-fitting that re-estimating every
layer's statistics from a few hundred clips at batch 8 invites.

    frozen = freeze_norms(model)      # once, before the optimiser is built
    model.train(); hold(frozen)       # after every model.train()
"""

from __future__ import annotations

from torch import nn

__all__ = ["freeze_norms", "hold"]


def freeze_norms(model: nn.Module) -> list[nn.Module]:
    """Freezes the affine parameters of every BatchNorm layer of ``model`` but the first (in
    module order: the stem's) and returns those layers, for :func:`hold`."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in norms[1:]:
        for p in (m.weight, m.bias):
            if p is not None:
                p.requires_grad_(False)
    return norms[1:]


def hold(frozen: list[nn.Module]) -> None:
    """Puts ``frozen`` in eval mode, so training uses and keeps their pretrained statistics."""
    for m in frozen:
        m.eval()
