"""onnxruntime backend for ``.onnx`` models (CPU, CUDA or TensorRT execution provider)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from runtime.card import ONNX_METADATA_KEY, CardError, ModelCard
from runtime.backends.base import (Backend, BackendError, ModelOptions, OpenedCard, check_clip_io,
                                   check_clip_model, check_model_file, resolve_card, warn_if_tensorrt_graph)

log = logging.getLogger(__name__)

__all__ = ["FLOAT_TYPES", "OnnxRuntimeBackend", "PROVIDER_ALIASES", "open_session", "read_onnx_card",
           "resolve_providers", "session_card"]

PROVIDER_ALIASES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "trt": "TensorrtExecutionProvider",
}
FLOAT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


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


def _provider_options(name: str, path: Path):
    if name == "TensorrtExecutionProvider":
        cache = path.parent / ".ort_trt_cache"
        return (name, {"trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache)})
    return name


def session_options(threads: int | None = None):
    """The options of every onnxruntime session the project opens (this backend and the step
    models, export and calibration checks, the benchmarks), stated once here: errors only in the
    log; ``threads`` intra-op threads (None: onnxruntime's choice, one per core); every graph
    optimisation (ORT_ENABLE_ALL). Subnormals are not flushed (``session.set_denormal_as_zero``):
    it made no measurable difference on the AVX2 EPYC this project is measured on (issue 21: TSI-R50
    0.75 of TSN with it, 0.65-0.72 without, runs under load; the attention alone about 110 ms either
    way), and it sets the calling thread's floating-point mode for the whole process (hypothesis,
    NumPy and the user's own code then see no subnormals: the test suite failed that way)."""
    ort = _import_onnxruntime()
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        opts.intra_op_num_threads = threads
    return opts


def open_session(path: Path, requested: Sequence[str] | None = None, threads: int | None = None):
    """An onnxruntime session of ``path`` on the requested providers (:func:`resolve_providers`;
    the TensorRT provider with an engine cache beside the model); a requested provider that does not
    start is an error. The clip backend and the online step model both open their graphs here. On
    the CPU provider alone, the long saliency attentions run on the C++ kernel where it builds
    (:mod:`runtime.backends.kernel_session`; ``TSI_CPU_ATTENTION=0``: onnxruntime's own form)."""
    ort = _import_onnxruntime()
    providers = resolve_providers(requested, ort.get_available_providers())
    if providers == ["CPUExecutionProvider"]:
        from runtime.backends.kernel_session import kernel_session

        try:
            session = kernel_session(path, session_options(threads))
        except Exception as e:  # onnx and onnxruntime raise their own exception types
            raise BackendError(f"onnxruntime cannot load {path}: {e}") from e
        if session is not None:
            return session
    try:
        session = ort.InferenceSession(str(path), session_options(threads), providers=[_provider_options(p, path) for p in providers])
    except Exception as e:  # onnxruntime raises its own exception types
        raise BackendError(f"onnxruntime cannot load {path}: {e}") from e
    missing = [p for p in providers if p not in session.get_providers()]
    if requested and missing:
        raise BackendError(f"onnxruntime could not start {', '.join(missing)} for {path} "
                           f"(running: {', '.join(session.get_providers())})")
    return session


def session_card(path: Path, session, card: ModelCard | str | os.PathLike | None = None,
                 card_source: str | None = None) -> tuple[ModelCard, str]:
    """The card of an opened graph: ``card`` if given, else the one in its metadata, else beside it."""
    return resolve_card(path, card, session.get_modelmeta().custom_metadata_map.get(ONNX_METADATA_KEY),
                        card_source)


def read_onnx_card(path: Path, card: ModelCard | str | os.PathLike | None,
                   options: ModelOptions, card_source: str | None = None) -> OpenedCard:
    """An ``.onnx`` model's card, read from the graph opened once in onnxruntime (the session is
    handed on to the clip backend or the step model the card calls for)."""
    session = open_session(path, options.providers, options.threads)
    found, source = session_card(path, session, card, card_source)
    return OpenedCard(found, source, session)


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"

    def __init__(self, providers: Sequence[str] | None = None, threads: int | None = None) -> None:
        super().__init__()
        self._requested = list(providers) if providers else None
        self._threads = threads
        self.session = None

    @classmethod
    def open(cls, path: Path, opened: OpenedCard, options: ModelOptions) -> "OnnxRuntimeBackend":
        """The clip backend of a card :func:`runtime.backends.open_model` read (its session reused)."""
        return cls(options.providers, options.threads).load(path, opened.card, session=opened.session,
                                                            card_source=opened.source)

    def load(self, model_path: str | os.PathLike, card: ModelCard | str | os.PathLike | None = None,
             *, session=None, card_source: str | None = None) -> "OnnxRuntimeBackend":
        """``session``: ``model_path`` already open in onnxruntime; ``card_source``: where a
        :class:`ModelCard` given as ``card`` came from (for the error messages)."""
        path = check_model_file(model_path)
        session = session or open_session(path, self._requested, self._threads)
        card, source = session_card(path, session, card, card_source)
        check_clip_model(path, card, source)

        inputs, outputs = session.get_inputs(), session.get_outputs()
        def io(tensors) -> list[tuple[str, list[int | None], str]]:
            return [(t.name, [_dim(d) for d in t.shape], t.type) for t in tensors]

        check_clip_io(path, card, source, io(inputs), io(outputs), FLOAT_TYPES)
        inp, out = inputs[0], outputs[0]
        for kind, t in [("input", inp)] + [("output", o) for o in outputs]:
            log.info("onnx %s %s: %s %s", kind, t.name, list(t.shape), t.type)
        log.info("onnxruntime %s on %s", path.name, ", ".join(session.get_providers()))
        if "TensorrtExecutionProvider" not in session.get_providers():
            warn_if_tensorrt_graph(path, card, "onnxruntime")
        self.session, self.card, self.model_path, self.card_source = session, card, path, source
        self._in_name, self._out_name = inp.name, out.name
        self._in_dtype = FLOAT_TYPES[inp.type]
        self._batch = self.fixed_batch = _dim(inp.shape[0])
        return self

    def infer(self, clip: np.ndarray) -> np.ndarray:
        x = self.batch_input(clip)
        (logits,) = self.session.run([self._out_name], {self._in_name: x})
        logits = np.asarray(logits, dtype=np.float32)
        if logits.shape != (clip.shape[0], self.card.num_classes):
            raise CardError(f"model {self.model_path} returned logits {logits.shape}; its card "
                            f"{self.card_source} has {self.card.num_classes} labels")
        return logits

    def close(self) -> None:
        self.session = None
