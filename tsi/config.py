"""One frozen config per model; saved inside every checkpoint and the model card."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

MOTIONS = ("none", "me", "sme")
TEMPORALS = ("none", "tsm", "tim", "cti")
ALIGNS = ("mul", "add", "none")
CI_MODES = ("cross", "independent", "addition")
FUSIONS = ("cascade", "summation", "concatenation")
ATTENTIONS = ("sdpa", "matmul", "fused")
DEPTHS = (18, 34, 50, 101)


@dataclass(frozen=True)
class TSIConfig:
    """Architecture of a TSI-family network.

    ``motion`` x ``temporal`` spans the paper's baselines: TSN = (none, none), TSM = (none, tsm),
    TIM = (none, tim), TIM+ME = (me, tim), CTI = (none, cti), SME+TIM = (sme, tim),
    TSI = (sme, cti). The remaining fields are the ablation switches of Table 4.
    """

    depth: int = 50
    frames: int = 8  # T: static, every temporal reshape uses it
    num_classes: int = 174
    input_size: int = 224
    base_width: int = 64  # stage-2 bottleneck width; 64 is the standard ResNet
    motion: str = "sme"
    temporal: str = "cti"
    # SME (Sec. 3.2)
    sme_reduction: int = 16  # r: d = w / r
    sme_levels: int = 4  # K pyramidal depthwise convs; 1 = "simple"
    sme_align: str = "mul"  # saliency alignment: Hadamard ("mul"), "add", or off ("none")
    sme_channel_attention: bool = True
    attention: str = "sdpa"  # saliency attention implementation: sdpa | matmul | fused
    # CTI (Sec. 3.3)
    cti_groups: int = 4
    ci_mode: str = "cross"
    # module fusion (Table 4d)
    fusion: str = "cascade"
    # placement (Table 4c)
    tsi_stages: tuple[int, ...] = (2, 3, 4, 5)
    tsi_blocks: str = "all"  # "all" blocks of the chosen stages, or the "first" of each
    # TSM
    shift_div: int = 8  # 1/8 of the channels each way
    # causal: every temporal operation looks only backwards (online / streaming use, tsi/streaming.py):
    # SME/ME pair (t-1, t) and the first frame gets zero motion; CTI/TIM's temporal conv covers
    # (t-2, t-1, t); TSM's shift takes 1/shift_div of the channels from t-1 and 1/shift_div from t-2
    causal: bool = False
    # head
    dropout: float = 0.5
    # init: start every residual branch at zero (last BN gamma = 0)
    zero_init_residual: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "tsi_stages", tuple(int(s) for s in self.tsi_stages))
        problems = []

        def check(name: str, allowed: tuple) -> None:
            if getattr(self, name) not in allowed:
                problems.append(f"{name}={getattr(self, name)!r} is not one of {allowed}")

        check("depth", DEPTHS)
        check("motion", MOTIONS)
        check("temporal", TEMPORALS)
        check("sme_align", ALIGNS)
        check("ci_mode", CI_MODES)
        check("fusion", FUSIONS)
        check("attention", ATTENTIONS)
        check("tsi_blocks", ("all", "first"))
        if self.frames < 2:
            problems.append(f"frames must be >= 2 (got {self.frames})")
        if self.num_classes < 1:
            problems.append(f"num_classes must be >= 1 (got {self.num_classes})")
        if self.input_size < 32 or self.input_size % 16:
            problems.append(f"input_size must be a multiple of 16, at least 32 (got {self.input_size})")
        if self.base_width % (self.cti_groups * 2):
            problems.append(f"base_width must be divisible by {self.cti_groups * 2}")
        if self.base_width // self.sme_reduction < 1:
            problems.append("sme_reduction leaves no channels at stage 2")
        if self.sme_levels < 1:
            problems.append(f"sme_levels must be >= 1 (got {self.sme_levels})")
        if not set(self.tsi_stages) <= {2, 3, 4, 5}:
            problems.append(f"tsi_stages must be within 2..5 (got {self.tsi_stages})")
        if self.fusion != "cascade" and (self.motion == "none" or self.temporal in ("none", "tsm")):
            problems.append("summation/concatenation fusion needs both a motion and a temporal module")
        if problems:
            raise ValueError("invalid TSIConfig: " + "; ".join(problems))

    @property
    def has_block_modules(self) -> bool:
        return self.motion != "none" or self.temporal in ("tim", "cti")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["tsi_stages"] = list(self.tsi_stages)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TSIConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown TSIConfig field(s): {', '.join(unknown)}")
        return cls(**d)

    def replace(self, **changes: Any) -> "TSIConfig":
        return dataclasses.replace(self, **changes)


def field_defaults(cls: type = TSIConfig) -> dict[str, Any]:
    """``{field: default}`` of a dataclass (:class:`TSIConfig` unless told): where command-line
    defaults are read from, so each default is stated once, in the class."""
    return {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}
