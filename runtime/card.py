"""The model card: everything a deployed model needs besides its weights.

One card travels with the model: inside every checkpoint (``ckpt["card"]``), in the ONNX
``metadata_props`` (key ``tsi.model_card``) and as ``<engine>.json`` beside every engine. The runtime
reads T, the input size and the preprocessing only from here, never from constants.

This module is the single definition of the card. It is torch-free (standard library only) because
the runtime on a Jetson imports it; the PyTorch side (``tsi``) imports it from here.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtime.common.files import atomic_write_text

CARD_FORMAT = "tsi-model-card"
CARD_VERSION = 1
ONNX_METADATA_KEY = "tsi.model_card"
MODES = ("clip", "online")
# how a frame becomes the square the crop is taken from: keep its aspect (short side to
# resize_short, crops cut the long side) or squash the whole frame to resize_short x resize_short
RESIZE_MODES = ("short_side", "square")

# Bounds of what any real model uses, checked before anything is allocated from a card or config.
# The largest input tensor they allow, 64 x 3 x 640^2 float32 per clip, is 315 MB; the saliency
# attention's own bound (its L^2 scores) is in tsi.config.
MAX_FRAMES = 64  # T: TSN/TSM/TSI use 8-32
MAX_INPUT_SIZE = 640  # crop side in pixels
MAX_RESIZE_RATIO = 2  # resize_short <= 2 x input_size (ImageNet practice: 256/224 = 1.14)
MAX_FRAME_STEP = 64  # span_frames <= 64 x frames: a sampled frame every 64 source frames at most
MAX_CLASSES = 10_000  # Kinetics-700 has 700; ImageNet-21k-size heads are not video models
MAX_LABEL_CHARS = 200
MAX_FPS = 1000.0
MAX_CARD_BYTES = 4 << 20  # a card's JSON text: 10,000 labels of 200 characters fit
MAX_CONFIG_DEPTH = 2  # the card's config: a flat dict of scalars and lists of scalars


class CardError(ValueError):
    """A model card that is missing, malformed or does not match its model."""


@dataclass(frozen=True)
class ModelCard:
    """Labels, clip geometry and preprocessing of one model.

    Preprocessing (applied per frame, in this order): BGR->RGB if ``color == "RGB"``; resize so the
    short side is ``resize_short`` (``resize == "short_side"``) or squash the whole frame to
    ``resize_short``² (``resize == "square"``: nothing of a wide frame is cut off), bilinear; centre
    crop ``input_size``²; scale to [0, 1]; subtract ``mean`` and divide by ``std`` (per RGB channel);
    layout CHW. A clip is ``frames`` such frames, input tensor ``(N, frames, 3, input_size,
    input_size)`` (layout ``NTCHW``).

    Sampling: the training clips take ``frames`` frames, one from the centre of each of ``frames``
    equal segments of a window of ``span_frames`` source frames (TSN centre sampling); a live runtime
    therefore keeps a window of the last ``span_frames`` frames and reads every
    ``span_frames / frames``-th one. ``fps`` is the frame rate the model was trained at.

    ``mode``: ``"clip"`` (input a whole clip, output its logits: the sliding-window runtime) or
    ``"online"`` (the streaming step of a causal model, ``tsi.streaming``: input ``frame``
    (N, 3, S, S) and the state tensors, output ``logits`` of that frame and each state as
    ``<name>.next``; the runtime feeds one sampled frame per call and carries the state).
    """

    arch: str
    labels: tuple[str, ...]
    frames: int
    input_size: int
    resize_short: int
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    color: str = "RGB"
    layout: str = "NTCHW"
    span_frames: int = 0  # 0 means "the whole video" (offline evaluation only)
    fps: float = 30.0
    precision: str = "fp32"
    mode: str = "clip"
    source_sha256: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    # an INT8 graph's measured choice (export.int8_choice): method, agreement with FP32 on held-out
    # clips, whether it is within the build's bound, the layers kept in float; empty otherwise
    quantization: dict[str, Any] = field(default_factory=dict)
    resize: str = RESIZE_MODES[0]

    def __post_init__(self) -> None:
        _check_types(self)
        object.__setattr__(self, "labels", tuple(self.labels))
        object.__setattr__(self, "mean", tuple(float(x) for x in self.mean))
        object.__setattr__(self, "std", tuple(float(x) for x in self.std))
        self.validate()

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        """Shape of one clip without the batch axis: (T, 3, H, W)."""
        return (self.frames, 3, self.input_size, self.input_size)

    @property
    def frame_step(self) -> int:
        """Source frames between two sampled frames of a live window (at least 1)."""
        if self.span_frames <= 0:
            return 1
        return max(1, self.span_frames // self.frames)

    def validate(self) -> None:
        problems = []
        if not self.labels:
            problems.append("labels is empty")
        if len(set(self.labels)) != len(self.labels):
            problems.append("labels has duplicates")
        if len(self.labels) > MAX_CLASSES:
            problems.append(f"{len(self.labels)} labels, at most {MAX_CLASSES}")
        if any(not x or len(x) > MAX_LABEL_CHARS for x in self.labels):
            problems.append(f"every label must be 1 to {MAX_LABEL_CHARS} characters")
        if not 2 <= self.frames <= MAX_FRAMES:
            problems.append(f"frames must be 2 to {MAX_FRAMES} (got {self.frames})")
        if not 16 <= self.input_size <= MAX_INPUT_SIZE:
            problems.append(f"input_size must be 16 to {MAX_INPUT_SIZE} (got {self.input_size})")
        if self.resize_short < self.input_size:
            problems.append(
                f"resize_short ({self.resize_short}) is smaller than input_size ({self.input_size})"
            )
        elif self.resize_short > MAX_RESIZE_RATIO * self.input_size:
            problems.append(f"resize_short ({self.resize_short}) is over {MAX_RESIZE_RATIO} x input_size "
                            f"({self.input_size})")
        if not 0 <= self.span_frames <= MAX_FRAME_STEP * self.frames:
            problems.append(f"span_frames must be 0 to {MAX_FRAME_STEP} x frames = "
                            f"{MAX_FRAME_STEP * self.frames} (got {self.span_frames})")
        if not (math.isfinite(self.fps) and 0 < self.fps <= MAX_FPS):
            problems.append(f"fps must be a number in (0, {MAX_FPS:g}] (got {self.fps})")
        if len(self.mean) != 3 or len(self.std) != 3:
            problems.append("mean and std need 3 values (RGB)")
        if not all(math.isfinite(v) for v in (*self.mean, *self.std)):
            problems.append("mean and std must be finite numbers")
        elif any(s <= 0 for s in self.std):
            problems.append("std values must be > 0")
        if self.color not in ("RGB", "BGR"):
            problems.append(f"color must be RGB or BGR (got {self.color!r})")
        if self.layout != "NTCHW":
            problems.append(f"layout must be NTCHW (got {self.layout!r})")
        if self.resize not in RESIZE_MODES:
            problems.append(f"resize must be one of {RESIZE_MODES} (got {self.resize!r})")
        if self.mode not in MODES:
            problems.append(f"mode must be one of {MODES} (got {self.mode!r})")
        if self.precision not in ("fp32", "fp16", "int8"):
            problems.append(f"precision must be fp32, fp16 or int8 (got {self.precision!r})")
        if problems:
            raise CardError("invalid model card: " + "; ".join(problems))

    # -- serialisation -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["labels"] = list(self.labels)
        d["mean"] = list(self.mean)
        d["std"] = list(self.std)
        if not d["quantization"]:  # only INT8 graphs have one: other cards read as before
            del d["quantization"]
        if d["resize"] == RESIZE_MODES[0]:  # the default is left out: such cards read as before
            del d["resize"]
        return {"format": CARD_FORMAT, "version": CARD_VERSION, **d}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "model card") -> "ModelCard":
        if not isinstance(data, dict):
            raise CardError(f"{source}: expected a JSON object, got {type(data).__name__}")
        if data.get("format") != CARD_FORMAT:
            raise CardError(f"{source}: not a TSI model card (format={data.get('format')!r})")
        if data.get("version") != CARD_VERSION:
            raise CardError(
                f"{source}: card version {data.get('version')!r}, this code reads {CARD_VERSION}"
            )
        names = {f.name for f in dataclasses.fields(cls)}
        missing = [n for n in ("arch", "labels", "frames", "input_size", "resize_short") if n not in data]
        if missing:
            raise CardError(f"{source}: missing field(s) {', '.join(missing)}")
        unknown = sorted(set(data) - names - {"format", "version"})
        if unknown:
            raise CardError(f"{source}: unknown field(s) {', '.join(unknown)}")
        kwargs = {k: v for k, v in data.items() if k in names}
        try:
            return cls(**kwargs)
        except CardError as e:
            raise CardError(f"{source}: {e}") from None
        except (TypeError, ValueError) as e:
            raise CardError(f"{source}: {e}") from None

    @classmethod
    def from_json(cls, text: str | bytes, source: str = "model card") -> "ModelCard":
        if len(text) > MAX_CARD_BYTES:
            raise CardError(f"{source}: {len(text)} bytes, a model card is at most {MAX_CARD_BYTES}")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise CardError(f"{source}: not valid JSON ({e})") from None
        except UnicodeDecodeError:
            raise CardError(f"{source}: not UTF-8 text") from None
        except RecursionError:
            raise CardError(f"{source}: JSON nested too deeply to be a model card") from None
        return cls.from_dict(data, source)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ModelCard":
        path = Path(path)
        if not path.is_file():
            raise CardError(f"model card not found: {path}")
        if path.stat().st_size > MAX_CARD_BYTES:
            raise CardError(f"{path}: {path.stat().st_size} bytes, a model card is at most {MAX_CARD_BYTES}")
        return cls.from_json(path.read_bytes(), str(path))

    def save(self, path: str | os.PathLike) -> Path:
        """Write the card as JSON atomically (temporary file, then rename)."""
        return atomic_write_text(Path(path), self.to_json() + "\n")

    def replace(self, **changes: Any) -> "ModelCard":
        return dataclasses.replace(self, **changes)


_INT_FIELDS = ("frames", "input_size", "resize_short", "span_frames")
_STR_FIELDS = ("arch", "color", "layout", "precision", "mode", "source_sha256", "resize")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _depth(v: Any, limit: int = MAX_CONFIG_DEPTH + 1) -> int:
    """Nesting depth of lists and dicts (a scalar is 0), looked at no deeper than ``limit``."""
    if not isinstance(v, (list, tuple, dict)):
        return 0
    if limit <= 0:
        return 1
    children = v.values() if isinstance(v, dict) else v
    return 1 + max((_depth(x, limit - 1) for x in children), default=0)


def _check_types(card: "ModelCard") -> None:
    """Wrong types are refused by name before any value is used (a string of labels is not a list
    of labels; ``frames: 8.5`` is not a frame count)."""
    problems = [f"{n} must be an integer (got {getattr(card, n)!r:.40})" for n in _INT_FIELDS
                if not _is_int(getattr(card, n))]
    problems += [f"{n} must be a string" for n in _STR_FIELDS if not isinstance(getattr(card, n), str)]
    if not isinstance(card.labels, (list, tuple)) or not all(isinstance(x, str) for x in card.labels):
        problems.append("labels must be a list of strings")
    for n in ("mean", "std"):
        v = getattr(card, n)
        if not isinstance(v, (list, tuple)) or not all(_is_number(x) for x in v):
            problems.append(f"{n} must be a list of numbers")
    if not _is_number(card.fps):
        problems.append("fps must be a number")
    for n in ("config", "quantization"):
        if not isinstance(getattr(card, n), dict) or _depth(getattr(card, n)) > MAX_CONFIG_DEPTH:
            problems.append(f"{n} must be an object of values and lists (nested at most {MAX_CONFIG_DEPTH} deep)")
    if problems:
        raise CardError("invalid model card: " + "; ".join(problems))


def card_path_for(model_path: str | os.PathLike) -> Path:
    """The card that sits beside a model file: ``model.engine`` -> ``model.json``."""
    return Path(model_path).with_suffix(".json")
