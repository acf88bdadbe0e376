"""Online step graphs (``mode: online``) in OpenVINO: the state lives in NumPy arrays, the graph's
``.next`` outputs of the previous call fed back as its inputs (as in
:mod:`runtime.backends.onnxruntime_step`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from runtime.backends.base import ModelOptions, OpenedCard, check_model_file
from runtime.backends.openvino_backend import FLOAT_TYPES, compile_model, model_card, read_model, tensor_info
from runtime.card import ModelCard
from runtime.step_graph import FRAME_INPUT, LOGITS_OUTPUT, STATE_OUT_SUFFIX, HostStateStep, check_step_io

__all__ = ["OpenVINOStep"]


class OpenVINOStep(HostStateStep):
    """A step graph compiled by OpenVINO; the state is a dict of NumPy arrays, the graph's ``.next``
    outputs of the previous call."""

    name = "openvino"

    def __init__(self, model_path: str | os.PathLike, card: ModelCard | str | os.PathLike | None = None,
                 *, threads: int | None = None, device: str = "CPU", model: Any = None,
                 card_source: str | None = None) -> None:
        """``model``: ``model_path`` already read by OpenVINO (the one
        :func:`runtime.backends.open_model` read the card from)."""
        super().__init__()
        path = check_model_file(model_path)
        model = read_model(path) if model is None else model
        self.card, self.card_source = model_card(path, model, card, card_source)

        def io(ports) -> dict[str, tuple[tuple, Any]]:  # dtype None: not float32/float16
            return {name: (tuple(shape), FLOAT_TYPES.get(kind)) for name, shape, kind in map(tensor_info, ports)}

        inputs = io(model.inputs)
        self._checked_io(check_step_io(path, self.card, self.card_source, inputs, io(model.outputs)))
        self.model_path = path
        self.frame_dtype = inputs[FRAME_INPUT][1]
        self.compiled = compile_model(path, model, device, "LATENCY", threads)
        self._request = self.compiled.create_infer_request()
        self._outputs = [LOGITS_OUTPUT, *(n + STATE_OUT_SUFFIX for n in self.state_spec)]
        self._loaded(f"openvino {device}")

    @classmethod
    def open(cls, path: Path, opened: OpenedCard, options: ModelOptions) -> "OpenVINOStep":
        """The step model of a card :func:`runtime.backends.open_model` read (its model reused)."""
        device = "CPU" if options.device is None else str(options.device)
        return cls(path, opened.card, threads=options.threads, device=device, model=opened.session,
                   card_source=opened.source)

    def _infer(self, frames: np.ndarray, state: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        res = self._request.infer({FRAME_INPUT: frames.astype(self.frame_dtype, copy=False), **state})
        out = [np.array(res[name]) for name in self._outputs]  # copies: the request reuses its buffers
        return np.asarray(out[0], np.float32), dict(zip(self.state_spec, out[1:]))

    def close(self) -> None:
        self.compiled = self._request = None
