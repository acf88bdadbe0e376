import pytest
import torch
from torch import nn

from export.friendly import count_sme_modules, export_friendly_model, fold_batchnorms
from tsi.checkpoint import load_model


def test_folded_equals_unfolded(tiny_ckpt):
    """BN folded into the convs: same logits (and same backbone features) to 1e-5."""
    unfolded, _ = load_model(tiny_ckpt, attention="matmul")
    n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in unfolded.modules())
    folded, card = export_friendly_model(tiny_ckpt)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    x = torch.randn(2, 4, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        fa, fb = unfolded.forward_features(x), folded.forward_features(x)
        la, lb = unfolded(x), folded(x)
    feat_err = float((fa - fb).abs().max() / fa.abs().max())
    logit_err = float((la - lb).abs().max())
    print(f"\n{n_bn} BN folded: max|logit diff| {logit_err:.2e}, max|feature diff| {feat_err:.2e} of max|feature|")
    assert n_bn > 0
    assert logit_err <= 1e-5 and feat_err <= 1e-5
    assert torch.equal(la.argmax(1), lb.argmax(1))


def test_export_friendly_settings(tiny_ckpt):
    model, card = export_friendly_model(tiny_ckpt)
    assert model.cfg.attention == "matmul" and not model.training
    assert not any(p.requires_grad for p in model.parameters())
    assert card.frames == model.cfg.frames == 4  # static T from the checkpoint
    assert count_sme_modules(model) == 8  # tsi_r18: 2 blocks x 4 stages


def test_fold_needs_eval_and_conv_before_bn():
    seq = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
    with pytest.raises(ValueError, match="eval"):  # training-mode folding must be refused
        fold_batchnorms(seq)
    assert fold_batchnorms(seq.eval()) == 1 and isinstance(seq[1], nn.Identity)
    lone = nn.Sequential(nn.ReLU(), nn.BatchNorm2d(4)).eval()
    with pytest.raises(ValueError, match="not preceded by a Conv2d"):  # an unfoldable BN is reported
        fold_batchnorms(lone)
