"""TensorRT engines of online step graphs (``mode: online``; TensorRT 10.x / 11.x Python API).

An engine built from ``<name>.online*.onnx`` (``python export/build_engine.py --onnx ...``) has the
step graph's I/O: ``frame`` (1, 3, S, S) and every state tensor in, ``logits`` (1, classes) and
every state as ``<name>.next`` out, all static. Written from NVIDIA's documentation (TensorRT cannot
be installed on the development machines; the tests drive this code with the manifest-checked
TensorRT double and a cudart stand-in, the double's engine computing the step graph in onnxruntime):

* **The state stays on the GPU.** Each state (one stream, or one phase of a stream) is two sets of
  device buffers; a step reads one set and writes the other (``set_tensor_address`` of ``<name>``
  and ``<name>.next``), and the sets swap roles. Only the frame goes in and the logits come out per
  step: no state crosses PCIe (on a Jetson, no copy at all beyond the frame). TensorRT's inputs
  and outputs never alias, hence two sets rather than one.
* **A reset** is ``cudaMemsetAsync`` of the set the next step reads (the zero state is the clip
  model's zero padding before frame 0).
* **CUDA graph** (``--cuda-graph``): addresses are baked into a captured graph, so one graph is
  captured per (state, which set it reads) on first use and replayed afterwards; TensorRT's lazy
  set-up runs once at load, on a scratch state, before any capture.
* **Batched steps** (an engine of a ``--dynamic-batch`` step graph, its optimisation profile's
  batch range): :meth:`TensorRTStep.run_batch` steps n states (streams, phases, forgetting tracks)
  in one ``execute_async_v3`` at batch n, up to the profile's largest batch a call. The states stay
  where they are: each is copied on the GPU (``cudaMemcpyAsync`` device to device) into row i of
  one batched buffer per state tensor, and row i of the batched outputs back into the state's other
  set, so only the n frames go in and the n logits come out. The batched buffers are fixed, so with
  ``--cuda-graph`` one graph per batch size is captured (as the clip engine's), the copies enqueued
  around it. A single state (:meth:`TensorRTStep.run`) still binds its own buffers at batch 1.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np


from runtime.backends.base import check_model_file, resolve_card
from runtime.backends.tensorrt_backend import EngineHolder, engine_io, open_engine
from runtime.card import CardError, ModelCard
from runtime.step_graph import FRAME_INPUT, LOGITS_OUTPUT, STATE_OUT_SUFFIX, StepModel, check_step_io

log = logging.getLogger(__name__)

__all__ = ["DeviceState", "TensorRTStep"]


class DeviceState:
    """One stream's state on the GPU: two buffer sets ({state name: device pointer}); ``current``
    is the set the next step reads."""

    def __init__(self, sets: tuple[dict[str, int], dict[str, int]]) -> None:
        self.sets = sets
        self.current = 0
        self.closed = False

    @property
    def reads(self) -> dict[str, int]:
        return self.sets[self.current]

    @property
    def writes(self) -> dict[str, int]:
        return self.sets[1 - self.current]


class TensorRTStep(EngineHolder, StepModel):
    """A step engine: :meth:`load`, then :meth:`new_state` per stream and :meth:`run` per frame."""

    name = "tensorrt"

    def __init__(self, plugin: str | os.PathLike | None = None, cuda_graph: bool = False, device: int = 0,
                 log_level: str = "warning") -> None:
        super().__init__()
        self.max_batch, self._bound_batch = 1, 1
        self.plugin, self.cuda_graph, self.device, self.log_level = plugin, cuda_graph, device, log_level
        self._init_engine_holder()  # I/O buffers: frame and logits; CUDA graphs by (id(state), set read)
        self._states: list[DeviceState] = []

    def load(self, model_path: str | os.PathLike, card: ModelCard | str | os.PathLike | None = None,
             *, card_source: str | None = None) -> "TensorRTStep":
        path = check_model_file(model_path)
        card, source = resolve_card(path, card, card_source=card_source)
        opened = open_engine(path, plugin=self.plugin, device=self.device, log_level=self.log_level,
                             cuda_graph=self.cuda_graph)
        self._adopt(opened)
        trt, engine = opened.trt, opened.engine
        inputs, outputs = engine_io(trt, engine)

        def spec(names: list[str]) -> dict[str, tuple[tuple, np.dtype]]:
            return {n: (tuple(engine.get_tensor_shape(n)), np.dtype(trt.nptype(engine.get_tensor_dtype(n))))
                    for n in names}

        self.card, self.card_source, self.model_path = card, source, path
        ins, outs = spec(inputs), spec(outputs)
        io = check_step_io(path, card, source, ins, outs)
        self.state_spec = io.state_spec
        self._state_nbytes = {n: int(np.prod(shape)) * dtype.itemsize for n, (shape, dtype) in self.state_spec.items()}
        self._inputs = {n: ins[n][0][1:] for n in inputs}  # each input's shape after the batch axis
        if io.dynamic_batch:  # an engine of a --dynamic-batch step graph: batch 1 to the profile's largest
            lo, _, hi = engine.get_tensor_profile_shape(FRAME_INPUT, 0)
            if int(lo[0]) > 1:
                raise CardError(f"engine {path}: its optimisation profile starts at batch {int(lo[0])}; a "
                                "step engine must take batch 1 (rebuild with --batch 1,...)")
            self.max_batch, self.fixed_batch = int(hi[0]), None
            self._bound_batch = 0
            self._set_batch(1)
        cuda = self._cuda
        self._io_buffer(FRAME_INPUT, (self.max_batch, *ins[FRAME_INPUT][0][1:]), ins[FRAME_INPUT][1])
        self._io_buffer(LOGITS_OUTPUT, (self.max_batch, *outs[LOGITS_OUTPUT][0][1:]), outs[LOGITS_OUTPUT][1])
        self._rows: dict[str, int] = {}  # batched state buffers (state name and <name>.next), max_batch rows
        if self.fixed_batch is None:
            for name in self.state_spec:
                for key in (name, name + STATE_OUT_SUFFIX):
                    self._rows[key] = self._device[key] = cuda.device_malloc(self.max_batch * self._state_nbytes[name])
        if self.cuda_graph:  # TensorRT's lazy set-up must not happen inside a capture: run once first
            scratch = self.new_state()
            try:
                self._bind_state(scratch)
                self._execute()
                cuda.sync(self._stream)
            finally:
                self.free_state(scratch)
        self._loaded(f"TensorRT {getattr(trt, '__version__', '?')}, {cuda.name}, state on the GPU"
                     + (f", batch 1..{self.max_batch} a step" if self.fixed_batch is None else "")
                     + (", CUDA graphs" if self.cuda_graph else ""))
        return self

    def _set_batch(self, n: int) -> None:
        """Every input's batch (a dynamic-batch engine)."""
        if n == self._bound_batch:
            return
        for name, rest in self._inputs.items():
            if not self._context.set_input_shape(name, (n, *rest)):
                raise CardError(f"engine {self.model_path} input {name} cannot take batch {n} "
                                "(outside its optimisation profile?)")
        self._bound_batch = n

    # -- states ----------------------------------------------------------------------------------
    def new_state(self) -> DeviceState:
        """Two zeroed buffer sets (``cudaMalloc`` zeroes them here)."""
        cuda = self._cuda
        sets: tuple[dict[str, int], dict[str, int]] = ({}, {})
        state = DeviceState(sets)
        self._states.append(state)  # freed by close() even if an allocation below fails
        for s in sets:
            for name in self.state_spec:
                s[name] = cuda.device_malloc(self._state_nbytes[name])
        return state

    def reset_state(self, state: DeviceState) -> DeviceState:
        for name, ptr in state.reads.items():
            self._cuda.zero_async(ptr, self._state_nbytes[name], self._stream)
        self._cuda.sync(self._stream)
        return state

    def free_state(self, state: DeviceState) -> None:
        """Give a state's GPU memory back before :meth:`close` (e.g. a stream that ended)."""
        if state.closed:
            return
        for key in [k for k in self._graphs if k[0] == id(state)]:
            self._cuda.destroy_graph_exec(self._graphs.pop(key))
        for s in state.sets:
            for ptr in s.values():
                self._cuda.free_device(ptr)
            s.clear()
        state.closed = True
        self._states.remove(state)

    # -- a step ----------------------------------------------------------------------------------
    def _bind_state(self, state: DeviceState) -> None:
        for name in self.state_spec:
            self._address(name, state.reads[name])
            self._address(name + STATE_OUT_SUFFIX, state.writes[name])

    def _graph_for(self, state: DeviceState) -> Any:
        key = (id(state), state.current)
        graph_exec = self._graphs.get(key)
        if graph_exec is not None:
            return graph_exec
        self._bind_state(state)
        graph_exec = self._graphs[key] = self._capture()
        return graph_exec

    def run(self, frame: np.ndarray, state: DeviceState) -> tuple[np.ndarray, DeviceState]:
        if state.closed:
            raise ValueError("this state was freed")
        cuda, stream = self._cuda, self._stream
        if self.fixed_batch is None:
            self._set_batch(1)
        host_in = self._host[FRAME_INPUT][0][:1]
        host_out = self._host[LOGITS_OUTPUT][0][:1]
        np.copyto(host_in, frame.reshape(host_in.shape), casting="same_kind")  # also to a float16 input
        cuda.h2d_async(self._device[FRAME_INPUT], host_in, stream)
        if self.cuda_graph:
            cuda.graph_launch(self._graph_for(state), stream)
        else:
            self._bind_state(state)
            self._execute()
        cuda.d2h_async(host_out, self._device[LOGITS_OUTPUT], stream)
        cuda.sync(stream)
        state.current = 1 - state.current  # what was written is what the next step reads
        return host_out[0].astype(np.float32, copy=True), state

    def run_batch(self, frames: np.ndarray, states: list[DeviceState]) -> tuple[np.ndarray, list[DeviceState]]:
        """n states stepped in one inference a chunk of up to :attr:`max_batch` (see the module
        docstring); a batch-1 engine steps them one after another."""
        if len(frames) != len(states):
            raise ValueError(f"{len(frames)} frames for {len(states)} states")
        if self.fixed_batch is not None or len(states) < 2:
            return super().run_batch(frames, states)
        if any(s.closed for s in states) or len({id(s) for s in states}) < len(states):
            raise ValueError("a batch of steps needs distinct, open states")
        logits = [self._run_rows(frames[a:a + self.max_batch], states[a:a + self.max_batch])
                  for a in range(0, len(states), self.max_batch)]
        return np.concatenate(logits), list(states)

    def _run_rows(self, frames: np.ndarray, states: list[DeviceState]) -> np.ndarray:
        cuda, stream, n = self._cuda, self._stream, len(states)
        if n == 1:
            return self.run(frames[0], states[0])[0][None]
        self._set_batch(n)
        host_in = self._host[FRAME_INPUT][0][:n]
        host_out = self._host[LOGITS_OUTPUT][0][:n]
        np.copyto(host_in, frames.reshape(host_in.shape), casting="same_kind")
        cuda.h2d_async(self._device[FRAME_INPUT], host_in, stream)
        for name, size in self._state_nbytes.items():
            for i, state in enumerate(states):  # gather: each state into row i
                cuda.d2d_async(self._rows[name] + i * size, state.reads[name], size, stream)
        if self.cuda_graph:
            graph_exec = self._graphs.get(("rows", n))
            if graph_exec is None:
                self._bind_rows()
                self._execute()  # TensorRT's lazy set-up at this batch, outside the capture
                graph_exec = self._graphs[("rows", n)] = self._capture()
            cuda.graph_launch(graph_exec, stream)
        else:
            self._bind_rows()
            self._execute()
        for name, size in self._state_nbytes.items():
            for i, state in enumerate(states):  # scatter: row i into the set the state's next step reads
                cuda.d2d_async(state.writes[name], self._rows[name + STATE_OUT_SUFFIX] + i * size, size, stream)
        cuda.d2h_async(host_out, self._device[LOGITS_OUTPUT], stream)
        cuda.sync(stream)
        for state in states:
            state.current = 1 - state.current
        return host_out.astype(np.float32, copy=True)

    def _bind_rows(self) -> None:
        for key, ptr in self._rows.items():
            self._address(key, ptr)

    def _release_more(self) -> None:
        for state in list(self._states):
            self.free_state(state)
