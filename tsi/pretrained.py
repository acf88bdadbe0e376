"""ImageNet ResNet weights (torchvision / timm files) into any TSI-family network.

    model = create_model("tsi_r50", num_classes=174, pretrained="resnet50-11ad3fa6.pth")
    python -m tsi.train --arch tsi_r50 --pretrained resnet50-11ad3fa6.pth ...

The paper initialises every model from an ImageNet-trained ResNet. Nothing is downloaded here: the
user gives the file. Where it comes from:

* torchvision: ``torchvision.models.resnet50(weights="IMAGENET1K_V1").state_dict()`` saved with
  ``torch.save``, or the file torchvision itself caches, e.g. ``~/.cache/torch/hub/checkpoints/
  resnet50-11ad3fa6.pth`` (URLs in torchvision's ``ResNet50_Weights``; ``resnet18-f37072fd.pth``,
  ``resnet34-b627a593.pth``, ``resnet101-63fe2227.pth``). V1 weights are the paper's era; V2
  (``IMAGENET1K_V2``) load the same way.
* timm: ``timm.create_model("resnet50.a1_in1k", pretrained=True).state_dict()``, or the
  ``model.safetensors`` / ``pytorch_model.bin`` of the Hugging Face repository ``timm/resnet50.a1_in1k``
  (timm's ResNet keeps torchvision's key names).

Files: ``.safetensors`` (read with the ``safetensors`` package) or anything ``torch.load`` reads with
``weights_only=True`` (``.pth``, ``.pt``, ``.bin``); a state dict at the top level or under
``state_dict`` / ``model`` / ``module``, with or without a ``module.`` (DataParallel) prefix.

What is loaded: the stem, every convolution and BatchNorm of the residual blocks (including their
running statistics) and the shortcuts. What keeps its own initialisation: the inserted SME / CTI /
TIM / ME modules and the classifier (the file's 1000-class ``fc`` is reported as unused). TSM's shift
has no weights. A file of another depth, a base width other than the file's, or a file that is not
a ResNet raises :class:`PretrainedError` naming the problem.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from tsi.backbone import STAGE_BLOCKS
from tsi.cli import UsageError

log = logging.getLogger(__name__)

WRAPPER_KEYS = ("state_dict", "model", "module")
# torchvision/timm block layer name -> this project's (head / tail Sequential index)
BOTTLENECK_MAP = {"conv1": "head.0", "bn1": "head.1", "conv2": "head.3", "bn2": "head.4",
                  "conv3": "tail.0", "bn3": "tail.1", "downsample.0": "shortcut.0",
                  "downsample.1": "shortcut.1"}
BASIC_MAP = {"conv1": "head.0", "bn1": "head.1", "conv2": "tail.0", "bn2": "tail.1",
             "downsample.0": "shortcut.0", "downsample.1": "shortcut.1"}
STEM_MAP = {"conv1": "stem.0", "bn1": "stem.1"}
BLOCK_KEY = re.compile(r"^layer([1-4])\.(\d+)\.(conv\d|bn\d|downsample\.[01])\.(\w+)$")
STEM_KEY = re.compile(r"^(conv1|bn1)\.(\w+)$")


class PretrainedError(UsageError):
    """A weights file that cannot initialise the model; the message names the file and why."""


@dataclass
class PretrainedReport:
    """What :func:`load_pretrained` did: model keys ``loaded`` from the file, model keys ``missing``
    from it (kept at their own initialisation), file keys ``unexpected`` (unused)."""

    path: str
    depth: int
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    def summary(self) -> str:
        def few(keys: list[str]) -> str:
            return ", ".join(keys[:4]) + (", ..." if len(keys) > 4 else "") if keys else "none"

        modules = sorted({"unit." + k.split(".unit.", 1)[1].split(".")[0] if ".unit." in k else k.split(".")[0]
                          for k in self.missing})
        return (f"ImageNet ResNet-{self.depth} weights from {self.path}: {len(self.loaded)} tensors loaded; "
                f"{len(self.missing)} kept their own initialisation ({few(self.missing)}; modules: "
                f"{', '.join(modules[:8]) or 'none'}); {len(self.unexpected)} unused ({few(self.unexpected)})")


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of a ``.safetensors`` file or a ``torch.load``-able (weights only) file."""
    path = Path(path)
    if not path.is_file():
        raise PretrainedError(f"{path}: no such weights file")
    if path.suffix.lower() == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError:
            raise PretrainedError(f"{path}: reading .safetensors needs the safetensors package "
                                  "(pip install safetensors)") from None
        try:
            return load_file(str(path), device="cpu")
        except Exception as e:  # the package raises its own SafetensorError for a bad header
            raise PretrainedError(f"{path}: not a readable safetensors file ({e})") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise PretrainedError(f"{path}: not a weights file torch.load can read with weights_only=True "
                              f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    for _ in range(2):  # {"state_dict": {...}}, {"model": {...}}, one level of nesting at most twice
        if isinstance(obj, dict) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
            inner = next((obj[k] for k in WRAPPER_KEYS if isinstance(obj.get(k), dict)), None)
            if inner is None:
                break
            obj = inner
    if not isinstance(obj, dict) or not any(isinstance(v, torch.Tensor) for v in obj.values()):
        raise PretrainedError(f"{path}: holds no state dict of tensors (got {type(obj).__name__})")
    sd = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return sd


def resnet_depth(sd: dict[str, torch.Tensor], path: str = "") -> int:
    """Depth (18/34/50/101) of a torchvision/timm-layout ResNet state dict, from its block counts."""
    if "conv1.weight" not in sd or not any(k.startswith("layer4.") for k in sd):
        sample = ", ".join(sorted(sd)[:4])
        raise PretrainedError(f"{path}: not a torchvision/timm ResNet state dict (no conv1.weight / "
                              f"layer1..layer4 keys; it has {len(sd)} tensors such as {sample})")
    blocks = []
    for i in range(1, 5):
        ids = {int(m.group(2)) for k in sd if (m := BLOCK_KEY.match(k)) and m.group(1) == str(i)}
        blocks.append(len(ids))
    bottleneck = "layer1.0.conv3.weight" in sd
    for depth, counts in STAGE_BLOCKS.items():
        if tuple(blocks) == counts and bottleneck == (depth >= 50):
            return depth
    kind = "bottleneck" if bottleneck else "basic-block"
    raise PretrainedError(f"{path}: a {kind} ResNet with {tuple(blocks)} blocks per stage, which is "
                          f"none of ResNet-18/34/50/101 ({', '.join(f'{d}: {c}' for d, c in STAGE_BLOCKS.items())})")


def to_project_keys(sd: dict[str, torch.Tensor], depth: int) -> tuple[dict[str, torch.Tensor], list[str]]:
    """torchvision/timm key names -> this project's backbone names (``backbone.stem.0.weight``,
    ``backbone.stages.0.0.head.0.weight``, ...); returns (mapped, unused file keys)."""
    block_map = BOTTLENECK_MAP if depth >= 50 else BASIC_MAP
    mapped, unused = {}, []
    for k, v in sd.items():
        if m := STEM_KEY.match(k):
            mapped[f"backbone.{STEM_MAP[m.group(1)]}.{m.group(2)}"] = v
        elif (m := BLOCK_KEY.match(k)) and m.group(3) in block_map:
            stage, blk, layer, param = m.groups()
            mapped[f"backbone.stages.{int(stage) - 1}.{blk}.{block_map[layer]}.{param}"] = v
        else:
            unused.append(k)  # fc.* (the ImageNet classifier) and anything unknown
    return mapped, sorted(unused)


def load_pretrained(model: nn.Module, path: str | os.PathLike) -> PretrainedReport:
    """Copy an ImageNet ResNet file's backbone weights into ``model`` (a :class:`tsi.model.TSINet`);
    everything the file does not hold keeps its initialisation. Returns the report (also logged)."""
    cfg = model.cfg
    sd = read_state_dict(path)
    depth = resnet_depth(sd, str(path))
    if depth != cfg.depth:
        raise PretrainedError(f"{path}: holds ImageNet ResNet-{depth} weights but the model is a "
                              f"ResNet-{cfg.depth} (choose the *_r{depth} architecture or a ResNet-{cfg.depth} file)")
    stem = sd["conv1.weight"]
    if tuple(stem.shape[:2]) != (cfg.base_width, 3):
        raise PretrainedError(f"{path}: the file's stem has {stem.shape[0]} channels but the model's "
                              f"base width is {cfg.base_width} (ImageNet ResNets need base_width=64)")
    mapped, unused = to_project_keys(sd, depth)
    own = model.state_dict()
    loaded, mismatched = {}, []
    for k, v in mapped.items():
        if k not in own:
            unused.append(k)
        elif own[k].shape != v.shape:
            mismatched.append(f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}")
            unused.append(k)
        else:
            loaded[k] = v.to(own[k].dtype)
    if mismatched:  # e.g. concatenation fusion widens the tail's input: those convs stay fresh
        log.warning("%s: %d tensors of another shape than the model's, kept fresh: %s", path,
                    len(mismatched), "; ".join(mismatched[:3]))
    model.load_state_dict(loaded, strict=False)
    report = PretrainedReport(str(path), depth, loaded=sorted(loaded),
                              missing=sorted(set(own) - set(loaded)), unexpected=sorted(unused))
    log.info("%s", report.summary())
    return report
