"""One frozen config per model; saved inside every checkpoint and the model card."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from runtime.card import MAX_CLASSES, MAX_FRAMES, MAX_INPUT_SIZE

MOTIONS = ("none", "me", "sme")
TEMPORALS = ("none", "tsm", "tim", "cti")
ALIGNS = ("mul", "add", "none")
CI_MODES = ("cross", "independent", "addition")
FUSIONS = ("cascade", "summation", "concatenation")
ATTENTIONS = ("sdpa", "matmul", "fused")
# what the stem sees: the frames, or each frame less the one before (TSN's RGB difference, between
# the clip's sampled frames; the first takes the second's)
INPUT_MODES = ("rgb", "diff")
DEPTHS = (18, 34, 50, 101)

# Bounds beside the card's (runtime.card: frames, input size, classes), derived from memory:
MAX_BASE_WIDTH = 256  # 4x the standard ResNet: R50 at 256 has about 16x its 25 M parameters
# the saliency attention's scores, (T-1) x L^2 float32 per clip at stage 2 (L = (input_size/4)^2):
# 0.27 GB for TSI-R50 at 224^2, T=8; 8 GiB allows 512^2 at T=8 or 224^2 at T=64
MAX_ATTENTION_BYTES = 8 << 30
_BOUNDED = {"sme_levels": (1, 8), "cti_groups": (1, 16), "shift_div": (2, 64)}


@dataclass(frozen=True)
class TSIConfig:
    """Architecture of a TSI-family network.

    ``motion`` x ``temporal`` spans the paper's baselines: TSN = (none, none), TSM = (none, tsm),
    TIM = (none, tim), TIM+ME = (me, tim), CTI = (none, cti), SME+TIM = (sme, tim),
    TSI = (sme, cti). The remaining fields are the ablation switches of Table 4.
    """

    depth: int = 50
    frames: int = 8  # T: static, every temporal reshape uses it
    input_mode: str = "rgb"  # INPUT_MODES: the clip as it is, or its frame differences (in the graph)
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
        _check_types(self)
        object.__setattr__(self, "tsi_stages", tuple(self.tsi_stages))
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
        check("input_mode", INPUT_MODES)
        check("tsi_blocks", ("all", "first"))
        if not 2 <= self.frames <= MAX_FRAMES:
            problems.append(f"frames must be 2 to {MAX_FRAMES} (got {self.frames})")
        if not 1 <= self.num_classes <= MAX_CLASSES:
            problems.append(f"num_classes must be 1 to {MAX_CLASSES} (got {self.num_classes})")
        if not 32 <= self.input_size <= MAX_INPUT_SIZE or self.input_size % 16:
            problems.append(f"input_size must be a multiple of 16 from 32 to {MAX_INPUT_SIZE} (got {self.input_size})")
        for name, (lo, hi) in _BOUNDED.items():
            if not lo <= getattr(self, name) <= hi:
                problems.append(f"{name} must be {lo} to {hi} (got {getattr(self, name)})")
        if not 1 <= self.base_width <= MAX_BASE_WIDTH:
            problems.append(f"base_width must be 1 to {MAX_BASE_WIDTH} (got {self.base_width})")
        elif self.base_width % (self.cti_groups * 2):
            problems.append(f"base_width must be divisible by {self.cti_groups * 2}")
        if self.sme_reduction < 1 or self.base_width // self.sme_reduction < 1:
            problems.append(f"sme_reduction={self.sme_reduction} leaves no channels at stage 2 "
                            f"(base_width {self.base_width})")
        if not (math.isfinite(self.dropout) and 0 <= self.dropout < 1):
            problems.append(f"dropout must be in [0, 1) (got {self.dropout})")
        if self.motion == "sme" and not problems and self.attention_bytes > MAX_ATTENTION_BYTES:
            problems.append(f"the saliency attention of {self.frames} frames at {self.input_size}^2 needs "
                            f"{self.attention_bytes / 2**30:.1f} GiB of scores per clip, over "
                            f"{MAX_ATTENTION_BYTES >> 30} GiB")
        if not set(self.tsi_stages) <= {2, 3, 4, 5}:
            problems.append(f"tsi_stages must be within 2..5 (got {self.tsi_stages})")
        if self.fusion != "cascade" and (self.motion == "none" or self.temporal in ("none", "tsm")):
            problems.append("summation/concatenation fusion needs both a motion and a temporal module")
        if self.input_mode == "diff" and self.causal:
            problems.append("input_mode='diff' has no causal (online) form: its first frame reads the second")
        if problems:
            raise ValueError("invalid TSIConfig: " + "; ".join(problems))

    @property
    def attention_bytes(self) -> int:
        """float32 bytes of one clip's saliency-attention scores at stage 2, (T-1) x L^2."""
        return 4 * (self.frames - 1) * ((self.input_size // 4) ** 2) ** 2

    @property
    def has_block_modules(self) -> bool:
        return self.motion != "none" or self.temporal in ("tim", "cti")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["tsi_stages"] = list(self.tsi_stages)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TSIConfig":
        if not isinstance(d, dict):
            raise ValueError(f"a TSIConfig is a dict of fields, not {type(d).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown TSIConfig field(s): {', '.join(unknown)}")
        return cls(**d)

    def replace(self, **changes: Any) -> "TSIConfig":
        return dataclasses.replace(self, **changes)


def _check_types(cfg: TSIConfig) -> None:
    """Each field of the type its default has (an int is not a bool, 8.5 frames is no frame count),
    refused by name before any value is compared or used."""
    problems = []
    for f in dataclasses.fields(cfg):
        v, want = getattr(cfg, f.name), type(f.default)
        if want is int:
            ok = isinstance(v, int) and not isinstance(v, bool)
        elif want is float:
            ok = isinstance(v, (int, float)) and not isinstance(v, bool)
        elif want is tuple:
            ok = isinstance(v, (list, tuple)) and all(isinstance(x, int) and not isinstance(x, bool) for x in v)
        else:
            ok = isinstance(v, want)
        if not ok:
            problems.append(f"{f.name} must be {want.__name__} (got {v!r:.40})")
    if problems:
        raise ValueError("invalid TSIConfig: " + "; ".join(problems))


def field_defaults(cls: type = TSIConfig) -> dict[str, Any]:
    """``{field: default}`` of a dataclass (:class:`TSIConfig` unless told): where command-line
    defaults are read from, so each default is stated once, in the class."""
    return {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}
