"""The export-friendly model: a checkpoint loaded with the explicit MatMul-Softmax-MatMul attention,
BatchNorm folded into the preceding convolution, eval mode, static T (from the checkpoint's config).

Folding BN here (rather than leaving it to TensorRT) keeps the standard ONNX, the Q/DQ ONNX and the
calibration cache on one set of tensors: the conv outputs that are calibrated are the tensors the
engine computes. A test proves folded == unfolded to 1e-5.
"""

from __future__ import annotations

import logging
import os

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from runtime.card import ModelCard
from tsi.checkpoint import load_model
from tsi.model import TSINet

log = logging.getLogger(__name__)


def fold_batchnorms(model: nn.Module) -> int:
    """Fold every ``BatchNorm2d`` that directly follows a ``Conv2d`` inside an ``nn.Sequential`` into
    that conv (the BN becomes ``nn.Identity``). The model must be in eval mode (running statistics).
    Returns how many were folded; raises if a BatchNorm2d is left unfolded (the graph would then
    carry BatchNormalization nodes the calibration does not expect)."""
    if model.training:
        raise ValueError("fold_batchnorms needs a model in eval mode (it folds running statistics)")
    folded = 0
    for seq in model.modules():
        if not isinstance(seq, nn.Sequential):
            continue
        names = list(seq._modules)
        for a, b in zip(names, names[1:]):
            conv, bn = seq._modules[a], seq._modules[b]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                seq._modules[a] = fuse_conv_bn_eval(conv, bn)
                seq._modules[b] = nn.Identity()
                folded += 1
    left = [name for name, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if left:
        raise ValueError(f"{len(left)} BatchNorm layer(s) not preceded by a Conv2d in a Sequential: "
                         f"{', '.join(left[:5])}")
    return folded


def export_friendly_model(checkpoint: str | os.PathLike, *, fold_bn: bool = True) -> tuple[TSINet, ModelCard]:
    """Load ``checkpoint`` for export: ``attention="matmul"``, eval mode, BN folded, no gradients.

    Raises ``tsi.checkpoint.CheckpointError`` for a missing/corrupt checkpoint or a card that does
    not match the model.
    """
    model, card = load_model(checkpoint, attention="matmul")
    model.eval()
    if fold_bn:
        n = fold_batchnorms(model)
        log.debug("folded %d BatchNorm2d layers into their convs", n)
    for p in model.parameters():
        p.requires_grad_(False)
    return model, card


def count_sme_modules(model: TSINet) -> int:
    """Saliency-attention subgraphs the exported graph holds: one MatMul-Softmax-MatMul per SME
    module whose attention is exported (alignment not "none") over more than one position. At the
    smallest input sizes the last stage is 1x1: a softmax over one score is the constant 1 (the
    attention returns its values), which the exporter folds away, so that SME has no subgraph.
    The sizes come from one forward pass of a single clip at the model's own input size."""
    import torch

    from tsi.modules.sme import SME

    positions: list[int] = []
    hooks = [m.register_forward_pre_hook(lambda _m, args: positions.append(args[0].shape[-2] * args[0].shape[-1]))
             for m in model.modules() if isinstance(m, SME) and m.align != "none"]
    try:
        cfg = model.cfg
        with torch.no_grad():
            model(torch.zeros(1, cfg.frames, 3, cfg.input_size, cfg.input_size))
    finally:
        for h in hooks:
            h.remove()
    return sum(1 for n in positions if n > 1)
