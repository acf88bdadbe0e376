"""TensorRT backend for ``.engine`` / ``.plan`` files (TensorRT 10.x / 11.x Python API).

Written from NVIDIA's documentation and samples (TensorRT cannot be installed on the development
machines; the tests drive this code with stand-ins for ``tensorrt`` and ``cudart``):

* an optional plugin library is loaded with ``ctypes.CDLL`` *before* deserialising, so its creators
  are registered; the engine is deserialised with a logger;
* every I/O tensor is logged (name, mode, shape, dtype) and addressed by name with
  ``set_tensor_address``; buffers are page-locked host memory (``cudaMallocHost``) and device memory;
* one inference: async H2D copy, ``execute_async_v3(stream)``, async D2H copy, stream sync; every
  CUDA return code is checked;
* optional CUDA graph: run once (TensorRT finishes its lazy set-up), capture ``execute_async_v3`` on
  the backend's own (non-default) stream, then replay the graph per window.

The card comes from ``<engine>.json`` beside the engine; the engine's input must be ``(N, T, 3, S,
S)`` as the card says and its output ``(N, classes)``. Engines are tied to the GPU, the platform and
the TensorRT version that built them: build them on the target.
"""

from __future__ import annotations

import ctypes
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from runtime.card import CardError, ModelCard
from runtime.backends.base import (Backend, BackendError, ModelOptions, OpenedCard, check_clip_model,
                                   check_model_file, check_model_matches_card, resolve_card)
from runtime.backends.cuda_api import load_cuda
from runtime.trt_version import import_tensorrt

log = logging.getLogger(__name__)

__all__ = ["EngineHolder", "OpenedEngine", "TensorInfo", "TensorRTBackend", "engine_io", "load_plugin_library", "open_engine"]

_LOG_LEVELS = ("error", "warning", "info", "verbose")


def _import_tensorrt():
    try:
        return import_tensorrt()
    except ImportError as e:
        raise BackendError(f"the .engine backend needs TensorRT's Python bindings, of the same version "
                           f"that built the engine: {e}") from e


def load_plugin_library(path: str | os.PathLike) -> ctypes.CDLL:
    """Load a TensorRT plugin library (its creators register themselves on load)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"TensorRT plugin library not found: {p}")
    try:
        return ctypes.CDLL(str(p.resolve()), mode=ctypes.RTLD_GLOBAL)
    except OSError as e:
        raise BackendError(f"cannot load TensorRT plugin library {p}: {e} (built for another "
                           "TensorRT / CUDA / architecture?)") from e


@dataclass
class OpenedEngine:
    """What :func:`open_engine` hands back: the module, the CUDA binding, and the live objects (the
    plugin library and runtime are kept so that they outlive the engine)."""

    trt: Any
    cuda: Any
    runtime: Any
    engine: Any
    context: Any
    plugin_lib: ctypes.CDLL | None


def open_engine(path: Path, *, plugin: str | os.PathLike | None = None, device: int = 0,
                log_level: str = "warning", cuda_graph: bool = False) -> OpenedEngine:
    """Import TensorRT and the CUDA binding, load the plugin library (before deserialising, so its
    creators are registered), deserialise ``path`` and create an execution context; every failure
    is a :class:`BackendError` that says what to do."""
    if log_level not in _LOG_LEVELS:
        raise ValueError(f"log_level must be one of {_LOG_LEVELS}")
    trt = _import_tensorrt()
    cuda = load_cuda()
    if cuda_graph and not cuda.supports_graphs:
        raise BackendError(f"--cuda-graph needs cuda-python ({cuda.name} was found)")
    cuda.set_device(device)
    plugin_lib = None
    if plugin:
        plugin_lib = load_plugin_library(plugin)
        log.info("loaded TensorRT plugin library %s", plugin)
    logger = trt.Logger(getattr(trt.Logger, log_level.upper()))
    trt.init_libnvinfer_plugins(logger, "")
    runtime = trt.Runtime(logger)
    engine = runtime.deserialize_cuda_engine(path.read_bytes())
    if engine is None:
        hint = "" if plugin else "; an engine with the saliency-attention plugin needs --plugin"
        raise BackendError(
            f"TensorRT {getattr(trt, '__version__', '?')} could not deserialise {path} (see the "
            "TensorRT log above): engines only run on the GPU, platform and TensorRT version "
            f"that built them; rebuild it on this device (python export/build_engine.py){hint}"
        )
    context = engine.create_execution_context()
    if context is None:
        raise BackendError(f"could not create an execution context for {path} (GPU memory?)")
    return OpenedEngine(trt, cuda, runtime, engine, context, plugin_lib)


def engine_io(trt: Any, engine: Any) -> tuple[list[str], list[str]]:
    """(input names, output names) of ``engine`` in its order, each logged as built (-1: dynamic)."""
    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
    for n in names:
        log.info("engine tensor %s %s: %s %s", "input " if n in inputs else "output", n,
                 list(engine.get_tensor_shape(n)), engine.get_tensor_dtype(n))
    return inputs, [n for n in names if n not in inputs]


@dataclass(frozen=True)
class TensorInfo:
    name: str
    is_input: bool
    shape: tuple[int, ...]
    dtype: np.dtype

    def __str__(self) -> str:
        return (f"{'input ' if self.is_input else 'output'} {self.name}: "
                f"{list(self.shape)} {np.dtype(self.dtype).name}")


class EngineHolder:
    """What a loaded engine holds, and frees in :meth:`close`: the CUDA binding, a stream, I/O
    buffers by tensor name (page-locked host and device), CUDA graph execs by key, and the
    TensorRT objects. :class:`TensorRTBackend` and ``tensorrt_step.TensorRTStep`` share it."""

    @classmethod
    def open(cls, path: Path, opened: OpenedCard, options: ModelOptions) -> Any:
        """The engine of a card :func:`runtime.backends.open_model` read (a clip or a step engine,
        by the class); everything allocated is freed when loading fails."""
        holder = cls(plugin=options.plugin, cuda_graph=options.cuda_graph,
                     device=int(options.device) if options.device is not None else 0)
        try:
            return holder.load(path, opened.card, card_source=opened.source)
        except BaseException:
            holder.close()
            raise

    def _init_engine_holder(self) -> None:
        self._cuda = self._stream = None
        self._host: dict[str, tuple[np.ndarray, int]] = {}
        self._device: dict[str, int] = {}
        self._graphs: dict[Any, Any] = {}
        self._context = self._engine = self._runtime = self._plugin_lib = None

    def _adopt(self, opened: OpenedEngine) -> None:
        self._cuda, self._plugin_lib, self._runtime = opened.cuda, opened.plugin_lib, opened.runtime
        self._engine, self._context = opened.engine, opened.context
        self._stream = opened.cuda.stream_create()

    def _address(self, name: str, ptr: int) -> None:
        if not self._context.set_tensor_address(name, ptr):
            raise BackendError(f"set_tensor_address({name!r}) failed")

    def _io_buffer(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """A page-locked host array and a device buffer for tensor ``name``, the device one bound."""
        host, hptr = self._cuda.host_empty(shape, dtype)
        self._host[name] = (host, hptr)
        self._device[name] = self._cuda.device_malloc(host.nbytes)
        self._address(name, self._device[name])
        return host

    def _execute(self) -> None:
        if not self._context.execute_async_v3(self._cuda.stream_handle(self._stream)):
            raise BackendError(f"execute_async_v3 failed for {self.model_path} (see TensorRT log)")

    def _capture(self) -> Any:
        """A CUDA graph exec of one ``execute_async_v3`` with the addresses bound now (TensorRT's
        lazy set-up must already have run: execute once before the first capture)."""
        cuda, stream = self._cuda, self._stream
        cuda.begin_capture(stream)
        try:
            ok = self._context.execute_async_v3(cuda.stream_handle(stream))
        finally:
            try:
                graph = cuda.end_capture(stream)
            except BackendError as e:
                raise BackendError(f"this engine cannot be captured in a CUDA graph ({e}); run "
                                   "without --cuda-graph") from e
        try:
            if not ok:
                raise BackendError("execute_async_v3 failed during CUDA graph capture; run without "
                                   "--cuda-graph")
            return cuda.instantiate(graph)
        finally:
            cuda.destroy_graph(graph)

    def close(self) -> None:
        cuda = self._cuda
        if cuda is None:
            return
        try:
            if self._stream is not None:
                cuda.sync(self._stream)
            self._release_more()
            for graph_exec in self._graphs.values():
                cuda.destroy_graph_exec(graph_exec)
            for _, ptr in self._host.values():
                cuda.free_host(ptr)
            for ptr in self._device.values():
                cuda.free_device(ptr)
            if self._stream is not None:
                cuda.stream_destroy(self._stream)
        finally:
            self._graphs.clear()
            self._stream = None
            self._host.clear()
            self._device.clear()
            self._context = self._engine = self._runtime = None
            self._cuda = None

    def _release_more(self) -> None:
        """What a subclass frees beyond the I/O buffers (before them)."""


class TensorRTBackend(EngineHolder, Backend):
    name = "tensorrt"

    def __init__(self, plugin: str | os.PathLike | None = None, cuda_graph: bool = False,
                 device: int = 0, log_level: str = "warning") -> None:
        super().__init__()
        if log_level not in _LOG_LEVELS:
            raise ValueError(f"log_level must be one of {_LOG_LEVELS}")
        self.plugin = plugin
        self.cuda_graph = cuda_graph
        self.device = device
        self.log_level = log_level
        self.tensors: list[TensorInfo] = []
        self._init_engine_holder()  # CUDA graphs by batch size
        self._dynamic = False
        self._bound_batch = 1
        self.min_batch = 1

    # -- loading -------------------------------------------------------------------------------
    def load(self, model_path: str | os.PathLike, card: ModelCard | str | os.PathLike | None = None,
             *, card_source: str | None = None) -> "TensorRTBackend":
        path = check_model_file(model_path)
        card, source = resolve_card(path, card, card_source=card_source)
        check_clip_model(path, card, source)
        opened = open_engine(path, plugin=self.plugin, device=self.device, log_level=self.log_level,
                             cuda_graph=self.cuda_graph)
        self._adopt(opened)
        self.card, self.model_path, self.card_source = card, path, source
        self._bind(opened.trt, opened.engine, path, card, source)
        if self.cuda_graph:
            self._capture_graph()
        log.info("TensorRT engine %s ready (%s%s)", path.name, opened.cuda.name,
                 ", CUDA graph" if self._graphs else "")
        return self

    def _bind(self, trt: Any, engine: Any, path: Path, card: ModelCard, source: str) -> None:
        ctx = self._context
        inputs, outputs = engine_io(trt, engine)
        if len(inputs) != 1 or len(outputs) != 1:
            raise CardError(f"engine {path} has inputs {inputs} and outputs {outputs}; the card "
                            f"{source} describes one clip input and one logits output")
        in_name, out_name = inputs[0], outputs[0]
        shape = tuple(engine.get_tensor_shape(in_name))
        self._dynamic = len(shape) > 0 and shape[0] < 0
        if any(d < 0 for d in shape):  # dynamic: batch from the optimisation profile, T and size from the card
            lo, hi = 1, 1
            if self._dynamic and hasattr(engine, "get_tensor_profile_shape"):
                pmin, _, pmax = engine.get_tensor_profile_shape(in_name, 0)
                lo, hi = int(pmin[0]), int(pmax[0])
            want = (lo,) + card.input_shape
            if len(shape) != len(want) or not ctx.set_input_shape(in_name, want):
                raise CardError(f"engine {path} input {in_name} {list(shape)} cannot take the "
                                f"card's clip {list(want)} ({source}; outside the optimisation profile?)")
            self.min_batch, self.max_batch = lo, hi
        in_shape = tuple(ctx.get_tensor_shape(in_name))
        out_shape = tuple(ctx.get_tensor_shape(out_name))
        check_model_matches_card(path, card, source, in_shape,
                                 out_shape[-1] if len(out_shape) == 2 else None)
        if len(out_shape) != 2 or out_shape[0] != in_shape[0]:
            raise CardError(f"engine {path} output {out_name} has shape {list(out_shape)}, "
                            f"expected ({in_shape[0]}, {card.num_classes}) for card {source}")
        if not self._dynamic:
            self.fixed_batch = self.min_batch = self.max_batch = in_shape[0]
        self._bound_batch = in_shape[0]
        self.tensors = []
        for name, shp in ((in_name, in_shape), (out_name, out_shape)):
            info = TensorInfo(name, name == in_name, shp, np.dtype(trt.nptype(engine.get_tensor_dtype(name))))
            log.info("bound %s%s", info, f" (batch {self.min_batch}..{self.max_batch})"
                     if self._dynamic else "")
            self.tensors.append(info)
            self._io_buffer(name, (self.max_batch,) + tuple(shp[1:]), info.dtype)  # the profile's largest batch
        self._in, self._out = self.tensors

    def _set_batch(self, n: int) -> None:
        if n == self._bound_batch:
            return
        if not self._context.set_input_shape(self._in.name, (n,) + tuple(self._in.shape[1:])):
            raise BackendError(f"engine {self.model_path} rejected batch {n}")
        self._bound_batch = n

    def _capture_graph(self) -> Any:
        if not self._context.execute_async_v3(self._cuda.stream_handle(self._stream)):  # TensorRT's lazy set-up
            raise BackendError("execute_async_v3 failed before CUDA graph capture")
        self._cuda.sync(self._stream)
        graph_exec = self._graphs[self._bound_batch] = self._capture()
        return graph_exec

    # -- inference -----------------------------------------------------------------------------
    def infer(self, clip: np.ndarray) -> np.ndarray:
        """Logits for a batch of clips: a static engine takes exactly its batch, a dynamic one
        any batch of its optimisation profile (one CUDA graph per batch size with --cuda-graph)."""
        self.check_clip(clip)
        n = clip.shape[0]
        if not self.min_batch <= n <= self.max_batch:
            raise ValueError(f"engine {self.model_path} takes batch {self.min_batch}"
                             + (f"..{self.max_batch}" if self.max_batch != self.min_batch else "")
                             + f" of {list(self._in.shape[1:])}, got {list(clip.shape)}")
        cuda, stream = self._cuda, self._stream
        self._set_batch(n)
        host_in = self._host[self._in.name][0][:n]
        host_out = self._host[self._out.name][0][:n]
        np.copyto(host_in, clip, casting="same_kind")  # also float32 -> float16 engines
        cuda.h2d_async(self._device[self._in.name], host_in, stream)
        if self.cuda_graph:
            graph_exec = self._graphs.get(n)
            if graph_exec is None:
                graph_exec = self._capture_graph()  # (its warm-up run already did this batch)
            cuda.graph_launch(graph_exec, stream)
        else:
            self._execute()
        cuda.d2h_async(host_out, self._device[self._out.name], stream)
        cuda.sync(stream)
        return host_out.astype(np.float32, copy=True)
