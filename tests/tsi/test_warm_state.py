"""Warm-state training (tsi.warm_state): a clip after another as one causal 2T-frame clip."""

import pytest
import torch
from torch import nn

from tests.tsi.test_streaming import SMALL, T, causal, stream_logits
from tsi.model import create_model
from tsi.streaming import StreamingTSI, frame_logits
from tsi.warm_state import WarmStart, clip_length, warm_loss


@pytest.mark.parametrize("name", ["tsi_r18", "tsm_r18", "tim_me_r18"])
def test_the_warm_half_is_the_stream_after_the_other_clip(name):
    """In eval mode, WarmStart's 2T-frame pass equals stepping the other clip then this one through
    the streaming form (the state carried), and its first half equals the other clip alone."""
    model = causal(name).eval()
    x = torch.randn(3, T, 3, 32, 32)
    seq = torch.cat([x.roll(1, 0), x], 1)
    with torch.no_grad():
        with clip_length(model, 2 * T):
            per_frame = frame_logits(model, seq)
        streamed, _ = stream_logits(StreamingTSI(model), seq)
        alone = frame_logits(model, x.roll(1, 0))
    assert torch.allclose(per_frame, streamed, rtol=0, atol=1e-5), (per_frame - streamed).abs().max()
    assert torch.allclose(per_frame[:, :T], alone, rtol=0, atol=1e-5)
    # the warmed half differs from the clip alone: the state carries the other clip
    assert (per_frame[:, T:] - frame_logits(model, x)).abs().max() > 1e-3


def test_clip_length_restores_the_model_even_after_an_error():
    model = causal()
    frames = [m.frames for m in model.modules() if isinstance(getattr(m, "frames", None), int)]
    assert len(frames) > 4 and set(frames) == {T}
    with pytest.raises(RuntimeError, match="inside"):
        with clip_length(model, 3 * T):
            assert model.cfg.frames == 3 * T
            raise RuntimeError("inside")
    assert model.cfg.frames == T
    assert [m.frames for m in model.modules() if isinstance(getattr(m, "frames", None), int)] == frames
    model(torch.randn(1, T, 3, 32, 32))  # still a T-frame model


def test_train_mode_gives_cold_and_warm_logits_and_their_loss_trains():
    torch.manual_seed(0)
    model = causal()
    net = WarmStart(model).train()
    x, y = torch.randn(4, T, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    cold, warm = net(x)
    assert cold.shape == warm.shape == (4, SMALL["num_classes"])
    crit = nn.CrossEntropyLoss()
    loss = warm_loss(crit, (cold, warm), y)
    expected = (crit(cold, y.roll(1)) + crit(warm, y)) / 2
    assert torch.allclose(loss, expected)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    net.eval()
    with torch.no_grad():
        assert torch.equal(net(x), model(x))  # evaluation is the plain model


def test_refuses_a_model_that_looks_ahead():
    with pytest.raises(ValueError, match="causal"):
        WarmStart(create_model("tsi_r18", frames=T, **SMALL))
