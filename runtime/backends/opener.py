"""One way to open a model: the card is read once, and the table :data:`MODEL_CLASSES`, keyed by
(file kind, card mode), picks the class that runs it.

- ``("onnx", "clip")``: OnnxRuntimeBackend, a clip graph in onnxruntime;
- ``("onnx", "online")``: OnnxRuntimeStep, a step graph in onnxruntime;
- ``("openvino", "clip")`` / ``("openvino", "online")``: OpenVINOBackend / OpenVINOStep, an
  ``.xml`` IR or (``--backend openvino``) an ``.onnx`` graph in OpenVINO;
- ``("engine", "clip")``: TensorRTBackend, a clip engine;
- ``("engine", "online")``: TensorRTStep, a step engine (its state on the GPU);
- ``("torch", "clip")``: TorchDevBackend, a checkpoint (development only);
- a ``triton://HOST:PORT/NAME`` address (not a file): TritonBackend or TritonStep, the model on a
  Triton Inference Server, its card read from the model's config
  (:mod:`runtime.backends.triton_backend`).

How the card is read depends on the file kind (:data:`CARD_READERS`): an ``.onnx`` graph is opened
once in onnxruntime (its card is in the graph's metadata or beside it) and that session is handed
on; a model opened in OpenVINO is read once there and handed on the same way (an IR's card is the
JSON beside it); an engine's card is the JSON beside it; a checkpoint's card is inside it (the torch backend
reads it; the torch backend runs clip checkpoints only). Every class has ``open(path, opened,
options)``. Importing this module needs NumPy and OpenCV only: every heavy package is imported
inside ``load``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Sequence

from runtime.backends.base import (Backend, BackendError, ModelOptions, OpenedCard, check_model_file,
                                   load_given_card, resolve_card)
from runtime.backends.onnxruntime_backend import OnnxRuntimeBackend, read_onnx_card
from runtime.backends.onnxruntime_step import OnnxRuntimeStep
from runtime.backends.openvino_backend import OpenVINOBackend, read_openvino_card
from runtime.backends.openvino_step import OpenVINOStep
from runtime.backends.tensorrt_backend import TensorRTBackend
from runtime.backends.tensorrt_step import TensorRTStep
from runtime.backends.torch_dev import TorchDevBackend
from runtime.backends.triton_backend import open_triton
from runtime.backends.triton_client import is_triton_url
from runtime.card import ModelCard
from runtime.step_graph import StepModel

__all__ = [
    "BACKENDS",
    "CARD_READERS",
    "FILE_KINDS",
    "MODEL_CLASSES",
    "backend_for_path",
    "check_backend_options",
    "open_backend",
    "open_model",
    "open_step",
]

# backend name -> model file suffixes it reads; a suffix takes the first backend that reads it
# unless another is asked for
BACKENDS: dict[str, tuple[str, ...]] = {
    "onnxruntime": (".onnx",),
    "tensorrt": (".engine", ".plan"),
    "torch": (".pt", ".pth"),
    "openvino": (".xml", ".onnx"),
    "triton": (),  # a triton://HOST:PORT/NAME address, not a file
}


def backend_for_path(model_path: str | os.PathLike) -> str:
    suffix = Path(model_path).suffix.lower()
    for name, suffixes in BACKENDS.items():
        if suffix in suffixes:
            return name
    known = ", ".join(dict.fromkeys(s for v in BACKENDS.values() for s in v))
    raise BackendError(f"no backend for {model_path}: expected one of {known}")


def check_backend_options(path: Path, kind: str = "auto", *, providers: Sequence[str] | None = None,
                          threads: int | None = None, plugin: str | os.PathLike | None = None,
                          cuda_graph: bool = False) -> str:
    """The backend for ``path``: the one its suffix calls for (``kind="auto"``) or ``kind``, which
    must read that suffix; options that do not apply to that backend are refused."""
    expected = backend_for_path(path)
    if kind == "auto":
        kind = expected
    elif kind not in BACKENDS:
        raise BackendError(f"unknown backend {kind!r}: expected auto or one of {', '.join(BACKENDS)}")
    elif path.suffix.lower() not in BACKENDS[kind]:
        extra = (" (for TensorRT through onnxruntime use --backend onnxruntime --providers tensorrt)"
                 if kind == "tensorrt" and expected == "onnxruntime" else "")
        readers = " or ".join(repr(n) for n, s in BACKENDS.items() if path.suffix.lower() in s)
        raise BackendError(f"backend {kind!r} cannot read {path.name}: {path.suffix} files take "
                           f"the {readers} backend{extra}")
    if providers and kind != "onnxruntime":
        raise BackendError(f"--providers applies to the onnxruntime backend only, not {kind!r}")
    if threads and kind not in ("onnxruntime", "openvino"):
        raise BackendError(f"--threads applies to the onnxruntime and openvino backends only, not {kind!r}")
    if (plugin or cuda_graph) and kind != "tensorrt":
        raise BackendError(f"--plugin and --cuda-graph apply to the tensorrt backend only, not {kind!r}")
    return kind


# backend name -> the kind of file it reads
FILE_KINDS = {"onnxruntime": "onnx", "tensorrt": "engine", "torch": "torch", "openvino": "openvino"}

CardArg = ModelCard | str | os.PathLike | None


def _card_beside(path: Path, card: CardArg, options: ModelOptions, card_source: str | None = None) -> OpenedCard:
    found, source = resolve_card(path, card, card_source=card_source)
    return OpenedCard(found, source)


def _card_in_checkpoint(path: Path, card: CardArg, options: ModelOptions,
                        card_source: str | None = None) -> OpenedCard:
    """A checkpoint's card is inside it, readable only with torch: the torch backend reads it
    (a card given here overrides it, and says the mode)."""
    if card is None:
        return OpenedCard(None, f"{path} (checkpoint card)")
    found, source = resolve_card(path, card, card_source=card_source)
    return OpenedCard(found, source)


# file kind -> how its card is read (once): (path, the card given or None, options, where the given one came from)
CARD_READERS: dict[str, Callable[[Path, CardArg, ModelOptions, str | None], OpenedCard]] = {
    "onnx": read_onnx_card,
    "engine": _card_beside,
    "torch": _card_in_checkpoint,
    "openvino": read_openvino_card,
}

# (file kind, card mode) -> the class that runs it
MODEL_CLASSES: dict[tuple[str, str], Any] = {
    ("onnx", "clip"): OnnxRuntimeBackend,
    ("onnx", "online"): OnnxRuntimeStep,
    ("engine", "clip"): TensorRTBackend,
    ("engine", "online"): TensorRTStep,
    ("torch", "clip"): TorchDevBackend,
    ("openvino", "clip"): OpenVINOBackend,
    ("openvino", "online"): OpenVINOStep,
}


def _open_served(url: str, kind: str, card: CardArg, mode: str | None, reconnect: Any, stop: Any,
                 **local: Any) -> Backend | StepModel:
    """A ``triton://`` model: the options of a local backend are refused."""
    if kind not in ("auto", "triton"):
        raise BackendError(f"--backend {kind} cannot read {url}: a triton:// model takes --backend auto or triton")
    given = ["--" + k.replace("_", "-") for k, v in local.items() if v]
    if given:
        raise BackendError(f"{', '.join(given)} apply to a local model, not {url} (the server runs it)")
    if card is not None and not isinstance(card, ModelCard):
        card = resolve_card(Path(url), card)[0]
    return open_triton(url, ModelOptions(reconnect=reconnect, stop=stop), card, mode)


def open_model(model_path: str | os.PathLike, kind: str = "auto", *, card: CardArg = None,
               providers: Sequence[str] | None = None, threads: int | None = None,
               plugin: str | os.PathLike | None = None, cuda_graph: bool = False,
               device: str | int | None = None, mode: str | None = None, reconnect: Any = None,
               stop: Any = None) -> Backend | StepModel:
    """The model as its card says: a clip :class:`Backend` for ``mode: clip``, a
    :class:`StepModel` for ``mode: online``. ``kind``: the backend (``auto``: from the file's
    suffix; another must agree with it; options of another backend are refused). ``mode``: the
    mode the caller runs (None: the card's); a card of the other mode is refused by the class
    with an error naming both (see :func:`open_backend`, :func:`open_step`). A ``triton://``
    address is a served model: ``reconnect`` (a :class:`runtime.reconnect.ReconnectPolicy`) and
    ``stop`` (an event) say how long to wait for its server when it goes away."""
    if is_triton_url(model_path):
        return _open_served(str(model_path), kind, card, mode, reconnect, stop, providers=providers,
                            threads=threads, plugin=plugin, cuda_graph=cuda_graph, device=device)
    path = check_model_file(model_path)
    backend = check_backend_options(path, kind, providers=providers, threads=threads, plugin=plugin,
                                    cuda_graph=cuda_graph)
    options = ModelOptions(providers=providers, threads=threads, plugin=plugin, cuda_graph=cuda_graph,
                           device=device)
    file_kind = FILE_KINDS[backend]
    # a card file given is read before the model: a bad one is refused before any model loads
    given, given_source = load_given_card(card)
    opened = CARD_READERS[file_kind](path, given, options, given_source)
    if mode is None:
        mode = opened.card.mode if opened.card is not None else "clip"
    cls = MODEL_CLASSES.get((file_kind, mode))
    if cls is None:
        raise BackendError(f"{path.name}: an online step model is an .onnx step graph (or its OpenVINO IR) "
                           "or a TensorRT engine built from one (.engine/.plan); the torch backend runs "
                           "clip models only")
    return cls.open(path, opened, options)


def open_backend(model_path: str | os.PathLike, kind: str = "auto", *, card: CardArg = None,
                 providers: Sequence[str] | None = None, plugin: str | os.PathLike | None = None,
                 cuda_graph: bool = False, device: str | int | None = None,
                 threads: int | None = None) -> Backend:
    """A clip model (:func:`open_model` with ``mode="clip"``): a card that says ``mode: online``
    is an :class:`~runtime.backends.base.OnlineModelError`. ``threads``: onnxruntime's intra-op
    threads or OpenVINO's inference threads (default: the backend's, one per core)."""
    return open_model(model_path, kind, card=card, providers=providers, threads=threads, plugin=plugin,
                      cuda_graph=cuda_graph, device=device, mode="clip")


def open_step(model_path: str | os.PathLike, kind: str = "auto", *, card: CardArg = None,
              providers: Sequence[str] | None = None, threads: int | None = None,
              plugin: str | os.PathLike | None = None, cuda_graph: bool = False,
              device: str | int | None = None) -> StepModel:
    """An online step model (:func:`open_model` with ``mode="online"``): a clip card is a
    :class:`~runtime.card.CardError` naming both."""
    return open_model(model_path, kind, card=card, providers=providers, threads=threads, plugin=plugin,
                      cuda_graph=cuda_graph, device=device, mode="online")
