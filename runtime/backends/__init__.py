"""Inference backends behind two interfaces (a clip :class:`Backend`, an online
:class:`~runtime.step_graph.StepModel`), chosen by the model file's suffix and its card's mode
(:mod:`runtime.backends.opener`, :func:`open_model`).

=================  ======================================  ======================================
suffix             classes (clip, online)                  needs
=================  ======================================  ======================================
``.onnx``          OnnxRuntimeBackend, OnnxRuntimeStep     onnxruntime (CPU / CUDA / TensorRT EP)
``.engine .plan``  TensorRTBackend, TensorRTStep           tensorrt, cuda-python (or pycuda)
``.pt .pth``       TorchDevBackend                         torch + tsi (development only)
``.xml`` (IR)      OpenVINOBackend, OpenVINOStep           openvino (``pip install ".[openvino]"``)
``triton://``      TritonBackend, TritonStep               tritonclient (``pip install ".[triton]"``)
=================  ======================================  ======================================

An ``.onnx`` file runs in OpenVINO with ``--backend openvino`` (``kind="openvino"``). A
``triton://HOST:PORT/NAME`` address is a model on a Triton Inference Server (not a file).

Every heavy package is imported inside ``load``; importing this package needs NumPy and OpenCV only.
"""

from __future__ import annotations

from runtime.backends.base import (Backend, BackendError, ModelOptions, OnlineModelError, OpenedCard,
                                   check_model_file, check_model_matches_card, resolve_card)
from runtime.backends.opener import (BACKENDS, MODEL_CLASSES, backend_for_path, check_backend_options,
                                     open_backend, open_model, open_step)

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendError",
    "MODEL_CLASSES",
    "ModelOptions",
    "OnlineModelError",
    "OpenedCard",
    "backend_for_path",
    "check_backend_options",
    "check_model_file",
    "check_model_matches_card",
    "open_backend",
    "open_model",
    "open_step",
    "resolve_card",
]
