"""The models a benchmark run compares, and how each one is built for each backend.

Two sizes: the shipped demo checkpoint (TSI-R18, its own width/T/input size and trained weights)
with TSN and TSM built at the same geometry (random weights: cost only, no trained checkpoint of
them ships), and the paper's ResNet-50 at 224² (random weights, 174 classes: cost only).
A random-weight model is saved as a temporary checkpoint so that it goes through the same export
path (``export.friendly`` -> ``export.onnx_export``) as a trained one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common.r50 import R50, family_config
from tsi.config import TSIConfig

log = logging.getLogger(__name__)

BENCH_FAMILIES = ("tsn", "tsm", "tsi")


@dataclass(frozen=True)
class ModelSpec:
    key: str  # unique row key, e.g. "demo/tsi_r18/T8"
    group: str  # "demo" or "r50"
    family: str  # tsn | tsm | tsi
    cfg: TSIConfig
    checkpoint: Path | None  # trained weights, or None (random)

    @property
    def arch(self) -> str:
        return f"{self.family}_r{self.cfg.depth}"

    @property
    def trained(self) -> bool:
        return self.checkpoint is not None


def demo_specs(checkpoint: Path, frames: list[int], families=BENCH_FAMILIES) -> list[ModelSpec]:
    """The demo checkpoint's geometry; only TSI at the checkpoint's own T has trained weights."""
    from tsi.checkpoint import load_checkpoint

    base = TSIConfig.from_dict(load_checkpoint(checkpoint)["config"])
    specs = []
    for t in frames:
        for fam in families:
            cfg = family_config(base, fam, frames=t)
            trained = fam == "tsi" and t == base.frames and cfg == base
            specs.append(ModelSpec(f"demo/{fam}_r{cfg.depth}/T{t}", "demo", fam, cfg,
                                   checkpoint if trained else None))
    return specs


def r50_specs(frames: list[int], families=BENCH_FAMILIES) -> list[ModelSpec]:
    return [ModelSpec(f"r50/{fam}_r50/T{t}", "r50", fam, family_config(TSIConfig(**R50), fam, frames=t), None)
            for t in frames for fam in families]


def no_accuracy_reason(spec: ModelSpec) -> str:
    if spec.group == "r50":
        return "random weights (no trained R50 checkpoint here): cost only"
    return "random weights (only the demo TSI checkpoint is trained): cost only"


def build_torch(spec: ModelSpec, attention: str | None = None, seed: int = 0):
    """(eval model, card). ``attention`` overrides the config's implementation."""
    import torch

    from tsi.checkpoint import load_model, make_card
    from tsi.model import TSINet

    overrides = {"attention": attention} if attention else {}
    if spec.checkpoint is not None:
        return load_model(spec.checkpoint, **overrides)
    torch.manual_seed(seed)
    # no zero-init of the residual branches: with it, every branch (SME, CTI, the attention) adds
    # exactly 0 and a parity check through them could not fail; the cost is the same either way
    cfg = spec.cfg.replace(zero_init_residual=False, **overrides)
    model = TSINet(cfg).eval()
    return model, make_card(cfg, [f"class_{i}" for i in range(cfg.num_classes)])


def checkpoint_for(spec: ModelSpec, workdir: Path) -> Path:
    """The trained checkpoint, or a random-weight one written once into ``workdir``."""
    if spec.checkpoint is not None:
        return spec.checkpoint
    from tsi.checkpoint import save_checkpoint

    path = workdir / (spec.key.replace("/", "_") + ".pt")
    if not path.exists():
        model, card = build_torch(spec)
        save_checkpoint(path, model, card)
    return path


def model_cost(spec: ModelSpec) -> dict:
    """Params and GMACs of one view (batch 1), by tsi.info's counter."""
    from tsi.info import count_cost

    c = count_cost(spec.cfg.replace(attention="matmul"), spec.arch)
    return {"params_m": c.params_m, "gmacs": c.gmacs_total, "gmacs_conv_fc": c.gmacs_conv_fc}
