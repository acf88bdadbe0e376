"""A stand-in for cuda-python's ``cudart`` (``cuda.bindings.runtime``), just enough to drive
runtime.backends.tensorrt_backend on a machine without a GPU: "device" memory is host memory, so an
engine of the TensorRT double (tests/trt_double.py) really computes :func:`colour_model` from the
bytes the backend copied in, and a test sees whether inputs, outputs, addresses and copies were
wired correctly."""

from __future__ import annotations

import ctypes
import enum
import sys
import types

import numpy as np


class CudaRt(types.ModuleType):
    class cudaError_t(enum.IntEnum):  # noqa: N801
        cudaSuccess = 0
        cudaErrorMemoryAllocation = 2
        cudaErrorStreamCaptureInvalidated = 901

    class cudaMemcpyKind(enum.IntEnum):  # noqa: N801
        cudaMemcpyHostToDevice = 1
        cudaMemcpyDeviceToHost = 2
        cudaMemcpyDeviceToDevice = 3

    class cudaStreamCaptureMode(enum.IntEnum):  # noqa: N801
        cudaStreamCaptureModeGlobal = 0

    class Stream:
        def __init__(self, handle: int) -> None:
            self.handle = handle

        def __int__(self) -> int:
            return self.handle

    def __init__(self) -> None:
        super().__init__("cuda.bindings.runtime")
        self.buffers: dict[int, ctypes.Array] = {}
        self.ops: list[str] = []
        self.capturing: list | None = None
        self.graphs: dict[str, list] = {}
        self.fail_malloc_over: int | None = None
        self.fail_capture = False

    def _ok(self, *rest):
        return (self.cudaError_t.cudaSuccess, *rest)

    def _alloc(self, n):
        buf = (ctypes.c_uint8 * n)()
        ptr = ctypes.addressof(buf)
        self.buffers[ptr] = buf
        return ptr

    def cudaSetDevice(self, d):  # noqa: N802
        return self._ok()

    def cudaGetErrorName(self, err):  # noqa: N802
        return self._ok(self.cudaError_t(err).name.encode())

    def cudaMallocHost(self, n):  # noqa: N802
        return self._ok(self._alloc(n))

    def cudaMalloc(self, n):  # noqa: N802
        if self.fail_malloc_over is not None and n > self.fail_malloc_over:
            return (self.cudaError_t.cudaErrorMemoryAllocation, 0)
        return self._ok(self._alloc(n))

    def cudaMemset(self, ptr, value, n):  # noqa: N802
        ctypes.memset(ptr, value, n)
        return self._ok()

    def cudaMemsetAsync(self, ptr, value, n, stream):  # noqa: N802
        assert isinstance(stream, self.Stream)
        ctypes.memset(ptr, value, n)
        self.ops.append("memset")
        return self._ok()

    def cudaMemcpyAsync(self, dst, src, n, kind, stream):  # noqa: N802
        assert isinstance(stream, self.Stream)
        for ptr in (dst, src):  # a device-side copy must stay inside buffers cudaMalloc gave
            if kind == self.cudaMemcpyKind.cudaMemcpyDeviceToDevice:
                assert any(a <= ptr and ptr + n <= a + len(b) for a, b in self.buffers.items()), "copy out of bounds"
        ctypes.memmove(dst, src, n)
        self.ops.append({self.cudaMemcpyKind.cudaMemcpyHostToDevice: "h2d", self.cudaMemcpyKind.cudaMemcpyDeviceToHost: "d2h",
                         self.cudaMemcpyKind.cudaMemcpyDeviceToDevice: "d2d"}[kind])
        return self._ok()

    def cudaMemcpy(self, dst, src, n, kind):  # noqa: N802
        ctypes.memmove(dst, src, n)
        self.ops.append("h2d" if kind == self.cudaMemcpyKind.cudaMemcpyHostToDevice else "d2h")
        return self._ok()

    def cudaGetErrorString(self, err):  # noqa: N802
        return self._ok(self.cudaError_t(err).name.encode())

    def cudaStreamCreate(self):  # noqa: N802
        return self._ok(self.Stream(0x5EED))

    def cudaStreamSynchronize(self, s):  # noqa: N802
        self.ops.append("sync")
        return self._ok()

    def cudaStreamBeginCapture(self, s, mode):  # noqa: N802
        self.capturing = []
        return self._ok()

    def cudaStreamEndCapture(self, s):  # noqa: N802
        work, self.capturing = self.capturing, None
        if self.fail_capture:
            return (self.cudaError_t.cudaErrorStreamCaptureInvalidated, None)
        name = f"graph{len(self.graphs)}"
        self.graphs[name] = work
        return self._ok(name)

    def cudaGraphInstantiate(self, graph, flags):  # noqa: N802
        return self._ok(graph + "-exec")

    def cudaGraphLaunch(self, graph_exec, s):  # noqa: N802
        self.ops.append("graph")
        for fn in self.graphs[graph_exec[: -len("-exec")]]:
            fn()
        return self._ok()

    def cudaGraphDestroy(self, g):  # noqa: N802
        return self._ok()

    def cudaGraphExecDestroy(self, g):  # noqa: N802
        return self._ok()

    def cudaFreeHost(self, ptr):  # noqa: N802
        self.buffers.pop(ptr)
        return self._ok()

    def cudaFree(self, ptr):  # noqa: N802
        self.buffers.pop(ptr)
        return self._ok()

    def cudaStreamDestroy(self, s):  # noqa: N802
        return self._ok()

    def launch(self, run, stream_handle) -> None:
        """Work enqueued on a stream: recorded into a graph while capturing, else run now."""
        assert isinstance(stream_handle, int) and stream_handle == 0x5EED
        if self.capturing is not None:
            self.capturing.append(run)
        else:
            run()
            self.ops.append("execute")


def _view(ptr: int, shape, dtype) -> np.ndarray:
    n = int(np.prod(shape)) * np.dtype(dtype).itemsize
    return np.frombuffer((ctypes.c_uint8 * n).from_address(ptr), np.uint8).view(dtype).reshape(shape)



def colour_model(addresses: dict, shape: tuple, classes: int, dtype: str = "float32"):
    """The engines' function: logits = mean colour of the clip x a fixed (3, K) matrix (5 on the
    diagonal), read from and written to the bound addresses."""

    def run() -> None:
        x = _view(addresses["clip"], shape, np.dtype(dtype)).astype(np.float32)
        w = np.zeros((3, classes), np.float32)
        for c in range(min(3, classes)):
            w[c, c] = 5.0
        out = _view(addresses["logits"], (shape[0], classes), np.dtype(dtype))
        out[:] = x.mean(axis=(1, 3, 4)) @ w

    return run


_SESSIONS: dict[str, object] = {}


def onnx_step(spec: dict, addresses: dict, shapes: dict):
    """A step engine's function: its ONNX graph in onnxruntime, every input read from and every
    output written to the bound address (so the state buffers and their swapping are exercised), at
    the shapes the context bound (``shapes``: a dynamic batch as set_input_shape set it)."""
    assert all(d >= 0 for shape in shapes.values() for d in shape), f"a dynamic shape left unbound: {shapes}"
    import onnxruntime

    path = spec["onnx"]
    if path not in _SESSIONS:
        _SESSIONS[path] = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    session = _SESSIONS[path]

    def run() -> None:
        bound = [addresses[t["name"]] for t in spec["io"]]  # KeyError: a tensor left unbound
        assert len(set(bound)) == len(bound), "TensorRT inputs and outputs must not share memory"
        feeds = {t["name"]: _view(addresses[t["name"]], shapes[t["name"]], t["dtype"]).copy()
                 for t in spec["io"] if t["input"]}
        names = [t["name"] for t in spec["io"] if not t["input"]]
        for t, value in zip([t for t in spec["io"] if not t["input"]], session.run(names, feeds)):
            _view(addresses[t["name"]], shapes[t["name"]], t["dtype"])[...] = value

    return run


def install_cudart(monkeypatch, cudart: CudaRt) -> CudaRt:
    """Put ``cudart`` in ``sys.modules`` as ``cuda.bindings.runtime``."""
    cuda_pkg = types.ModuleType("cuda")
    bindings = types.ModuleType("cuda.bindings")
    bindings.runtime = cudart
    cuda_pkg.bindings = bindings
    monkeypatch.setitem(sys.modules, "cuda", cuda_pkg)
    monkeypatch.setitem(sys.modules, "cuda.bindings", bindings)
    monkeypatch.setitem(sys.modules, "cuda.bindings.runtime", cudart)
    return cudart
