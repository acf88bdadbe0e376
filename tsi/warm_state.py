"""Training a causal model for continuous video: each clip starts from a state warmed on another.

A causal model trained only on isolated clips sees every clip from the zero state; online
(``tsi.streaming``, ``runtime.online``) its state has seen everything since the stream began, and in
a continuous video the previous action is in it when the next one starts. ``tsi-train --causal
--warm-state`` shows the model that case: every training clip is run after another clip of the
batch (the batch rolled by one, most likely another class), as one causal clip of 2T frames, and

    loss = (CE(mean of logits[:T], label of the first clip) + CE(mean of logits[T:], label)) / 2

The first half is the usual zero-state clip loss (the rolled batch is the same batch); the second is
the clip's loss with the state carried from the other clip: the online output T frames after a
change of action. A causal model's frame t depends on frames <= t only, so the first half's logits
are those of the clip alone (in training, up to BatchNorm's batch statistics, which span both
halves). The weights have no T in them, so the 2T-frame form is the same
model; :func:`clip_length` switches it there and back. Twice the frames per step: twice the compute.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Iterator

import torch
from torch import nn

from tsi.model import TSINet
from tsi.streaming import frame_logits


@contextlib.contextmanager
def clip_length(model: TSINet, frames: int) -> Iterator[TSINet]:
    """``model`` taking ``frames``-frame clips inside the block (its config and every temporal
    module's ``frames``), restored after."""
    saved_cfg = model.cfg
    modules = [m for m in model.modules() if isinstance(getattr(m, "frames", None), int)]
    saved = [m.frames for m in modules]
    model.cfg = dataclasses.replace(saved_cfg, frames=frames)
    for m in modules:
        m.frames = frames
    try:
        yield model
    finally:
        model.cfg = saved_cfg
        for m, f in zip(modules, saved):
            m.frames = f


class WarmStart(nn.Module):
    """The training form of a causal :class:`TSINet` (see the module docstring): in train mode
    ``forward(clips)`` returns ``(cold, warm)`` clip logits, ``cold`` those of the batch rolled by one
    (labels ``labels.roll(1)``), from the zero state, and ``warm`` those of ``clips`` after them; in eval
    mode it is the model itself. :func:`warm_loss` combines them."""

    def __init__(self, model: TSINet) -> None:
        super().__init__()
        if not model.cfg.causal:
            raise ValueError("a warmed state needs a causal model (TSIConfig.causal=True)")
        self.model = model

    def forward(self, clips: torch.Tensor):
        if not self.training or clips.dim() != 5:
            return self.model(clips)
        self.model.check_input(clips)
        t = clips.shape[1]
        seq = torch.cat([clips.roll(1, dims=0), clips], dim=1)
        with clip_length(self.model, 2 * t):
            per_frame = frame_logits(self.model, seq)
        return per_frame[:, :t].mean(dim=1), per_frame[:, t:].mean(dim=1)


def warm_loss(crit: nn.Module, out: tuple[torch.Tensor, torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
    """The mean of the zero-state loss of the rolled batch and the warmed loss of the batch."""
    cold, warm = out
    return (crit(cold.float(), labels.roll(1, dims=0)) + crit(warm.float(), labels)) / 2
