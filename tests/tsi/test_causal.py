"""The causal variant (TSIConfig.causal): nothing at frame t depends on a later frame."""

import pytest
import torch

from runtime.card import ModelCard
from tsi.checkpoint import load_model, make_card, save_checkpoint
from tsi.model import create_model
from tsi.modules.cti import CTI
from tsi.modules.shift import temporal_shift
from tsi.modules.sme import SME
from tsi.modules.tim import TemporalConv

T = 5
SMALL = dict(num_classes=3, input_size=32, base_width=16, sme_reduction=4, frames=T)


def randomize(model):
    """Non-trivial BN statistics and scales, random temporal kernels (the shift-like init and the
    zero-init last BN would hide most temporal paths)."""
    g = torch.Generator().manual_seed(3)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
        if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 1):
            m.weight.data.copy_(torch.randn(m.weight.shape, generator=g) * 0.5)
    return model.eval()


def per_frame(y, n=2):
    return y.reshape(n, T, -1)


def frames_changed(fn, x, t):
    """Which output frames change when input frame t is perturbed; x is (N, T, ...)."""
    with torch.no_grad():
        a = per_frame(fn(x), x.shape[0])
        x2 = x.clone()
        x2[:, t] += torch.randn_like(x2[:, t])
        b = per_frame(fn(x2), x.shape[0])
    return [bool((a[:, s] - b[:, s]).abs().max() > 0) for s in range(T)]


@pytest.mark.parametrize("name", ["tsi_r18", "tsm_r18"])
def test_model_features_are_causal(name):
    torch.manual_seed(0)
    model = randomize(create_model(name, causal=True, zero_init_residual=False, **SMALL))
    x = torch.randn(2, T, 3, 32, 32)
    for t in (1, 3):
        changed = frames_changed(model.forward_features, x, t)
        assert changed == [s >= t for s in range(T)], (t, changed)
    # the offline model is not causal: frame 0's features depend on frame 1 (the test can fail)
    offline = randomize(create_model(name, zero_init_residual=False, **SMALL))
    assert frames_changed(offline.forward_features, x, 1)[0]


@pytest.mark.parametrize("module", ["sme", "cti", "tim", "shift"])
def test_modules_are_causal(module):
    torch.manual_seed(0)
    c = 16
    fn = {
        "sme": lambda: randomize(SME(c, T, reduction=4, causal=True)),
        "cti": lambda: randomize(CTI(c, T, causal=True)),
        "tim": lambda: randomize(TemporalConv(c, T, causal=True)),
        "shift": lambda: (lambda y: temporal_shift(y, T, 8, causal=True)),
    }[module]()
    x = torch.randn(2, T, c, 4, 4)
    for t in range(T):
        changed = frames_changed(lambda v: fn(v.flatten(0, 1)), x, t)
        assert not any(changed[:t]) and changed[t], (module, t, changed)


def test_causal_shift_takes_blocks_from_t_minus_1_and_t_minus_2():
    x = torch.arange(T, dtype=torch.float32).view(1, T, 1, 1, 1).expand(1, T, 16, 1, 1)
    y = temporal_shift(x.reshape(T, 16, 1, 1), T, 8, causal=True).view(T, 16)
    t = torch.arange(T, dtype=torch.float32)
    assert torch.equal(y[:, 0], torch.where(t >= 2, t - 2, 0.0))  # block 0 <- t-2
    assert torch.equal(y[:, 2], torch.where(t >= 1, t - 1, 0.0))  # block 1 <- t-1
    assert torch.equal(y[:, 4], t)  # rest: t


def test_causal_tconv_init_copies_the_past():
    conv = TemporalConv(16, T, shift_div=8, causal=True)
    x = torch.arange(1, T + 1, dtype=torch.float32).view(T, 1, 1, 1).expand(T, 16, 1, 1)
    with torch.no_grad():
        y = conv(x.contiguous()).view(T, 16)
    t = torch.arange(1, T + 1, dtype=torch.float32)
    assert torch.equal(y[:, 0], torch.where(t >= 2, t - 1, 0.0))  # first C/8 <- t-1
    assert torch.equal(y[:, 2], torch.where(t >= 3, t - 2, 0.0))  # next C/8 <- t-2
    assert torch.equal(y[:, 5], t)


def test_first_frame_has_zero_motion_and_pairs_move_one_frame_later():
    torch.manual_seed(0)
    off = randomize(SME(16, T, reduction=4))
    cau = randomize(SME(16, T, reduction=4, causal=True))
    cau.load_state_dict(off.state_dict())
    x = torch.randn(2 * T, 16, 4, 4)
    with torch.no_grad():
        m_off = off.motion(x).view(2, T, 4, 4, 4)
        m_cau = cau.motion(x).view(2, T, 4, 4, 4)
    assert torch.count_nonzero(m_cau[:, 0]) == 0
    # the same pair (t-1, t): offline at frame t-1, causal at frame t
    assert torch.equal(m_cau[:, 1:], m_off[:, :-1])


def test_shapes_and_gradients():
    torch.manual_seed(0)
    model = randomize(create_model("tsi_r18", causal=True, **SMALL)).train()
    model.dropout.p = 0.0
    out = model(torch.randn(2, T, 3, 32, 32))
    assert out.shape == (2, 3)
    out.logsumexp(1).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing, missing


def test_causal_flag_travels_in_checkpoint_and_card(tmp_path):
    model = create_model("tsi_r18", causal=True, **SMALL).eval()
    assert model.cfg.causal and create_model("tsi_r18", **SMALL).cfg.causal is False
    card = make_card(model.cfg, ["a", "b", "c"], span_frames=10)
    path = save_checkpoint(tmp_path / "c.pt", model, card)
    loaded, card2 = load_model(path)
    assert loaded.cfg.causal is True and card2.config["causal"] is True
    assert ModelCard.from_json(card2.to_json()).config["causal"] is True
    x = torch.randn(1, T, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
