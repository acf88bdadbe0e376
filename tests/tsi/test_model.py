import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from tsi.config import TSIConfig
from tsi.model import MODELS, TSINet, create_model

SMALL = dict(num_classes=5, input_size=64, base_width=16, sme_reduction=4)


def small(name="tsi_r18", frames=4, **kw):
    return create_model(name, frames=frames, **{**SMALL, **kw})


def randomize(model):
    """Give every BN non-trivial statistics and scales (the last BN of each block starts at zero,
    which would hide the temporal modules at initialisation)."""
    g = torch.Generator().manual_seed(3)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return model.eval()


def test_builders_exist_for_every_family_and_depth():
    for fam in ("tsn", "tsm", "tsi"):
        for depth in (18, 34, 50, 101):
            assert f"{fam}_r{depth}" in MODELS
    with pytest.raises(ValueError, match="unknown model"):
        create_model("tsi_r999")


def test_forward_shape_and_wrong_t_error():
    model = small().eval()
    assert model(torch.randn(2, 4, 3, 64, 64)).shape == (2, 5)
    with pytest.raises(ValueError, match=r"T=4"):
        model(torch.randn(2, 8, 3, 64, 64))
    with pytest.raises(ValueError, match=r"\(N, 4, 3, H, W\)"):
        model(torch.randn(8, 3, 64, 64))


@pytest.mark.parametrize("name", ["tsi_r18", "tsi_r50", "tsm_r18", "tim_me_r18", "sme_tim_r18"])
def test_gradients_reach_every_parameter(name):
    torch.manual_seed(0)
    model = randomize(small(name)).train()
    model.dropout.p = 0.0
    model(torch.randn(2, 4, 3, 64, 64)).logsumexp(1).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing, missing


class CountOps(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.n = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.n += 1
        return func(*args, **(kwargs or {}))


def test_no_python_loop_over_frames():
    """The number of ops run does not grow with T: all frame pairs are processed at once."""
    counts = []
    for frames in (4, 8):
        model = small(frames=frames).eval()
        with torch.no_grad(), CountOps() as c:
            model(torch.randn(1, frames, 3, 64, 64))
        counts.append(c.n)
    assert counts[0] == counts[1]


SWITCHES = [
    dict(motion="none"), dict(motion="me"), dict(temporal="none"), dict(temporal="tim"),
    dict(temporal="tsm"), dict(sme_align="none"), dict(sme_align="add"),
    dict(sme_channel_attention=False), dict(sme_levels=1), dict(ci_mode="independent"),
    dict(ci_mode="addition"), dict(fusion="summation"), dict(fusion="concatenation"),
    dict(tsi_stages=(5,)), dict(tsi_blocks="first"),
]


@pytest.mark.parametrize("switch", SWITCHES, ids=lambda s: "-".join(f"{k}={v}" for k, v in s.items()))
def test_each_table4_switch_changes_the_graph(switch):
    x = torch.randn(1, 4, 3, 64, 64, generator=torch.Generator().manual_seed(5))
    outs = []
    for kw in ({}, switch):
        torch.manual_seed(0)
        model = randomize(small(**kw))
        with torch.no_grad():
            outs.append((model(x), repr(model)))
    assert outs[0][1] != outs[1][1], "switch left the module structure unchanged"
    assert not torch.allclose(outs[0][0], outs[1][0], atol=1e-6), "switch left the output unchanged"


def test_attention_switch_gives_same_network():
    x = torch.randn(1, 4, 3, 64, 64)
    torch.manual_seed(0)
    a = randomize(small(attention="sdpa"))
    b = randomize(small(attention="matmul"))
    b.load_state_dict(a.state_dict())
    with torch.no_grad():
        assert torch.allclose(a(x), b(x), atol=1e-5)


def test_tsi_stage_placement():
    m = small(tsi_stages=(3, 5), tsi_blocks="first")
    flags = [[blk.is_temporal for blk in stage] for stage in m.backbone.stages]
    assert flags == [[False, False], [True, False], [False, False], [True, False]]


def test_config_rejects_bad_values():
    for bad in (dict(motion="xx"), dict(depth=20), dict(frames=1), dict(input_size=100),
                dict(fusion="summation", motion="none"), dict(tsi_stages=(1,))):
        with pytest.raises(ValueError):
            TSIConfig(**bad)
    cfg = TSIConfig(frames=16)
    assert TSIConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown"):
        TSIConfig.from_dict({"frames": 8, "bogus": 1})


def test_model_keeps_its_config():
    m = small(frames=6)
    assert isinstance(m, TSINet) and m.cfg.frames == 6 and m.cfg.motion == "sme"
