"""The backend interface, and the checks shared by every backend: the model file, its card, and
that the two agree (input T and size, number of classes)."""

from __future__ import annotations

import abc
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Collection, Sequence

import numpy as np

from runtime.card import ONNX_METADATA_KEY, CardError, ModelCard, card_path_for

log = logging.getLogger(__name__)

__all__ = [
    "Backend",
    "BackendError",
    "BackendStopped",
    "OnlineModelError",
    "ModelOptions",
    "OpenedCard",
    "check_clip_io",
    "check_clip_model",
    "check_model_file",
    "check_model_matches_card",
    "resolve_card",
    "warn_if_tensorrt_graph",
]


class BackendError(RuntimeError):
    """A backend that cannot be loaded or run (missing package, bad engine, CUDA error...)."""


class BackendStopped(BackendError):
    """A wait inside the backend (for a served model's server to come back) ended by the run's stop
    event: the scheduler ends the streams as stopped, not as failed."""


class OnlineModelError(CardError):
    """A clip backend given a model whose card says ``mode: online`` (a streaming step model):
    :func:`runtime.backends.open_model` opens either kind, as its card says."""


def check_clip_model(model_path: Path, card: ModelCard, card_source: str) -> None:
    """Refuse a step model's card in a clip backend (before anything heavier is loaded)."""
    if card.mode == "online":
        raise OnlineModelError(f"{model_path}: card {card_source} has mode 'online' (a streaming step model): "
                               "run it online (runtime.backends.open_model; tsi-live picks it from the card)")


def warn_if_tensorrt_graph(model_path: Path, card: ModelCard, runner: str) -> None:
    """One warning when a backend other than TensorRT opens an INT8 ``.onnx`` graph (card precision
    int8: the exporter's Q/DQ graph, written for TensorRT to build an INT8 engine from); it still
    runs. An INT8 OpenVINO IR (``.xml``, ``export.cpu_int8``) is meant for CPUs: no warning."""
    if card.precision == "int8" and model_path.suffix.lower() == ".onnx":
        log.warning("%s is an INT8 Q/DQ graph (card precision int8) meant for TensorRT "
                    "(tsi-build-engine); %s runs its quantize/dequantize nodes as they are",
                    model_path.name, runner)


def warn_if_unfixed_int8_on_cpu_without_vnni(model_path: Path, card: ModelCard) -> None:
    """One warning when an INT8 IR quantized for CPUs with VNNI (``--int8-cpu-vnni``: the card's
    quantization ``overflow_fix`` "disable") opens on an x86 CPU without VNNI, whose 8-bit products
    can saturate on its full 8-bit weights; it still runs."""
    from runtime.common.cpu import VNNI_FLAGS, has_vnni

    fix = (card.quantization or {}).get("overflow_fix")
    if card.precision == "int8" and fix == "disable" and has_vnni() is False:
        log.warning("%s was quantized for CPUs with VNNI (--int8-cpu-vnni: full 8-bit weights, no overflow "
                    "fix); this CPU has none of %s, so its INT8 convolutions can saturate and lose accuracy: "
                    "rebuild without --int8-cpu-vnni for it", model_path.name, ", ".join(VNNI_FLAGS))


@dataclass(frozen=True)
class ModelOptions:
    """How to open a model, whatever its kind; :func:`runtime.backends.check_backend_options`
    refuses the options that do not apply to the file's backend."""

    providers: Sequence[str] | None = None  # onnxruntime
    threads: int | None = None  # onnxruntime, OpenVINO
    plugin: str | os.PathLike | None = None  # TensorRT
    cuda_graph: bool = False  # TensorRT
    device: str | int | None = None  # TensorRT (GPU index), torch and OpenVINO (device name)
    reconnect: Any = None  # Triton: the runtime.reconnect.ReconnectPolicy of a server that goes away
    stop: Any = None  # Triton: a threading.Event that ends a wait for the server


@dataclass(frozen=True)
class OpenedCard:
    """A model's card, read once by :func:`runtime.backends.open_model`: the card, where it came
    from, and what was opened to read it (an onnxruntime session; None for the other kinds)."""

    card: ModelCard | None
    source: str
    session: Any = None


class Backend(abc.ABC):
    """One inference engine. ``load`` then ``infer`` (any number of times) then ``close``; also a
    context manager. ``infer`` takes a float32 clip ``(N, T, 3, S, S)`` and returns float32 logits
    ``(N, classes)``.

    Batches: ``fixed_batch`` is the one batch size a static model takes (None: dynamic), and
    ``min_batch`` / ``max_batch`` the smallest / largest a dynamic one takes (None: any);
    :meth:`infer_batch` runs any number of clips within those limits (split, and padded)."""

    name: str = "backend"

    def __init__(self) -> None:
        self.card: ModelCard | None = None
        self.model_path: Path | None = None
        self.fixed_batch: int | None = None
        self.min_batch: int = 1
        self.max_batch: int | None = None

    @abc.abstractmethod
    def load(self, model_path: str | os.PathLike, card: ModelCard | str | os.PathLike | None = None
             ) -> "Backend":
        """Load the model; ``card`` (a card or a card path) overrides the one found with the model."""

    @abc.abstractmethod
    def infer(self, clip: np.ndarray) -> np.ndarray:
        """Logits ``(N, classes)`` for the clip ``(N, T, 3, S, S)``."""

    def infer_batch(self, clips: np.ndarray) -> np.ndarray:
        """Logits ``(N, classes)`` for any number N of clips: one :meth:`infer` when the model
        takes N, else chunks of the largest batch it takes, a chunk below the smallest batch it
        takes padded with zeros (and the padding's logits dropped)."""
        n = clips.shape[0]
        lo = self.fixed_batch or self.min_batch
        hi = self.fixed_batch or self.max_batch or max(n, lo)
        if lo <= n <= hi:
            return self.infer(clips)
        out = []
        for i in range(0, n, hi):
            chunk = clips[i:i + hi]
            k = chunk.shape[0]
            if k < lo:
                pad = np.zeros((lo,) + chunk.shape[1:], dtype=chunk.dtype)
                pad[:k] = chunk
                chunk = pad
            out.append(self.infer(chunk)[:k])
        return np.concatenate(out, axis=0)

    def close(self) -> None:
        """Free the backend's resources (idempotent)."""

    def take_outage(self) -> Any:
        """A served model's outage (:class:`runtime.backends.triton_client.Outage`) since the last
        call, which the scheduler reports as every stream's gap; None (a local model has none)."""
        return None

    def __enter__(self) -> "Backend":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def check_clip(self, clip: np.ndarray) -> None:
        if self.card is None:
            raise BackendError(f"{self.name}: load() a model first")
        expected = self.card.input_shape
        if not isinstance(clip, np.ndarray) or clip.ndim != 5 or tuple(clip.shape[1:]) != expected:
            shape = getattr(clip, "shape", None)
            raise ValueError(f"{self.name}: expected a clip (N, {', '.join(map(str, expected))}), "
                             f"got {shape}")
        if clip.dtype != np.float32:
            raise ValueError(f"{self.name}: expected a float32 clip, got {clip.dtype}")

    def batch_input(self, clip: np.ndarray) -> np.ndarray:
        """``clip`` checked (:meth:`check_clip`; the graph's static batch, ``self._batch``, if it has
        one) and in the graph's input type (``self._in_dtype``): what a host-memory backend feeds."""
        self.check_clip(clip)
        if self._batch is not None and clip.shape[0] != self._batch:
            raise ValueError(f"{self.model_path} takes batch {self._batch}, got {clip.shape[0]}")
        return clip if self._in_dtype is np.float32 else clip.astype(self._in_dtype)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.model_path)!r})"


def check_model_file(model_path: str | os.PathLike) -> Path:
    path = Path(model_path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    return path


def load_given_card(card: ModelCard | str | os.PathLike | None) -> tuple[ModelCard | None, str | None]:
    """A card given as a JSON path, read (a bad one is refused here), and its source; a card or None
    as it is (no source)."""
    if card is None or isinstance(card, ModelCard):
        return card, None
    return ModelCard.load(card), str(card)


def resolve_card(model_path: Path, card: ModelCard | str | os.PathLike | None = None,
                 embedded: str | None = None, card_source: str | None = None) -> tuple[ModelCard, str]:
    """The model's card and where it came from: ``card`` if given (a card, said to come from
    ``card_source``, or a JSON path), else the ONNX metadata (``embedded``), else
    ``<model>.json`` beside the model."""
    if isinstance(card, ModelCard):
        return card, card_source or "the card passed in"
    if card is not None:
        return ModelCard.load(card), str(card)
    sidecar = card_path_for(model_path)
    if embedded:
        source = f"{model_path} (metadata_props {ONNX_METADATA_KEY!r})"
        found = ModelCard.from_json(embedded, source)
        if sidecar.is_file():
            try:
                beside = ModelCard.load(sidecar)
            except CardError as e:
                log.warning("ignoring %s beside the model: %s", sidecar, e)
            else:
                if beside != found:
                    log.warning("%s differs from the card embedded in %s; using the embedded one",
                                sidecar, model_path)
        return found, source
    if sidecar.is_file():
        return ModelCard.load(sidecar), str(sidecar)
    where = (f"its ONNX metadata_props key {ONNX_METADATA_KEY!r} and {sidecar}"
             if model_path.suffix == ".onnx" else str(sidecar))
    raise CardError(
        f"no model card for {model_path}: looked in {where}. The exporter / engine builder writes it "
        "(python export/build_engine.py); the runtime takes T, the input size, the labels and the "
        "preprocessing only from the card."
    )


def check_model_matches_card(model_path: Path, card: ModelCard, card_source: str,
                             input_shape: Sequence[int | None], classes: int | None) -> None:
    """Raise :class:`CardError` naming both files if the model's input ``(N, T, 3, S, S)`` or its
    number of outputs disagree with the card. ``None`` (dynamic) dimensions are not checked."""
    problems = []
    if len(input_shape) != 5:
        problems.append(f"the model input has rank {len(input_shape)} ({list(input_shape)}), "
                        "the card's layout NTCHW needs rank 5")
    else:
        _, t, c, h, w = input_shape
        if t is not None and t != card.frames:
            problems.append(f"frames T: model {t}, card {card.frames}")
        if c is not None and c != 3:
            problems.append(f"channels: model {c}, card 3")
        if (h is not None and h != card.input_size) or (w is not None and w != card.input_size):
            problems.append(f"input size: model {h}x{w}, card {card.input_size}x{card.input_size}")
    if classes is not None and classes != card.num_classes:
        problems.append(f"classes: model outputs {classes}, card has {card.num_classes} labels")
    if problems:
        raise CardError(f"model {model_path} does not match its card {card_source}: "
                        + "; ".join(problems))


def check_clip_io(model_path: Path, card: ModelCard, card_source: str,
                  inputs: Sequence[tuple[str, Sequence[int | None], str]],
                  outputs: Sequence[tuple[str, Sequence[int | None], str]], floats: Collection[str]) -> None:
    """A clip graph's I/O, each tensor ``(name, shape (None: dynamic), element type as the framework
    names it)``: one input of a type in ``floats``, a first output ``(N, classes)``, and both as the
    card says (:func:`check_model_matches_card`); else a :class:`CardError`."""
    if len(inputs) != 1:
        raise CardError(f"model {model_path} has {len(inputs)} inputs "
                        f"({[i[0] for i in inputs]}); the card describes one clip input")
    (in_name, in_shape, in_type), (out_name, out_shape, _) = inputs[0], outputs[0]
    if in_type not in floats:
        raise CardError(f"model {model_path}: input {in_name!r} is {in_type}, expected float or float16")
    if len(out_shape) != 2:
        raise CardError(f"model {model_path}: output {out_name!r} has shape {list(out_shape)}, expected "
                        f"(N, classes) for card {card_source}")
    check_model_matches_card(model_path, card, card_source, in_shape, out_shape[1])
