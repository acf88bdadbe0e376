"""The streaming step of a causal model against the causal clip model's per-frame logits."""

import pytest
import torch

from tests.tsi.test_causal import randomize
from tsi.model import create_model
from tsi.streaming import PRIMED, StreamingTSI, TSIStream, frame_logits, state_spec

T = 4
SMALL = dict(num_classes=5, input_size=32, base_width=16, sme_reduction=4, zero_init_residual=False)


def causal(name="tsi_r18", frames=T, **kw):
    torch.manual_seed(0)
    return randomize(create_model(name, causal=True, frames=frames, **{**SMALL, **kw}))


def stream_logits(step_model, frames):
    state = step_model.zero_state(frames.shape[0])
    outs = []
    with torch.no_grad():
        for t in range(frames.shape[1]):
            logits, state = step_model.step(frames[:, t], state)
            outs.append(logits)
    return torch.stack(outs, 1), state


@pytest.mark.parametrize("name,kw", [("tsi_r18", {}), ("tsm_r18", {}),
                                     ("tsi_r18", dict(fusion="concatenation", ci_mode="addition")),
                                     ("tim_me_r18", {})])
def test_step_equals_causal_clip_per_frame_logits(name, kw):
    model = causal(name, **kw)
    x = torch.randn(2, T, 3, 32, 32)
    with torch.no_grad():
        ref = frame_logits(model, x)
        assert torch.allclose(ref.mean(1), model(x), atol=1e-6)  # the clip output is their mean
    got, _ = stream_logits(StreamingTSI(model), x)
    assert ref.abs().max() > 1e-2  # a non-trivial output
    assert torch.allclose(got, ref, rtol=0, atol=1e-5), (got - ref).abs().max()


def test_stream_past_t_equals_a_longer_causal_clip():
    """After T frames the stream goes on: its frame t equals a causal clip model of 2T frames
    (same weights: no parameter depends on T) at frame t."""
    model = causal()
    longer = create_model("tsi_r18", causal=True, frames=2 * T, **SMALL).eval()
    longer.load_state_dict(model.state_dict())
    x = torch.randn(1, 2 * T, 3, 32, 32)
    with torch.no_grad():
        ref = frame_logits(longer, x)
    got, _ = stream_logits(StreamingTSI(model), x)
    assert torch.allclose(got, ref, rtol=0, atol=1e-5), (got - ref).abs().max()


def test_state_spec_names_shapes_and_zero_state():
    model = causal()
    spec = state_spec(model, batch=3)
    # TSI-R18, base width 16, 32x32 input: 8 temporal blocks, SME (d = w/4) and CTI (3 TConvs)
    assert spec[PRIMED] == (3, 1)
    assert spec["s2b0.unit.motion.prev"] == (3, 4, 8, 8)  # d = 16/4 at 32/4
    assert spec["s2b0.unit.temporal.g2"] == (3, 4, 2, 64)  # w/G = 4 channels, past 2 frames, 8*8
    assert spec["s5b1.unit.temporal.g4"] == (3, 32, 2, 1)
    assert len(spec) == 1 + 8 * (1 + 3)
    step = StreamingTSI(model)
    zero = step.zero_state(3)
    assert list(zero) == list(spec) and all(float(v.abs().sum()) == 0 for v in zero.values())
    with torch.no_grad():
        _, new = step.step(torch.randn(3, 3, 32, 32), zero)
    assert {k: tuple(v.shape) for k, v in new.items()} == spec
    assert float(new[PRIMED].min()) == 1.0
    tsm = state_spec(causal("tsm_r18"))
    assert PRIMED not in tsm
    assert tsm["s2b0.shift.prev1"] == (1, 4, 8, 8) and tsm["s2b0.shift.prev2"] == (1, 2, 8, 8)
    assert tsm["s3b0.shift.prev1"] == (1, 4, 8, 8)  # stage 3's first block shifts its 16-ch input


def test_reset_and_push():
    model = causal()
    x = torch.randn(1, T, 3, 32, 32)
    stream = TSIStream(model)
    first = [stream.push(x[:, t]) for t in range(T)]
    stream.reset()
    again = [stream.push(x[:, t]) for t in range(T)]
    assert stream.frames_seen == T
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    with torch.no_grad():
        assert torch.allclose(torch.stack(first, 1), frame_logits(model, x), atol=1e-5)


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="causal"):
        StreamingTSI(create_model("tsi_r18", frames=T, **SMALL))
    model = causal()
    step = StreamingTSI(model)
    with pytest.raises(ValueError, match=r"\(N, 3, 32, 32\)"):
        step.step(torch.randn(1, 3, 64, 64), step.zero_state())
    with pytest.raises(ValueError, match="state lacks"):
        step.step(torch.randn(1, 3, 32, 32), {})
    model.train()
    with pytest.raises(RuntimeError, match="eval mode"):
        step.step(torch.randn(1, 3, 32, 32), step.zero_state())
