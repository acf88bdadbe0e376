"""CTI, TIM and the TSM shift against naive references (loops over t and groups)."""

import pytest
import torch

from tsi.modules.cti import CTI
from tsi.modules.shift import temporal_shift
from tsi.modules.tim import TemporalConv

T = 5


def naive_tconv(conv: TemporalConv, x: torch.Tensor) -> torch.Tensor:
    nt, c, h, w = x.shape
    x5 = x.double().view(-1, T, c, h, w)
    wgt = conv.conv.weight.double()[:, 0, :, 0]  # (C, 3): taps for t-1, t, t+1
    out = torch.zeros_like(x5)
    for t in range(T):
        for j, dt in enumerate((-1, 0, 1)):
            if 0 <= t + dt < T:
                out[:, t] += wgt[:, j].view(1, c, 1, 1) * x5[:, t + dt]
    return out.view(nt, c, h, w)


def naive_cti(cti: CTI, x: torch.Tensor) -> torch.Tensor:
    c = cti.group_channels
    groups = [x.double()[:, g * c:(g + 1) * c] for g in range(cti.groups)]
    outs = [groups[0], naive_tconv(cti.tconvs[0], groups[1])]
    for g in range(2, cti.groups):
        prev, xg = outs[-1], groups[g]
        if cti.ci_mode == "cross":
            fc = cti.ci[g - 2].fc
            mixed = torch.empty_like(xg)
            for i in range(xg.shape[0]):  # per frame
                pooled = (prev[i] + xg[i]).mean(dim=(1, 2))
                logits = fc.weight.double() @ pooled + fc.bias.double()
                a, b = logits[:c], logits[c:]
                alpha = torch.exp(a) / (torch.exp(a) + torch.exp(b))
                mixed[i] = alpha.view(c, 1, 1) * xg[i] + (1 - alpha).view(c, 1, 1) * prev[i]
            xg = mixed
        elif cti.ci_mode == "addition":
            xg = prev + xg
        outs.append(naive_tconv(cti.tconvs[g - 1], xg))
    return torch.cat(outs, dim=1)


@pytest.mark.parametrize("ci_mode", ["cross", "independent", "addition"])
def test_cti_matches_naive_reference(ci_mode):
    torch.manual_seed(0)
    cti = CTI(32, T, ci_mode=ci_mode)
    for p in cti.parameters():  # move away from the shift init so every tap matters
        p.data.add_(torch.randn_like(p) * 0.3)
    x = torch.randn(2 * T, 32, 3, 4)
    with torch.no_grad():
        got = cti(x).double()
    want = naive_cti(cti, x)
    assert torch.allclose(got, want, atol=1e-5), (got - want).abs().max()


def test_tim_initialisation_shifts_as_specified():
    c = 16  # fold = 2
    conv = TemporalConv(c, T)
    x = torch.randn(3 * T, c, 2, 2)
    with torch.no_grad():
        y = conv(x).view(3, T, c, 2, 2)
    x5 = x.view(3, T, c, 2, 2)
    # channels 0-1 copy the previous frame (zero at t=0)
    assert torch.equal(y[:, 1:, :2], x5[:, :-1, :2])
    assert torch.count_nonzero(y[:, 0, :2]) == 0
    # channels 2-3 copy the next frame (zero at t=T-1)
    assert torch.equal(y[:, :-1, 2:4], x5[:, 1:, 2:4])
    assert torch.count_nonzero(y[:, -1, 2:4]) == 0
    # the rest is identity
    assert torch.equal(y[:, :, 4:], x5[:, :, 4:])


def test_cti_fresh_groups_use_tim_init():
    cti = CTI(64, T)
    for tconv in cti.tconvs:
        w = tconv.conv.weight[:, 0, :, 0]
        assert torch.equal(w[:2], torch.tensor([[1.0, 0, 0]] * 2))
        assert torch.equal(w[2:4], torch.tensor([[0, 0, 1.0]] * 2))
        assert torch.equal(w[4:], torch.tensor([[0, 1.0, 0]] * 12))


def reference_shift(x, n_segment, fold_div=8):
    """TSM's original slice-assignment shift (Lin et al.), as a reference only."""
    nt, c, h, w = x.size()
    x = x.view(nt // n_segment, n_segment, c, h, w)
    fold = c // fold_div
    out = torch.zeros_like(x)
    out[:, :-1, :fold] = x[:, 1:, :fold]
    out[:, 1:, fold:2 * fold] = x[:, :-1, fold:2 * fold]
    out[:, :, 2 * fold:] = x[:, :, 2 * fold:]
    return out.view(nt, c, h, w)


@pytest.mark.parametrize("c", [8, 16, 24, 7])
def test_shift_equals_reference(c):
    x = torch.randn(2 * T, c, 3, 3)
    assert torch.equal(temporal_shift(x, T), reference_shift(x, T))
