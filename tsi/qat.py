"""Quantization-aware fine-tuning at the Q/DQ points the INT8 graph has (``tsi-train --qat GRAPH``).

The last resort for a model whose INT8 graph the builder could not keep within its bound
(docs/export.md#when-int8-loses-accuracy). ``GRAPH`` is the builder's own Q/DQ ONNX of that model:
its quantized activations (``calib.qat_points``) say which layers read quantized inputs and at what
range. Fine-tuning then runs the model as the INT8 graph will:

- every quantized activation (a point) goes through a fake quantizer (symmetric int8, per tensor)
  where the graph quantizes it: at the output of the leaf module that made it (a ReLU, a pool) and
  at the input of each Conv / Linear that reads it. Its amax starts at the graph's and is learnt
  (LSQ's straight-through gradient, scaled by 1 / sqrt(numel x 127));
- every weight of those layers is fake-quantized per output channel at max |w| / 127, the
  builder's weight scale. BatchNorm, folded into the conv at export, scales each output channel:
  per-channel max quantization commutes with it, so the unfolded weight quantized here is the
  folded one there;
- BatchNorm keeps its running statistics (frozen): the statistics the export folds stay the ones
  the quantized layers were trained with.

The layers the builder kept in float have no Q/DQ pair in the graph and none here. The checkpoint
holds plain weights plus ``qat`` (:meth:`Qat.state`: the points by their modules, with the learnt
amax); the builder reads those ranges as one more candidate (``export.int8_choice``) and measures
it like the others.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from calib.qdq import QMAX  # symmetric int8, the builder's
from tsi.partial_bn import in_eval  # BatchNorm frozen while the quantizers learn

MIN_AMAX = 1e-6


class QatError(ValueError):
    """A graph that cannot guide the fine-tuning of this model (one line)."""


def _round_ste(x: torch.Tensor) -> torch.Tensor:
    return (x.round() - x).detach() + x


def fake_quant(x: torch.Tensor, amax: torch.Tensor) -> torch.Tensor:
    """Symmetric int8 of ``x`` at ``amax`` (a scalar tensor or one per leading channel, broadcast by
    the caller), straight-through for ``x`` inside the range, LSQ for ``amax``."""
    scale = amax / QMAX
    return torch.clamp(_round_ste(x / scale), -QMAX, QMAX) * scale


class ActQuant(nn.Module):
    """One quantized activation tensor: a learnt amax."""

    def __init__(self, amax: float):
        super().__init__()
        self.amax = nn.Parameter(torch.tensor(float(amax)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = 1.0 / math.sqrt(x.numel() * QMAX)
        a = self.amax.clamp_min(MIN_AMAX)
        a = a * g + (a - a * g).detach()  # value a, gradient scaled by g (LSQ)
        return fake_quant(x, a)


def quant_weight(w: torch.Tensor) -> torch.Tensor:
    amax = w.detach().abs().flatten(1).amax(1).clamp_min(MIN_AMAX)
    return fake_quant(w, amax.view(-1, *([1] * (w.dim() - 1))))


def _conv_forward(self, x):
    return self._conv_forward(self._qat_act(x), quant_weight(self.weight), self.bias)


def _linear_forward(self, x):
    return F.linear(self._qat_act(x), quant_weight(self.weight), self.bias)


def _is_leaf(module: nn.Module) -> bool:
    return not any(True for _ in module.children()) and not isinstance(module, (nn.Conv2d, nn.Linear))


class Qat:
    """The fake quantizers installed on a model; :meth:`remove` restores it. A point (one quantized
    tensor of the graph, ``calib.qat_points``) is quantized where the graph quantizes it: at the
    output of the leaf module that made it (a ReLU, a pool: every reader sees it quantized, as in the
    graph; not when the module made two points: it was called twice), and at the input of each Conv /
    Linear that reads it. A point made inside a module's
    forward and read only by non-weighted ops (a residual Add's identity made by an Add) is not
    simulated: its range stays the builder's."""

    def __init__(self, model: nn.Module, points: list[dict], graph: str = ""):
        """``points``: ``{"readers": [modules], "source": module or "", "amax": float}`` each."""
        layers = dict(model.named_modules())
        readers = [m for p in points for m in p["readers"]]
        bad = sorted(m for m in readers if not isinstance(layers.get(m), (nn.Conv2d, nn.Linear)))
        if bad:
            raise QatError(f"the Q/DQ graph quantizes {len(bad)} layer(s) this model has no Conv/Linear for "
                           f"(first: {bad[0]}): the graph is another model's")
        if len(set(readers)) != len(readers):
            raise QatError("a layer reads two quantized activations in the Q/DQ graph: not a graph this project wrote")
        self.graph = graph
        self.points: list[dict] = []
        self.quantizers = nn.ModuleList()
        self.layers: dict[str, nn.Module] = {}
        self.hooks = []
        self.at_source: list[str] = []  # the modules whose output is quantized
        made = Counter(p["source"] for p in points)  # a module that made two points was called twice
        for p in points:
            source = layers.get(p["source"]) if p["source"] and made[p["source"]] == 1 else None
            source = source if source is not None and _is_leaf(source) else None
            if not p["readers"] and source is None:
                continue
            q = ActQuant(p["amax"])
            self.quantizers.append(q)
            self.points.append({"readers": list(p["readers"]), "source": p["source"], "amax": float(p["amax"])})
            if source is not None:
                self.at_source.append(p["source"])
                self.hooks.append(source.register_forward_hook(lambda _m, _a, out, q=q: q(out)))
            for name in p["readers"]:
                layer = self.layers[name] = layers[name]
                # not a submodule (no parameter or state_dict entry of the model's): idempotent after the
                # source's quantizer, a quantized value stays on the grid
                layer.__dict__["_qat_act"] = q
                fwd = _conv_forward if isinstance(layer, nn.Conv2d) else _linear_forward
                layer.forward = fwd.__get__(layer)
        self.hooks += [m.register_forward_pre_hook(in_eval) for m in model.modules()
                       if isinstance(m, nn.modules.batchnorm._BatchNorm)]

    def parameters(self):
        return self.quantizers.parameters()

    def state(self) -> dict:
        """What the checkpoint keeps: {"points": [{"readers", "source", "amax" (learnt)}], "graph": the
        guiding graph's name}."""
        return {"points": [{**p, "amax": float(q.amax.detach().clamp_min(MIN_AMAX))}
                           for p, q in zip(self.points, self.quantizers)], "graph": self.graph}

    def remove(self) -> None:
        for layer in self.layers.values():
            del layer.forward, layer.__dict__["_qat_act"]
        for h in self.hooks:
            h.remove()


def graph_points(graph: str | os.PathLike, card) -> list[dict]:
    """``{"readers", "source", "amax"}`` of every quantized activation of the Q/DQ graph ``graph`` (the
    builder's ``*.int8.qdq.onnx``), checked to be a graph of the model ``card`` describes (same
    architecture and labels)."""
    import onnx

    from calib.qat_points import activation_points
    from export.onnx_export import get_card
    from runtime.common.errors import CalibrationError, OnnxModelError

    path = Path(graph)
    if not path.is_file():
        raise QatError(f"--qat: no such graph: {path}")
    try:
        proto = onnx.load(str(path))
    except Exception as e:  # protobuf's DecodeError and friends
        raise QatError(f"--qat: {path} is not an ONNX file ({type(e).__name__})") from None
    try:
        theirs = get_card(proto, str(path))
        points = activation_points(proto)
    except (CalibrationError, OnnxModelError) as e:
        raise QatError(f"--qat: {path}: {e}") from None
    if (theirs.arch, tuple(theirs.labels)) != (card.arch, tuple(card.labels)):
        raise QatError(f"--qat: {path} is a graph of {theirs.arch} with {theirs.num_classes} labels, not of the model "
                       f"fine-tuned ({card.arch}, {card.num_classes} labels)")
    return [{"readers": list(p.readers), "source": p.source, "amax": p.amax} for p in points]


def learnt_points(checkpoint: str | os.PathLike) -> list[dict] | None:
    """The ranges a quantization-aware fine-tuning learnt (:meth:`Qat.state`'s points), or None for a
    checkpoint that was not fine-tuned so."""
    from tsi.checkpoint import load_checkpoint

    qat = load_checkpoint(checkpoint).get("qat")
    return list(qat["points"]) if isinstance(qat, dict) and qat.get("points") else None
