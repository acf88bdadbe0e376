"""Parameters and multiply-accumulates of TSN / TSM / TSI, counted by torch's own FLOP counter.

    python -m tsi.info [--frames T ...] [--size S] [--models tsn_r50 tsm_r50 tsi_r50]

The paper's "GFLOPs" are multiply-accumulates (MACs) of conv and linear layers; the saliency
attention adds two batched matmuls (Q K^T and A V) per frame pair, which the paper's counter may or
may not include. Both counts are printed: ``conv+fc`` and ``+attention``.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from tsi.config import TSIConfig, field_defaults
from tsi.cli import UsageError, cli_main, parser, positive_int
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


DEFAULTS = field_defaults()


def measure(name: str, frames: int = DEFAULTS["frames"], size: int = DEFAULTS["input_size"],
            num_classes: int = DEFAULTS["num_classes"]) -> Cost:
    """One view (1 clip of T frames at size², batch 1). Attention counted in its matmul form; the
    model is built on the meta device (shapes only: the counts without the arithmetic)."""
    with torch.device("meta"):
        model = create_model(name, frames=frames, num_classes=num_classes, input_size=size,
                             attention="matmul").eval()
    return count_model(model, name)


def count_cost(cfg: TSIConfig, name: str | None = None) -> Cost:
    """:func:`measure` for any config (e.g. a checkpoint's, with its own width)."""
    with torch.device("meta"):
        model = TSINet(cfg.replace(attention="matmul")).eval()
    return count_model(model, name or arch_name(cfg))


def count_model(model: torch.nn.Module, name: str) -> Cost:
    """Params and MACs of one view of ``model`` (its config's T and input size, batch 1)."""
    frames, size = model.cfg.frames, model.cfg.input_size
    device = next(model.parameters()).device  # "meta" from measure / count_cost
    conv_fc, attn = count_macs(model, torch.zeros(1, frames, 3, size, size, device=device))
    params = sum(p.numel() for p in model.parameters())
    return Cost(name, frames, size, params / 1e6, conv_fc / 1e9, attn / 1e9)


def count_macs(fn, *args) -> tuple[int, int]:
    """(conv+fc MACs, attention-matmul MACs) of one call ``fn(*args)``, no gradients."""
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        fn(*args)
    counts = counter.get_flop_counts()["Global"]
    unknown = [op for op in counts if op not in CONV_LINEAR_OPS | ATTENTION_OPS]
    if unknown:  # never silently drop a counted op
        raise RuntimeError(f"FLOP counter reported ops not classified here: {unknown}")
    # torch counts 2 FLOPs per multiply-accumulate
    conv_fc = sum(v for op, v in counts.items() if op in CONV_LINEAR_OPS) // 2
    attn = sum(v for op, v in counts.items() if op in ATTENTION_OPS) // 2
    return conv_fc, attn


def table(costs: list[Cost]) -> str:
    rows = ["| model | T | input | params (M) | GMACs conv+fc | GMACs +attention |",
            "|---|---|---|---|---|---|"]
    for c in costs:
        rows.append(f"| {c.name} | {c.frames} | {c.size}² | {c.params_m:.2f} | "
                    f"{c.gmacs_conv_fc:.2f} | {c.gmacs_total:.2f} |")
    return "\n".join(rows)


def run(argv: list[str] | None = None) -> list[Cost]:
    """The CLI's work, returning its result (``main`` is the console script: exit code 0)."""
    p = parser("tsi-info", __doc__)
    p.add_argument("--models", nargs="+", default=["tsn_r50", "tsm_r50", "tsi_r50"])
    t = DEFAULTS["frames"]
    p.add_argument("--frames", nargs="+", type=positive_int, default=[t, 2 * t],
                   help="clip lengths T (%(default)s: the paper's two rows)")
    p.add_argument("--size", type=positive_int, default=DEFAULTS["input_size"], help="input size (%(default)s)")
    p.add_argument("--num-classes", type=positive_int, default=DEFAULTS["num_classes"],
                   help="classes (%(default)s: Something-Something)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:  # the configs' own bounds (tsi.config) before any model is built
        for t in args.frames:
            TSIConfig(frames=t, input_size=args.size, num_classes=args.num_classes)
    except ValueError as e:
        raise UsageError(f"--frames/--size/--num-classes: {e}") from None
    costs = [measure(m, t, args.size, args.num_classes) for t in args.frames for m in args.models]
    print(table(costs))
    return costs


def main(argv: list[str] | None = None) -> int:
    return cli_main(run, argv, "tsi-info")


if __name__ == "__main__":
    sys.exit(main())
