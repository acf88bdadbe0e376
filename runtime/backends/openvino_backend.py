"""OpenVINO backend (CPU by default) for ``.onnx`` graphs and OpenVINO IR ``.xml`` models.

The model is read once (:func:`read_openvino_card`) and compiled for the device with a
``PERFORMANCE_HINT`` (``LATENCY`` by default: one clip at a time, as the live runtime infers;
``THROUGHPUT`` for many requests at once) and FP32 inference precision (OpenVINO would otherwise
run an FP32 graph in bf16 on CPUs that have it). An ``.onnx`` graph's card is in its
metadata_props (OpenVINO's ONNX reader keeps them in the model's ``rt_info``) or beside it; an IR's
is the card ``<name>.json`` beside the ``.xml`` (:func:`runtime.backends.base.resolve_card`).
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path

import numpy as np

from runtime.backends.base import (Backend, BackendError, ModelOptions, OpenedCard, check_clip_io,
                                   check_clip_model, check_model_file, resolve_card, warn_if_tensorrt_graph,
                                   warn_if_unfixed_int8_on_cpu_without_vnni)
from runtime.card import ONNX_METADATA_KEY, CardError, ModelCard

log = logging.getLogger(__name__)

__all__ = ["FLOAT_TYPES", "HINTS", "OpenVINOBackend", "compile_model", "model_card", "read_model",
           "read_openvino_card", "tensor_info"]

HINTS = ("LATENCY", "THROUGHPUT")
FLOAT_TYPES = {"f32": np.float32, "f16": np.float16}  # OpenVINO element type names


@functools.lru_cache(maxsize=1)
def _core():
    try:
        import openvino
    except ImportError as e:
        raise BackendError('the openvino backend needs OpenVINO: pip install ".[openvino]"') from e
    return openvino.Core()


def _one_line(e: Exception) -> str:
    """OpenVINO's message without its lines of C++ source locations."""
    lines = [s.strip() for s in str(e).splitlines() if s.strip() and not s.startswith("Exception from")]
    return " ".join(lines) or type(e).__name__


def read_model(path: Path):
    """``path`` read by OpenVINO (an ``.onnx`` graph or an IR ``.xml`` with its ``.bin``)."""
    try:
        return _core().read_model(str(path))
    except RuntimeError as e:
        raise BackendError(f"OpenVINO cannot load {path}: {_one_line(e)}") from e


def model_card(path: Path, model, card: ModelCard | str | os.PathLike | None = None,
               card_source: str | None = None) -> tuple[ModelCard, str]:
    """The card of a read model: ``card`` if given, else an ``.onnx`` graph's metadata, else beside it."""
    key = ["framework", ONNX_METADATA_KEY]
    embedded = (model.get_rt_info(key).astype(str)
                if path.suffix.lower() == ".onnx" and model.has_rt_info(key) else None)
    return resolve_card(path, card, embedded, card_source)


def read_openvino_card(path: Path, card: ModelCard | str | os.PathLike | None,
                       options: ModelOptions, card_source: str | None = None) -> OpenedCard:
    """A model's card, read from the model read once in OpenVINO (handed on as ``session``)."""
    model = read_model(path)
    found, source = model_card(path, model, card, card_source)
    return OpenedCard(found, source, model)


def compile_model(path: Path, model, device: str = "CPU", hint: str = "LATENCY", threads: int | None = None):
    """``model`` compiled for ``device`` (FP32 inference precision; ``threads``: OpenVINO's
    inference threads, default one per core). For the CPU a copy of the model is first rewritten
    (:func:`runtime.backends.openvino_graph.prepare_for_cpu`: the long attentions on the C++
    kernel, splits as gathers, temporal convs as shifted sums). Where OpenVINO cannot compile the
    copy with the kernel's operation (a safeguard: the operation is new to OpenVINO's
    transformations), the model is compiled with OpenVINO's own attention, and the log says why."""
    config = {"PERFORMANCE_HINT": hint, "INFERENCE_PRECISION_HINT": "f32"}
    if threads:
        config["INFERENCE_NUM_THREADS"] = threads

    def compiled(m):
        try:
            return _core().compile_model(m, device, config)
        except RuntimeError as e:
            raise BackendError(f"OpenVINO cannot compile {path} for {device}: {_one_line(e)}") from e

    if str(device).upper() != "CPU":
        return compiled(model)
    from runtime.backends.openvino_graph import prepare_for_cpu

    def prepared(kernel: bool):
        copy = model.clone()
        try:
            return copy, prepare_for_cpu(copy, kernel=kernel)[0]
        except RuntimeError as e:
            raise BackendError(f"OpenVINO cannot prepare {path} for the CPU: {_one_line(e)}") from e

    copy, on_kernel = prepared(True)
    try:
        return compiled(copy)
    except BackendError as e:
        if not on_kernel:
            raise
        log.warning("%s; compiling it with OpenVINO's own attention instead of the CPU kernel", e)
        return compiled(prepared(False)[0])


def tensor_info(port) -> tuple[str, list[int | None], str]:
    """(name, shape with None for a dynamic dimension, element type name) of a model input/output."""
    shape = [d.get_length() if d.is_static else None for d in port.get_partial_shape()]
    return port.get_any_name(), shape, port.get_element_type().get_type_name()


class OpenVINOBackend(Backend):
    name = "openvino"

    def __init__(self, threads: int | None = None, hint: str = "LATENCY", device: str = "CPU") -> None:
        super().__init__()
        if hint.upper() not in HINTS:
            raise BackendError(f"unknown OpenVINO performance hint {hint!r}: expected one of {', '.join(HINTS)}")
        self._threads, self._hint, self._device = threads, hint.upper(), device
        self.compiled = self._request = None

    @classmethod
    def open(cls, path: Path, opened: OpenedCard, options: ModelOptions) -> "OpenVINOBackend":
        """The clip backend of a card :func:`runtime.backends.open_model` read (its model reused)."""
        device = "CPU" if options.device is None else str(options.device)
        return cls(options.threads, device=device).load(path, opened.card, model=opened.session,
                                                        card_source=opened.source)

    def load(self, model_path: str | os.PathLike, card: ModelCard | str | os.PathLike | None = None,
             *, model=None, card_source: str | None = None) -> "OpenVINOBackend":
        """``model``: ``model_path`` already read by OpenVINO; ``card_source``: where a
        :class:`ModelCard` given as ``card`` came from (for the error messages)."""
        path = check_model_file(model_path)
        model = read_model(path) if model is None else model
        card, source = model_card(path, model, card, card_source)
        check_clip_model(path, card, source)
        inputs, outputs = [tensor_info(p) for p in model.inputs], [tensor_info(p) for p in model.outputs]
        check_clip_io(path, card, source, inputs, outputs, FLOAT_TYPES)
        warn_if_tensorrt_graph(path, card, "OpenVINO")
        warn_if_unfixed_int8_on_cpu_without_vnni(path, card)
        self.compiled = compile_model(path, model, self._device, self._hint, self._threads)
        self._request = self.compiled.create_infer_request()
        log.info("openvino %s on %s (%s): input %s %s, output %s %s", path.name, self._device, self._hint,
                 inputs[0][0], inputs[0][1], outputs[0][0], outputs[0][1])
        self.card, self.model_path, self.card_source = card, path, source
        self._in_dtype = FLOAT_TYPES[inputs[0][2]]
        self._batch = self.fixed_batch = inputs[0][1][0]
        return self

    def infer(self, clip: np.ndarray) -> np.ndarray:
        x = self.batch_input(clip)
        result = self._request.infer({0: x})
        logits = np.array(result[self.compiled.outputs[0]], dtype=np.float32)  # a copy: the request reuses its buffer
        if logits.shape != (clip.shape[0], self.card.num_classes):
            raise CardError(f"model {self.model_path} returned logits {logits.shape}; its card "
                            f"{self.card_source} has {self.card.num_classes} labels")
        return logits

    def close(self) -> None:
        self.compiled = self._request = None
