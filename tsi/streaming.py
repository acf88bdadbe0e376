"""Streaming (online) form of a causal TSI-family model: one backbone pass per new frame.

A causal model (``TSIConfig.causal=True``) looks only backwards in time, so its clip output at
frame t depends on frames <= t alone. Everything a block needs from past frames is kept as explicit
state, and

    step(frame_t, state_{t-1}) -> (logits_t, state_t)

computes frame t's logits from one frame, T times less compute per output than re-running a T-frame
clip (the sliding window).

**State** (names and shapes from the config alone, :func:`state_spec`; batch axis first). Blocks are
named ``s<stage>b<block>`` (stage 2..5 as in the paper, block from 0); per temporal block:

- ``s..b...shift.prev1`` (2·C/div, H, W) and ``shift.prev2`` (C/div, H, W): TSM's shifted channel
  blocks of the block input at t-1 and t-2 (``temporal="tsm"``);
- ``s..b...unit.motion.prev`` (d, h, w): SME's / ME's reduced feature Xr_{t-1};
- ``s..b...unit.temporal.g<k>`` (w/G, 2, h·w), k = 2..G: the inputs at t-2 and t-1 of CTI's TConv_k;
  ``unit.temporal.past`` (w, 2, h·w) for TIM's conv;
- ``primed`` (1,) once per model with SME/ME: 0 on the first frame after a reset (the frame has no
  predecessor: zero motion, as the causal clip model gives its first frame), 1 after.

(H, W) is the block input's resolution, (h, w) that of its 3x3 conv output. The zero state
(:func:`zero_state`) is the start of a stream: all zeros equal the causal clip model's zero padding
before frame 0, and ``primed = 0`` its zero motion at frame 0.

**Per-frame logits of the clip model** (:func:`frame_logits`): the head applied to each frame's
pooled feature before the temporal average, (N, T, classes); their mean over T is the clip model's
output (TSN consensus; dropout is the identity in eval mode). Fed frames 0..T-1 one at a time from
the zero state, :meth:`StreamingTSI.step` returns exactly these (tests: to 1e-5 in fp32). After
frame T-1 the stream goes on past the clip length: its frame t sees all frames back to the reset
through the state (each temporal op reaches back 1 or 2 frames per block), whereas a clip model's
frame sees at most T frames.

BatchNorm uses running statistics: streaming is an inference form (the model must be in eval mode).
"""

from __future__ import annotations

from typing import Iterator

import torch
from torch import nn

from tsi.backbone import Block
from tsi.config import TSIConfig
from tsi.model import TSINet

PRIMED = "primed"


def frame_logits(model: TSINet, clip: torch.Tensor) -> torch.Tensor:
    """Per-frame logits (N, T, classes) of the clip model: the head before the temporal average."""
    feats = model.forward_features(clip)
    y = model.dropout(model.pool(feats).flatten(1))
    return model.fc(y).view(-1, model.cfg.frames, model.cfg.num_classes)


def stem_size(size: int) -> int:
    """Spatial size after the stem (7x7 conv stride 2, 3x3 max-pool stride 2, both padded)."""
    size = (size - 1) // 2 + 1
    return (size - 1) // 2 + 1


def _blocks(model: TSINet) -> Iterator[tuple[str, Block]]:
    for i, stage in enumerate(model.backbone.stages):
        for b, blk in enumerate(stage):
            yield f"s{i + 2}b{b}", blk


def state_spec(model: TSINet, batch: int = 1) -> dict[str, tuple[int, ...]]:
    """Ordered ``{state name: shape}`` of a causal model's stream (see the module docstring).

    Shapes follow from the config (input size, widths, depth, placement, module switches)."""
    cfg = model.cfg
    if not cfg.causal:
        raise ValueError("streaming needs a causal model (TSIConfig.causal=True); this one looks at "
                         "future frames")
    spec: dict[str, tuple[int, ...]] = {}
    if cfg.motion != "none" and any(blk.unit is not None and blk.unit.motion is not None
                                    for _, blk in _blocks(model)):
        spec[PRIMED] = (batch, 1)
    size = stem_size(cfg.input_size)
    for name, blk in _blocks(model):
        for key, shape in blk.state_shapes(size).items():
            spec[f"{name}.{key}"] = (batch, *shape)
        size = blk.out_size(size)
    return spec


def zero_state(model: TSINet, batch: int = 1, dtype: torch.dtype = torch.float32,
               device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """The state at the start of a stream: all zeros (``primed`` = 0)."""
    return {k: torch.zeros(shape, dtype=dtype, device=device) for k, shape in state_spec(model, batch).items()}


class StreamingTSI(nn.Module):
    """The step of a causal model; shares the model's modules (no copy of the weights).

    :meth:`step` works on a state dict; :meth:`forward` takes and returns the state as a flat
    tuple in :attr:`state_names` order (the form exported to ONNX).
    """

    def __init__(self, model: TSINet):
        super().__init__()
        self.model = model
        self.cfg: TSIConfig = model.cfg
        self.state_names = list(state_spec(model))

    def state_spec(self, batch: int = 1) -> dict[str, tuple[int, ...]]:
        return state_spec(self.model, batch)

    def zero_state(self, batch: int = 1, dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
        return zero_state(self.model, batch, dtype, next(self.model.parameters()).device)

    def step(self, frame: torch.Tensor,
             state: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One frame (N, 3, S, S) -> (logits (N, classes), new state)."""
        if self.model.training:
            raise RuntimeError("StreamingTSI.step needs the model in eval mode (BatchNorm running statistics)")
        s = self.cfg.input_size
        if frame.dim() != 4 or tuple(frame.shape[1:]) != (3, s, s):
            raise ValueError(f"expected a frame of shape (N, 3, {s}, {s}), got {tuple(frame.shape)}")
        missing = [k for k in self.state_names if k not in state]
        if missing:
            raise ValueError(f"state lacks {len(missing)} tensor(s): {', '.join(missing[:4])}"
                             f"{' ...' if len(missing) > 4 else ''}")
        new: dict[str, torch.Tensor] = {}
        primed = state.get(PRIMED)
        if primed is not None:
            new[PRIMED] = torch.ones_like(primed)
            primed = primed.view(-1, 1, 1, 1)
        x = self.model.backbone.stem(frame)
        for name, blk in _blocks(self.model):
            if not blk.is_temporal:
                x = blk(x)
                continue
            prefix = name + "."
            sub = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
            x, s_new = blk.step(x, sub, primed)
            new.update({prefix + k: v for k, v in s_new.items()})
        y = self.model.dropout(self.model.pool(x).flatten(1))
        return self.model.fc(y), {k: new[k] for k in self.state_names}

    def forward(self, frame: torch.Tensor, *states: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if len(states) != len(self.state_names):
            raise ValueError(f"expected {len(self.state_names)} state tensors, got {len(states)}")
        logits, new = self.step(frame, dict(zip(self.state_names, states)))
        return (logits, *(new[k] for k in self.state_names))


class TSIStream:
    """A running stream over a :class:`StreamingTSI`: ``push(frame)`` -> logits, ``reset()``."""

    def __init__(self, model: TSINet | StreamingTSI, batch: int = 1):
        self.step_model = model if isinstance(model, StreamingTSI) else StreamingTSI(model)
        self.batch = batch
        self.state = self.step_model.zero_state(batch)
        self.frames_seen = 0

    def reset(self) -> None:
        """Forget the past: the next frame starts a new stream (zero state)."""
        self.state = self.step_model.zero_state(self.batch)
        self.frames_seen = 0

    @torch.no_grad()
    def push(self, frame: torch.Tensor) -> torch.Tensor:
        logits, self.state = self.step_model.step(frame, self.state)
        self.frames_seen += 1
        return logits
