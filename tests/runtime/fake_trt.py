"""Stand-ins for ``tensorrt`` and cuda-python's ``cudart``, just enough to drive
runtime.backends.tensorrt_backend end to end on a machine without a GPU.

"Device" memory is host memory, so the fake engine really computes the tiny colour model from the
bytes the backend copied in, and the test sees whether inputs, outputs, addresses and copies were
wired correctly. The "engine file" is JSON: {"input": [N, T, 3, S, S], "classes": K, "dtype": ...}
(-1 for a dynamic dimension)."""

from __future__ import annotations

import ctypes
import enum
import json
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

    def cudaMemcpyAsync(self, dst, src, n, kind, stream):  # noqa: N802
        assert isinstance(stream, self.Stream)
        ctypes.memmove(dst, src, n)
        self.ops.append("h2d" if kind == self.cudaMemcpyKind.cudaMemcpyHostToDevice else "d2h")
        return self._ok()

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


def _view(ptr: int, shape, dtype) -> np.ndarray:
    n = int(np.prod(shape)) * np.dtype(dtype).itemsize
    return np.frombuffer((ctypes.c_uint8 * n).from_address(ptr), np.uint8).view(dtype).reshape(shape)


class Context:
    def __init__(self, engine: "Engine", cudart: CudaRt) -> None:
        self.engine, self.cudart = engine, cudart
        self.shapes = {"clip": tuple(engine.spec["input"]), "logits": None}
        self.addresses: dict[str, int] = {}
        self.executed = 0

    def set_input_shape(self, name, shape):
        lo_hi = self.engine.spec.get("profile_batch", [1, 1])
        if len(shape) != 5 or not lo_hi[0] <= shape[0] <= lo_hi[1]:
            return False
        if any(d not in (-1, s) for d, s in zip(self.engine.spec["input"], shape)):
            return False
        self.shapes["clip"] = tuple(shape)
        return True

    def get_tensor_shape(self, name):
        clip = self.shapes["clip"]
        return clip if name == "clip" else (clip[0], self.engine.spec["classes"])

    def set_tensor_address(self, name, ptr):
        self.addresses[name] = ptr
        return True

    def _run(self):
        dtype = np.dtype(self.engine.spec.get("dtype", "float32"))
        shape = self.get_tensor_shape("clip")
        x = _view(self.addresses["clip"], shape, dtype).astype(np.float32)
        k = self.engine.spec["classes"]
        w = np.zeros((3, k), np.float32)
        for c in range(min(3, k)):
            w[c, c] = 5.0
        out = _view(self.addresses["logits"], (shape[0], k), dtype)
        out[:] = x.mean(axis=(1, 3, 4)) @ w

    def execute_async_v3(self, stream_handle):
        assert isinstance(stream_handle, int) and stream_handle == 0x5EED
        self.executed += 1
        if self.cudart.capturing is not None:
            self.cudart.capturing.append(self._run)
        else:
            self._run()
            self.cudart.ops.append("execute")
        return True


class Engine:
    def __init__(self, spec: dict, cudart: CudaRt) -> None:
        self.spec, self.cudart = spec, cudart
        self.num_io_tensors = 2
        self.contexts: list[Context] = []

    def get_tensor_name(self, i):
        return ("clip", "logits")[i]

    def get_tensor_mode(self, name):
        return TensorRT.TensorIOMode.INPUT if name == "clip" else TensorRT.TensorIOMode.OUTPUT

    def get_tensor_shape(self, name):
        return tuple(self.spec["input"]) if name == "clip" else (self.spec["input"][0], self.spec["classes"])

    def get_tensor_dtype(self, name):
        return self.spec.get("dtype", "float32")

    def get_tensor_profile_shape(self, name, profile):
        lo, hi = self.spec.get("profile_batch", [1, 1])
        rest = tuple(self.spec["input"][1:])
        return (lo,) + rest, (lo,) + rest, (hi,) + rest

    def create_execution_context(self):
        ctx = Context(self, self.cudart)
        self.contexts.append(ctx)
        return ctx


class TensorRT(types.ModuleType):
    __version__ = "10.3.0-fake"

    class Logger:
        ERROR, WARNING, INFO, VERBOSE = range(4)

        def __init__(self, level):
            self.level = level

    class TensorIOMode(enum.Enum):
        INPUT = 1
        OUTPUT = 2

    def __init__(self, cudart: CudaRt) -> None:
        super().__init__("tensorrt")
        self.cudart = cudart
        self.plugins_initialised = False
        self.engines: list[Engine] = []
        fake = self

        class Runtime:
            def __init__(self, logger):
                self.logger = logger

            def deserialize_cuda_engine(self, data: bytes):
                try:
                    spec = json.loads(data)
                except ValueError:
                    return None
                engine = Engine(spec, fake.cudart)
                fake.engines.append(engine)
                return engine

        self.Runtime = Runtime

    def init_libnvinfer_plugins(self, logger, namespace):
        self.plugins_initialised = True
        return True

    @staticmethod
    def nptype(dtype):
        return np.dtype(dtype).type


def install(monkeypatch) -> tuple[TensorRT, CudaRt]:
    """Put the fakes in sys.modules as ``tensorrt`` and ``cuda.bindings.runtime``."""
    cudart = CudaRt()
    trt = TensorRT(cudart)
    cuda_pkg = types.ModuleType("cuda")
    bindings = types.ModuleType("cuda.bindings")
    bindings.runtime = cudart
    cuda_pkg.bindings = bindings
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setitem(sys.modules, "cuda", cuda_pkg)
    monkeypatch.setitem(sys.modules, "cuda.bindings", bindings)
    monkeypatch.setitem(sys.modules, "cuda.bindings.runtime", cudart)
    return trt, cudart
