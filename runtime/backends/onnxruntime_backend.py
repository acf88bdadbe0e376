"""onnxruntime backend for ``.onnx`` models (CPU, CUDA or TensorRT execution provider)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from runtime.card import ONNX_METADATA_KEY, CardError, ModelCard
from runtime.backends.base import (Backend, BackendError, check_clip_model, check_model_file,
                                   check_model_matches_card, resolve_card)

log = logging.getLogger(__name__)

__all__ = ["OnnxRuntimeBackend", "PROVIDER_ALIASES", "resolve_providers"]

PROVIDER_ALIASES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "trt": "TensorrtExecutionProvider",
}
_INPUT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


def _import_onnxruntime():
    try:
        import onnxruntime
    except ImportError as e:
        raise BackendError(
            "the .onnx backend needs onnxruntime: pip install onnxruntime (CPU) or onnxruntime-gpu "
            "(CUDA / TensorRT providers; on a Jetson, NVIDIA's onnxruntime-gpu wheel for JetPack)"
        ) from e
    return onnxruntime


def resolve_providers(requested: Sequence[str] | None, available: Sequence[str]) -> list[str]:
    """Full provider names. ``None``: CUDA if available, then CPU. A requested provider that this
    onnxruntime lacks is an error (never silently replaced)."""
    if not requested:
        return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
    names = []
    for p in requested:
        name = PROVIDER_ALIASES.get(p.strip().lower(), p.strip())
        if name not in available:
            raise BackendError(
                f"onnxruntime execution provider {p!r} ({name}) is not available in this "
                f"onnxruntime; available: {', '.join(available)}. The CUDA and TensorRT providers "
                "need the onnxruntime-gpu package (and a GPU)."
            )
        if name not in names:
            names.append(name)
    return names


def _dim(d) -> int | None:
    return d if isinstance(d, int) and d > 0 else None


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"

    def __init__(self, providers: Sequence[str] | None = None, threads: int | None = None) -> None:
        super().__init__()
        self._requested = list(providers) if providers else None
        self._threads = threads
        self.session = None

    def load(self, model_path: str | os.PathLike,
             card: ModelCard | str | os.PathLike | None = None) -> "OnnxRuntimeBackend":
        path = check_model_file(model_path)
        ort = _import_onnxruntime()
        providers = resolve_providers(self._requested, ort.get_available_providers())
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        if self._threads:
            opts.intra_op_num_threads = self._threads
        provider_args = [self._provider_options(p, path) for p in providers]
        try:
            session = ort.InferenceSession(str(path), opts, providers=provider_args)
        except Exception as e:  # onnxruntime raises its own exception types
            raise BackendError(f"onnxruntime cannot load {path}: {e}") from e
        missing = [p for p in providers if p not in session.get_providers()]
        if self._requested and missing:
            raise BackendError(f"onnxruntime could not start {', '.join(missing)} for {path} "
                               f"(running: {', '.join(session.get_providers())})")
        embedded = session.get_modelmeta().custom_metadata_map.get(ONNX_METADATA_KEY)
        card, source = resolve_card(path, card, embedded)
        check_clip_model(path, card, source)

        inputs, outputs = session.get_inputs(), session.get_outputs()
        if len(inputs) != 1:
            raise CardError(f"model {path} has {len(inputs)} inputs "
                            f"({[i.name for i in inputs]}); the card describes one clip input")
        inp, out = inputs[0], outputs[0]
        if inp.type not in _INPUT_TYPES:
            raise CardError(f"model {path}: input {inp.name!r} is {inp.type}, expected float or "
                            "float16")
        out_shape = list(out.shape)
        if len(out_shape) != 2:
            raise CardError(f"model {path}: output {out.name!r} has shape {out_shape}, expected "
                            f"(N, classes) for card {source}")
        check_model_matches_card(path, card, source, [_dim(d) for d in inp.shape], _dim(out_shape[1]))
        for kind, t in [("input", inp)] + [("output", o) for o in outputs]:
            log.info("onnx %s %s: %s %s", kind, t.name, list(t.shape), t.type)
        log.info("onnxruntime %s on %s", path.name, ", ".join(session.get_providers()))
        self.session, self.card, self.model_path, self.card_source = session, card, path, source
        self._in_name, self._out_name = inp.name, out.name
        self._in_dtype = _INPUT_TYPES[inp.type]
        self._batch = self.fixed_batch = _dim(inp.shape[0])
        return self

    @staticmethod
    def _provider_options(name: str, path: Path):
        if name == "TensorrtExecutionProvider":
            cache = path.parent / ".ort_trt_cache"
            return (name, {"trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache)})
        return name

    def infer(self, clip: np.ndarray) -> np.ndarray:
        self.check_clip(clip)
        if self._batch is not None and clip.shape[0] != self._batch:
            raise ValueError(f"{self.model_path} takes batch {self._batch}, got {clip.shape[0]}")
        x = clip if self._in_dtype is np.float32 else clip.astype(self._in_dtype)
        (logits,) = self.session.run([self._out_name], {self._in_name: x})
        logits = np.asarray(logits, dtype=np.float32)
        if logits.shape != (clip.shape[0], self.card.num_classes):
            raise CardError(f"model {self.model_path} returned logits {logits.shape}; its card "
                            f"{self.card_source} has {self.card.num_classes} labels")
        return logits

    def close(self) -> None:
        self.session = None
