"""SME against a deliberately naive reference: loops over t, explicit softmax, explicit pyramid."""

import math

import pytest
import torch
import torch.nn.functional as F

from tsi.modules.attention import ATTENTION_IMPLS
from tsi.modules.sme import SME

T = 4


def randomize_bn(module):
    g = torch.Generator().manual_seed(1)
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.randn(m.num_features, generator=g))
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)


def naive_sme(sme: SME, x: torch.Tensor) -> torch.Tensor:
    x = x.double()
    nt, c, h, w = x.shape
    n = nt // T
    reduce_conv, reduce_bn = sme.reduce
    xr = F.batch_norm(F.conv2d(x, reduce_conv.weight.double()), reduce_bn.running_mean.double(),
                      reduce_bn.running_var.double(), reduce_bn.weight.double(),
                      reduce_bn.bias.double(), eps=reduce_bn.eps)
    d = xr.shape[1]
    xr = xr.view(n, T, d, h, w)
    out = torch.empty_like(x).view(n, T, c, h, w)
    rec_conv, rec_bn = sme.recover
    for i in range(n):
        for t in range(T):
            if t == T - 1:
                m = torch.zeros(d, h, w, dtype=torch.float64)
            else:
                cur, nxt = xr[i, t], xr[i, t + 1]
                q = cur.reshape(d, h * w).T  # (L, d)
                kv = nxt.reshape(d, h * w).T
                scores = q @ kv.T / math.sqrt(d)
                e = torch.exp(scores - scores.max(dim=1, keepdim=True).values)
                a = e / e.sum(dim=1, keepdim=True)
                s = (a @ kv).T.reshape(d, h, w)
                xsa = {"mul": nxt * s, "add": nxt + s, "none": nxt}[sme.align]
                m = torch.zeros(d, h, w, dtype=torch.float64)
                dk = None
                for k, conv in enumerate(sme.pyramid):
                    inp = xsa if k == 0 else dk + xsa
                    dk = F.conv2d(inp[None], conv.weight.double(), padding=1, groups=d)[0]
                    m = m + (dk - cur)
            xi = x.view(n, T, c, h, w)[i, t]
            if sme.channel_attention:
                gap = m.mean(dim=(1, 2)).view(1, d, 1, 1)
                z = F.conv2d(gap, rec_conv.weight.double())
            else:
                z = F.conv2d(m[None], rec_conv.weight.double())
            z = F.batch_norm(z, rec_bn.running_mean.double(), rec_bn.running_var.double(),
                             rec_bn.weight.double(), rec_bn.bias.double(), eps=rec_bn.eps)[0]
            out[i, t] = xi + xi * torch.sigmoid(z) if sme.channel_attention else xi + z
    return out.view(nt, c, h, w)


@pytest.mark.parametrize("attention", ["sdpa", "matmul"])
@pytest.mark.parametrize(
    "kwargs",
    [dict(), dict(align="add"), dict(align="none"), dict(levels=1), dict(channel_attention=False)],
    ids=["default", "align-add", "no-align", "K1", "no-CA"],
)
def test_sme_matches_naive_reference(attention, kwargs):
    torch.manual_seed(0)
    sme = SME(32, T, reduction=4, attention=attention, **kwargs).eval()
    randomize_bn(sme)
    x = torch.randn(2 * T, 32, 5, 6)
    with torch.no_grad():
        got = sme(x).double()
    want = naive_sme(sme, x)
    assert torch.allclose(got, want, atol=1e-5, rtol=1e-5), (got - want).abs().max()


def test_last_frame_has_zero_motion():
    torch.manual_seed(0)
    sme = SME(16, T, reduction=4).eval()
    randomize_bn(sme)
    with torch.no_grad():
        m = sme.motion(torch.randn(3 * T, 16, 4, 4)).view(3, T, 4, 4, 4)
    assert torch.count_nonzero(m[:, -1]) == 0
    assert torch.count_nonzero(m[:, :-1]) > 0


def test_attention_implementations_agree():
    torch.manual_seed(0)
    q, k = torch.randn(2, 7, 49, 8).unbind(0)
    ref = ATTENTION_IMPLS["matmul"](q.double(), k.double(), k.double())
    for name in ("sdpa", "matmul"):
        got = ATTENTION_IMPLS[name](q, k, k).double()
        assert torch.allclose(got, ref, atol=1e-5), (name, (got - ref).abs().max())
    # softmax over key positions: each row of the attention matrix sums to one
    a = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(8), dim=-1)
    assert torch.allclose(a.sum(-1), torch.ones(7, 49))


def test_sme_sdpa_and_matmul_modules_agree():
    torch.manual_seed(0)
    a = SME(64, T, reduction=16, attention="sdpa").eval()
    b = SME(64, T, reduction=16, attention="matmul").eval()
    b.load_state_dict(a.state_dict())
    randomize_bn(a)
    b.load_state_dict(a.state_dict())
    x = torch.randn(2 * T, 64, 14, 14)
    with torch.no_grad():
        assert torch.allclose(a(x), b(x), atol=1e-5)
