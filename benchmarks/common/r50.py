"""The paper's ResNet-50 geometry (224², 174 classes, random weights: cost only) and a family's
config at any geometry: what the suite and the CPU attention study build."""

from __future__ import annotations

from tsi.config import TSIConfig
from tsi.model import FAMILIES

R50 = dict(depth=50, input_size=224, num_classes=174)


def family_config(base: TSIConfig, family: str, **changes) -> TSIConfig:
    return base.replace(**FAMILIES[family], **changes)


def export_r50(folder, families=("tsn", "tsi"), *, frames: int = 8, seed: int = 0) -> tuple[dict, dict]:
    """Random-weight R50 models of ``families`` (seed ``seed``, no zero-initialised residual branches:
    every branch computes) exported to ``folder/<family>.onnx``: ({family: path}, {family: model})."""
    from pathlib import Path

    import torch

    from export.onnx_export import export_onnx
    from tsi.checkpoint import make_card
    from tsi.model import TSINet

    torch.manual_seed(seed)
    paths, nets = {}, {}
    for fam in families:
        cfg = family_config(TSIConfig(**R50), fam, frames=frames).replace(zero_init_residual=False)
        nets[fam] = TSINet(cfg).eval()
    for fam in families:  # built first: an export draws from torch's generator
        card = make_card(nets[fam].cfg, [f"class_{i}" for i in range(R50["num_classes"])])
        paths[fam] = export_onnx(nets[fam], card, Path(folder) / f"{fam}.onnx", source_sha256="random")
    return paths, nets
