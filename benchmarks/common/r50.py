"""The paper's ResNet-50 geometry (224², 174 classes, random weights: cost only) and a family's
config at any geometry: what the suite and the CPU attention study build."""

from __future__ import annotations

from tsi.config import TSIConfig
from tsi.model import FAMILIES

R50 = dict(depth=50, input_size=224, num_classes=174)


def family_config(base: TSIConfig, family: str, **changes) -> TSIConfig:
    return base.replace(**FAMILIES[family], **changes)
