"""An ``IInt8EntropyCalibrator2`` for TensorRT 10.x implicit INT8 (and DLA), fed with the clips of
:mod:`calib.clips`. Written from the TensorRT Python API documentation and samples; TensorRT cannot
be installed here, so it is not executed by the tests (they are marked ``trt``).

``tensorrt`` and cuda-python are imported inside :func:`make_entropy_calibrator`, so this module
imports without them. Device memory: one buffer of ``batch_size`` clips, ``cudaMalloc``-ed once,
filled with ``cudaMemcpy`` per batch (every CUDA return code checked), freed by ``free()``.
The cache goes through :mod:`calib.cache` (keyed to the ONNX model, written atomically).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from calib import cache as cache_mod
from runtime.common.errors import CalibrationError
from runtime.trt_version import capabilities, import_cudart, import_tensorrt
from runtime.card import ModelCard

log = logging.getLogger(__name__)


def check_cuda(result, what: str):
    """cuda-python calls return ``(err, *values)``; raise on any error, return the values."""
    cudart = import_cudart()
    err, *values = result if isinstance(result, tuple) else (result,)
    if err != cudart.cudaError_t.cudaSuccess:
        _, msg = cudart.cudaGetErrorString(err)
        raise RuntimeError(f"CUDA error in {what}: {err} ({msg.decode() if isinstance(msg, bytes) else msg})")
    return values[0] if len(values) == 1 else values


def make_entropy_calibrator(clips: np.ndarray, *, input_name: str = "clip", batch_size: int = 1,
                            cache_path: str | os.PathLike | None = None, onnx_sha256: str = "",
                            card: ModelCard | None = None, method: str = "entropy"):
    """A ``tensorrt.IInt8EntropyCalibrator2`` over ``clips`` (N, T, 3, S, S) float32.

    ``read_calibration_cache`` returns the cache at ``cache_path`` only if its key matches
    ``onnx_sha256`` / ``card`` (otherwise TensorRT calibrates on the clips); ``write_calibration_cache``
    stores TensorRT's cache with that key.
    """
    trt = import_tensorrt()
    cudart = import_cudart()
    caps = capabilities(trt.__version__)
    if not caps.has_implicit_int8_calibration:
        raise CalibrationError(f"TensorRT {caps.version} has no implicit INT8 calibration (removed in 11.0); "
                               "build from the Q/DQ ONNX")
    clips = np.ascontiguousarray(clips, dtype=np.float32)
    if clips.ndim != 5 or len(clips) < batch_size:
        raise CalibrationError(f"expected (N>={batch_size}, T, 3, S, S) clips, got {clips.shape}")
    key = cache_mod.make_key(onnx_sha256, card, method, num_clips=len(clips),
                             version_int=caps.version_int) if card is not None else None

    class TSIEntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self):
            trt.IInt8EntropyCalibrator2.__init__(self)  # pybind11 trampoline: the base init is required
            self.batch_nbytes = clips[:batch_size].nbytes
            self.index = 0
            self.device = check_cuda(cudart.cudaMalloc(self.batch_nbytes), "cudaMalloc")

        def get_batch_size(self) -> int:
            return batch_size

        def get_batch(self, names):
            if list(names) != [input_name]:
                raise CalibrationError(f"calibrator feeds '{input_name}', TensorRT asks for {list(names)}")
            if self.index + batch_size > len(clips):
                return None  # calibration done
            host = np.ascontiguousarray(clips[self.index:self.index + batch_size])
            check_cuda(cudart.cudaMemcpy(self.device, host.ctypes.data, self.batch_nbytes,
                                         cudart.cudaMemcpyKind.cudaMemcpyHostToDevice), "cudaMemcpy")
            self.index += batch_size
            if self.index % max(1, len(clips) // 10) < batch_size:
                log.info("calibration batch %d/%d", self.index // batch_size, len(clips) // batch_size)
            return [int(self.device)]

        def read_calibration_cache(self):
            if cache_path is None or not Path(cache_path).is_file():
                return None
            try:
                return cache_mod.load_cache(cache_path, onnx_sha256=onnx_sha256, card=card,
                                            version_int=caps.version_int)
            except CalibrationError as e:
                log.warning("not using the calibration cache: %s", e)
                return None

        def write_calibration_cache(self, cache):
            if cache_path is not None and key is not None:
                cache_mod.write_raw_cache(cache_path, bytes(cache), key)
                log.info("wrote calibration cache %s", cache_path)

        def free(self) -> None:
            if self.device is not None:
                check_cuda(cudart.cudaFree(self.device), "cudaFree")
                self.device = None

    return TSIEntropyCalibrator()
