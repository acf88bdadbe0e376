"""Inference backends behind one interface, chosen by the model file's suffix.

=================  ==============================  ======================================
suffix             backend                         needs
=================  ==============================  ======================================
``.onnx``          :class:`OnnxRuntimeBackend`     onnxruntime (CPU / CUDA / TensorRT EP)
``.engine .plan``  :class:`TensorRTBackend`        tensorrt, cuda-python (or pycuda)
``.pt .pth``       :class:`TorchDevBackend`        torch + tsi (development only)
=================  ==============================  ======================================

Every heavy package is imported inside ``load``; importing this package needs NumPy and OpenCV only.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from runtime.card import ModelCard
from runtime.backends.base import (Backend, BackendError, OnlineModelError, check_model_file,
                                   check_model_matches_card, resolve_card)

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendError",
    "OnlineModelError",
    "backend_for_path",
    "check_backend_options",
    "check_model_matches_card",
    "open_backend",
    "resolve_card",
]

# backend name -> model file suffixes it reads
BACKENDS: dict[str, tuple[str, ...]] = {
    "onnxruntime": (".onnx",),
    "tensorrt": (".engine", ".plan"),
    "torch": (".pt", ".pth"),
}


def backend_for_path(model_path: str | os.PathLike) -> str:
    suffix = Path(model_path).suffix.lower()
    for name, suffixes in BACKENDS.items():
        if suffix in suffixes:
            return name
    known = ", ".join(s for v in BACKENDS.values() for s in v)
    raise BackendError(f"no backend for {model_path}: expected one of {known}")


def check_backend_options(path: Path, kind: str = "auto", *, providers: Sequence[str] | None = None,
                          threads: int | None = None, plugin: str | os.PathLike | None = None,
                          cuda_graph: bool = False) -> str:
    """The backend for ``path``: the one its suffix calls for (``kind="auto"``) or ``kind``, which
    must agree with the suffix; options that do not apply to that backend are refused."""
    expected = backend_for_path(path)
    if kind == "auto":
        kind = expected
    elif kind not in BACKENDS:
        raise BackendError(f"unknown backend {kind!r}: expected auto or one of {', '.join(BACKENDS)}")
    elif kind != expected:
        extra = (" (for TensorRT through onnxruntime use --backend onnxruntime --providers tensorrt)"
                 if kind == "tensorrt" and expected == "onnxruntime" else "")
        raise BackendError(f"backend {kind!r} cannot read {path.name}: {path.suffix} files take "
                           f"the {expected!r} backend{extra}")
    if providers and kind != "onnxruntime":
        raise BackendError(f"--providers applies to the onnxruntime backend only, not {kind!r}")
    if threads and kind != "onnxruntime":
        raise BackendError(f"--threads applies to the onnxruntime backend only, not {kind!r}")
    if (plugin or cuda_graph) and kind != "tensorrt":
        raise BackendError(f"--plugin and --cuda-graph apply to the tensorrt backend only, not {kind!r}")
    return kind


def open_backend(
    model_path: str | os.PathLike,
    kind: str = "auto",
    *,
    card: ModelCard | str | os.PathLike | None = None,
    providers: Sequence[str] | None = None,
    plugin: str | os.PathLike | None = None,
    cuda_graph: bool = False,
    device: str | int | None = None,
    threads: int | None = None,
) -> Backend:
    """Load ``model_path`` with the backend its suffix calls for (``kind="auto"``) or with ``kind``
    (which must agree with the suffix). Options that do not apply to that backend are rejected.
    ``threads``: onnxruntime's intra-op threads (default: onnxruntime's, one per core)."""
    path = check_model_file(model_path)
    kind = check_backend_options(path, kind, providers=providers, threads=threads, plugin=plugin,
                                 cuda_graph=cuda_graph)
    backend: Backend
    if kind == "onnxruntime":
        from runtime.backends.onnxruntime_backend import OnnxRuntimeBackend
        backend = OnnxRuntimeBackend(providers=providers, threads=threads)
    elif kind == "tensorrt":
        from runtime.backends.tensorrt_backend import TensorRTBackend
        backend = TensorRTBackend(plugin=plugin, cuda_graph=cuda_graph,
                                  device=int(device) if device is not None else 0)
    else:
        from runtime.backends.torch_dev import TorchDevBackend
        backend = TorchDevBackend(device=str(device) if device is not None else "cpu")
    try:
        return backend.load(path, card)
    except BaseException:
        backend.close()
        raise
