"""Partial BatchNorm (TSN, Wang et al. 2016, Sec. 3.2): when fine-tuning a pretrained model on a
small dataset, every BatchNorm layer but the first keeps the statistics and the affine parameters
it was pretrained with; only the first adapts to the new data's input distribution. It is the
TSN/TSM codebases' default for fine-tuning, against the over-fitting that re-estimating every
layer's statistics from a few hundred clips at batch 8 invites.

    freeze_norms(model)      # once, before the optimiser is built
"""

from __future__ import annotations

from torch import nn

__all__ = ["freeze_norms", "in_eval"]


def in_eval(module: nn.Module, _args) -> None:
    """A forward pre-hook: ``module`` runs in eval mode whatever ``model.train()`` set (a frozen
    BatchNorm uses and keeps its running statistics; also tsi.qat's)."""
    module.training = False


def freeze_norms(model: nn.Module) -> list[nn.Module]:
    """Freezes every BatchNorm layer of ``model`` but the first (in module order: the stem's): its
    affine parameters no longer train and it runs in eval mode (:func:`in_eval`). Returns them."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in norms[1:]:
        for p in (m.weight, m.bias):
            if p is not None:
                p.requires_grad_(False)
        m.register_forward_pre_hook(in_eval)
    return norms[1:]
