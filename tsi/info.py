"""Parameters and multiply-accumulates of TSN / TSM / TSI, counted by torch's own FLOP counter.

    python -m tsi.info [--frames 8 16] [--size 224] [--models tsn_r50 tsm_r50 tsi_r50]

The paper's "GFLOPs" are multiply-accumulates (MACs) of conv and linear layers; the saliency
attention adds two batched matmuls (Q K^T and A V) per frame pair, which the paper's counter may or
may not include. Both counts are printed: ``conv+fc`` and ``+attention``.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from tsi.config import TSIConfig
from tsi.model import TSINet, arch_name, create_model

log = logging.getLogger(__name__)

aten = torch.ops.aten
CONV_LINEAR_OPS = {aten.convolution, aten.addmm, aten.mm}
ATTENTION_OPS = {aten.bmm, aten.baddbmm}


@dataclass(frozen=True)
class Cost:
    name: str
    frames: int
    size: int
    params_m: float
    gmacs_conv_fc: float
    gmacs_attention: float

    @property
    def gmacs_total(self) -> float:
        return self.gmacs_conv_fc + self.gmacs_attention


def measure(name: str, frames: int = 8, size: int = 224, num_classes: int = 174) -> Cost:
    """One view (1 clip of T frames at size², batch 1). Attention counted in its matmul form."""
    model = create_model(name, frames=frames, num_classes=num_classes, input_size=size,
                         attention="matmul").eval()
    return count_model(model, name)


def count_cost(cfg: TSIConfig, name: str | None = None) -> Cost:
    """:func:`measure` for any config (e.g. a checkpoint's, with its own width)."""
    return count_model(TSINet(cfg.replace(attention="matmul")).eval(), name or arch_name(cfg))


def count_model(model: torch.nn.Module, name: str) -> Cost:
    """Params and MACs of one view of ``model`` (its config's T and input size, batch 1)."""
    frames, size = model.cfg.frames, model.cfg.input_size
    x = torch.zeros(1, frames, 3, size, size)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(x)
    counts = counter.get_flop_counts()["Global"]
    unknown = [op for op in counts if op not in CONV_LINEAR_OPS | ATTENTION_OPS]
    if unknown:  # never silently drop a counted op
        raise RuntimeError(f"FLOP counter reported ops not classified here: {unknown}")
    conv_fc = sum(v for op, v in counts.items() if op in CONV_LINEAR_OPS)
    attn = sum(v for op, v in counts.items() if op in ATTENTION_OPS)
    params = sum(p.numel() for p in model.parameters())
    # torch counts 2 FLOPs per multiply-accumulate
    return Cost(name, frames, size, params / 1e6, conv_fc / 2e9, attn / 2e9)


def table(costs: list[Cost]) -> str:
    rows = ["| model | T | input | params (M) | GMACs conv+fc | GMACs +attention |",
            "|---|---|---|---|---|---|"]
    for c in costs:
        rows.append(f"| {c.name} | {c.frames} | {c.size}² | {c.params_m:.2f} | "
                    f"{c.gmacs_conv_fc:.2f} | {c.gmacs_total:.2f} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> list[Cost]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["tsn_r50", "tsm_r50", "tsi_r50"])
    p.add_argument("--frames", nargs="+", type=int, default=[8, 16])
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--num-classes", type=int, default=174, help="174 = Something-Something V1")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    costs = [measure(m, t, args.size, args.num_classes) for t in args.frames for m in args.models]
    print(table(costs))
    return costs


if __name__ == "__main__":
    main()
