"""The few CUDA runtime calls the TensorRT backend needs, behind one small class.

cuda-python first (``from cuda.bindings import runtime as cudart``, or ``from cuda import cudart``
on older cuda-python), as NVIDIA's TensorRT samples do; pycuda only as a last fallback (no CUDA
graphs there). Every cuda-python call returns ``(error, *results)``: :meth:`CudaPython.call`
checks the error of every one of them.
"""

from __future__ import annotations

import ctypes
import logging
from typing import Any

import numpy as np

from runtime.backends.base import BackendError
from runtime.trt_version import import_cudart

log = logging.getLogger(__name__)

__all__ = ["CudaError", "CudaPython", "PyCuda", "load_cuda"]

_INSTALL = ("the TensorRT backend needs cuda-python: pip install cuda-python (its major version "
            "matching your CUDA, e.g. 'cuda-python>=12,<13' on JetPack 6); pycuda also works as a "
            "fallback, without CUDA graphs")


class CudaError(BackendError):
    """A CUDA runtime call returned an error."""


def load_cuda():
    """The CUDA runtime wrapper: :class:`CudaPython` or, failing that, :class:`PyCuda`."""
    try:
        cudart = import_cudart()
    except ImportError:
        cudart = None
    if cudart is not None:
        return CudaPython(cudart)
    try:
        import pycuda.driver as driver
        import pycuda.autoinit  # noqa: F401 - creates and pushes a context on device 0
    except ImportError as e:
        raise BackendError(_INSTALL) from e
    log.warning("cuda-python not found; using pycuda (no CUDA graphs)")
    return PyCuda(driver)


def _host_view(ptr: int, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    buf = (ctypes.c_uint8 * nbytes).from_address(int(ptr))
    return np.frombuffer(buf, dtype=np.uint8).view(dtype).reshape(shape)


class CudaPython:
    name = "cuda-python"
    supports_graphs = True

    def __init__(self, cudart: Any) -> None:
        self.rt = cudart

    def call(self, result: Any, what: str) -> Any:
        """Check the error of a cuda-python call's ``(error, *results)`` and return the results."""
        if not isinstance(result, tuple):
            result = (result,)
        err, rest = result[0], result[1:]
        if err != self.rt.cudaError_t.cudaSuccess:
            try:
                name = self.rt.cudaGetErrorName(err)[1]
                name = name.decode() if isinstance(name, bytes) else name
            except Exception:  # noqa: BLE001 - the error code alone still says what failed
                name = str(err)
            raise CudaError(f"CUDA call {what} failed: {name} ({err})")
        if not rest:
            return None
        return rest[0] if len(rest) == 1 else rest

    def set_device(self, device: int) -> None:
        self.call(self.rt.cudaSetDevice(device), f"cudaSetDevice({device})")

    def stream_create(self) -> Any:
        return self.call(self.rt.cudaStreamCreate(), "cudaStreamCreate")

    @staticmethod
    def stream_handle(stream: Any) -> int:
        return int(stream)

    def host_empty(self, shape: tuple[int, ...], dtype: np.dtype) -> tuple[np.ndarray, int]:
        """Page-locked host array (zeroed) and its pointer."""
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        ptr = int(self.call(self.rt.cudaMallocHost(nbytes), f"cudaMallocHost({nbytes})"))
        arr = _host_view(ptr, shape, dtype)
        arr.fill(0)
        return arr, ptr

    def device_malloc(self, nbytes: int) -> int:
        ptr = int(self.call(self.rt.cudaMalloc(nbytes), f"cudaMalloc({nbytes})"))
        self.call(self.rt.cudaMemset(ptr, 0, nbytes), "cudaMemset")
        return ptr

    def zero_async(self, ptr: int, nbytes: int, stream: Any) -> None:
        self.call(self.rt.cudaMemsetAsync(ptr, 0, nbytes, stream), "cudaMemsetAsync")

    def h2d_async(self, dst: int, src: np.ndarray, stream: Any) -> None:
        self.call(self.rt.cudaMemcpyAsync(dst, src.ctypes.data, src.nbytes,
                                          self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice, stream),
                  "cudaMemcpyAsync(H2D)")

    def d2h_async(self, dst: np.ndarray, src: int, stream: Any) -> None:
        self.call(self.rt.cudaMemcpyAsync(dst.ctypes.data, src, dst.nbytes,
                                          self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost, stream),
                  "cudaMemcpyAsync(D2H)")

    def d2d_async(self, dst: int, src: int, nbytes: int, stream: Any) -> None:
        self.call(self.rt.cudaMemcpyAsync(dst, src, nbytes, self.rt.cudaMemcpyKind.cudaMemcpyDeviceToDevice, stream),
                  "cudaMemcpyAsync(D2D)")

    def sync(self, stream: Any) -> None:
        self.call(self.rt.cudaStreamSynchronize(stream), "cudaStreamSynchronize")

    def begin_capture(self, stream: Any) -> None:
        mode = self.rt.cudaStreamCaptureMode.cudaStreamCaptureModeGlobal
        self.call(self.rt.cudaStreamBeginCapture(stream, mode), "cudaStreamBeginCapture")

    def end_capture(self, stream: Any) -> Any:
        return self.call(self.rt.cudaStreamEndCapture(stream), "cudaStreamEndCapture")

    def instantiate(self, graph: Any) -> Any:
        try:
            result = self.rt.cudaGraphInstantiate(graph, 0)  # CUDA 12: (graph, flags)
        except TypeError:
            result = self.rt.cudaGraphInstantiate(graph, b"", 0)  # CUDA 11: (graph, log, size)
        out = self.call(result, "cudaGraphInstantiate")
        return out[0] if isinstance(out, tuple) else out

    def graph_launch(self, graph_exec: Any, stream: Any) -> None:
        self.call(self.rt.cudaGraphLaunch(graph_exec, stream), "cudaGraphLaunch")

    def destroy_graph(self, graph: Any) -> None:
        self.call(self.rt.cudaGraphDestroy(graph), "cudaGraphDestroy")

    def destroy_graph_exec(self, graph_exec: Any) -> None:
        self.call(self.rt.cudaGraphExecDestroy(graph_exec), "cudaGraphExecDestroy")

    def free_host(self, ptr: int) -> None:
        self.call(self.rt.cudaFreeHost(ptr), "cudaFreeHost")

    def free_device(self, ptr: int) -> None:
        self.call(self.rt.cudaFree(ptr), "cudaFree")

    def stream_destroy(self, stream: Any) -> None:
        self.call(self.rt.cudaStreamDestroy(stream), "cudaStreamDestroy")


class PyCuda:
    """pycuda fallback (raises its own errors, wrapped as :class:`CudaError`)."""

    name = "pycuda"
    supports_graphs = False

    def __init__(self, driver: Any) -> None:
        self.drv = driver
        self._host: dict[int, np.ndarray] = {}
        self._device: dict[int, Any] = {}

    def _wrap(self, fn, what: str, *args):
        try:
            return fn(*args)
        except self.drv.Error as e:
            raise CudaError(f"CUDA call {what} failed: {e}") from e

    def set_device(self, device: int) -> None:
        if device != 0:
            raise BackendError("pycuda.autoinit uses device 0; install cuda-python for another")

    def stream_create(self) -> Any:
        return self._wrap(self.drv.Stream, "Stream()")

    @staticmethod
    def stream_handle(stream: Any) -> int:
        return int(stream.handle)

    def host_empty(self, shape: tuple[int, ...], dtype: np.dtype) -> tuple[np.ndarray, int]:
        arr = self._wrap(self.drv.pagelocked_zeros, "pagelocked_zeros", shape, dtype)
        ptr = arr.ctypes.data
        self._host[ptr] = arr
        return arr, ptr

    def device_malloc(self, nbytes: int) -> int:
        alloc = self._wrap(self.drv.mem_alloc, f"mem_alloc({nbytes})", nbytes)
        self._wrap(self.drv.memset_d8, "memset_d8", alloc, 0, nbytes)
        self._device[int(alloc)] = alloc
        return int(alloc)

    def zero_async(self, ptr: int, nbytes: int, stream: Any) -> None:
        self._wrap(self.drv.memset_d8_async, "memset_d8_async", ptr, 0, nbytes, stream)

    def h2d_async(self, dst: int, src: np.ndarray, stream: Any) -> None:
        self._wrap(self.drv.memcpy_htod_async, "memcpy_htod_async", dst, src, stream)

    def d2h_async(self, dst: np.ndarray, src: int, stream: Any) -> None:
        self._wrap(self.drv.memcpy_dtoh_async, "memcpy_dtoh_async", dst, src, stream)

    def d2d_async(self, dst: int, src: int, nbytes: int, stream: Any) -> None:
        self._wrap(self.drv.memcpy_dtod_async, "memcpy_dtod_async", dst, src, nbytes, stream)

    def sync(self, stream: Any) -> None:
        self._wrap(stream.synchronize, "Stream.synchronize")

    def free_host(self, ptr: int) -> None:
        self._host.pop(ptr, None)

    def free_device(self, ptr: int) -> None:
        alloc = self._device.pop(ptr, None)
        if alloc is not None:
            alloc.free()

    def stream_destroy(self, stream: Any) -> None:
        pass
