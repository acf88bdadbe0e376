"""One callable per (model, backend, precision): ``runner(x: (N, T, 3, S, S) float32) -> logits``.

Backends: PyTorch eager, PyTorch compiled (``torch.compile``, inductor; on the CPU it builds C++
kernels with the system compiler), onnxruntime (CPU execution provider, or CUDA where available),
OpenVINO (CPU; FP32 graphs and NNCF's INT8 IR), TensorRT. A combination that cannot run here raises :class:`Absent` with the reason, which the
report lists instead of a number.
"""

from __future__ import annotations

import io
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

log = logging.getLogger(__name__)

BACKENDS = ("pytorch-eager", "pytorch-compiled", "onnxruntime", "openvino", "tensorrt")
PRECISIONS = ("fp32", "fp16", "int8")
TORCH_INT8_REASON = ("PyTorch INT8 needs a torch.ao quantization flow this toolchain does not have; "
                     "INT8 here is the Q/DQ ONNX (onnxruntime row; TensorRT on the target)")


class Absent(Exception):
    """This backend/precision cannot run here; the message is the reason."""


@dataclass
class Runner:
    run: Callable[[np.ndarray], np.ndarray]
    file_bytes: int | None
    file_what: str
    setup_s: float
    device: str
    notes: str = ""

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.run(x)


def state_dict_bytes(model) -> int:
    import torch

    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.tell()


def torch_runner(model, precision: str, *, device: str = "cpu", compiled: bool = False) -> Runner:
    """``model`` (eval) on ``device`` in ``precision``; ``compiled`` wraps it in torch.compile
    (compiled on the first call, with a dynamic batch: that time is the row's ``first_call_s``)."""
    import torch

    if precision == "int8":
        raise Absent(TORCH_INT8_REASON)
    if device == "cuda" and not torch.cuda.is_available():
        raise Absent("no CUDA device")
    t0 = time.perf_counter()
    dtype = torch.float16 if precision == "fp16" else torch.float32
    model = model.to(device=device, dtype=dtype).eval()
    size = state_dict_bytes(model)
    # dynamic=True: one compiled graph for every batch size (each recompile takes minutes on a small CPU)
    fn = torch.compile(model, dynamic=True) if compiled else model
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            y = fn(torch.from_numpy(x).to(device=device, dtype=dtype))
            sync()
        return y.float().cpu().numpy()

    return Runner(run, size, "state_dict (torch.save)", time.perf_counter() - t0, device)


def ort_runner(path: Path, *, threads: int | None = None, device: str = "cpu") -> Runner:
    """The graph as the runtime opens it (``open_session``: on the CPU, the long saliency
    attentions on the C++ kernel where it builds)."""
    import onnxruntime as ort

    from runtime.backends import BackendError
    from runtime.backends.onnxruntime_backend import open_session

    if device == "cuda" and "CUDAExecutionProvider" not in ort.get_available_providers():
        raise Absent(f"onnxruntime has no CUDAExecutionProvider here (has {ort.get_available_providers()})")
    t0 = time.perf_counter()
    try:
        sess = open_session(Path(path), [device], threads)
    except BackendError as e:  # onnxruntime's own error is the reason
        raise Absent(f"onnxruntime cannot load the graph: {str(e).splitlines()[0][:300]}") from None
    name = sess.get_inputs()[0].name

    def run(x: np.ndarray) -> np.ndarray:
        return sess.run(None, {name: np.ascontiguousarray(x, dtype=np.float32)})[0]

    return Runner(run, Path(path).stat().st_size, "ONNX", time.perf_counter() - t0, device)


def ov_runner(path: Path, *, threads: int | None = None, card=None) -> Runner:
    """``path`` (ONNX or an IR) on the runtime's OpenVINO backend (CPU, LATENCY hint, its CPU rewrites)."""
    from runtime.backends import BackendError, open_backend

    t0 = time.perf_counter()
    try:
        backend = open_backend(Path(path), "openvino", threads=threads, card=card)
    except BackendError as e:
        raise Absent(f"OpenVINO cannot run it here: {str(e).splitlines()[0][:300]}") from None
    size = Path(path).stat().st_size + (Path(path).with_suffix(".bin").stat().st_size
                                        if Path(path).suffix == ".xml" else 0)
    return Runner(lambda x: backend.infer(np.ascontiguousarray(x, dtype=np.float32)), size,
                  "OpenVINO IR" if Path(path).suffix == ".xml" else "ONNX", time.perf_counter() - t0, "cpu")


def tensorrt_reason() -> str | None:
    """None if TensorRT and a GPU are usable, else why not."""
    from benchmarks.common.machine import gpu_status, tensorrt_status

    ok, why = tensorrt_status()
    gpu_ok, gpu = gpu_status()
    if ok and gpu_ok:
        return None
    parts = ([] if ok else [f"TensorRT {why}"]) + ([] if gpu_ok else [gpu])
    return "; ".join(parts)
