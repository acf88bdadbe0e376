"""Online step graphs (``mode: online``) in onnxruntime: the state lives in NumPy arrays, the
graph's ``.next`` outputs of the previous call fed back as its inputs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from runtime.backends.base import ModelOptions, OpenedCard, check_model_file
from runtime.backends.onnxruntime_backend import FLOAT_TYPES, open_session, session_card
from runtime.card import ModelCard
from runtime.step_graph import FRAME_INPUT, LOGITS_OUTPUT, STATE_OUT_SUFFIX, HostStateStep, check_step_io

__all__ = ["OnnxRuntimeStep"]


class OnnxRuntimeStep(HostStateStep):
    """A step graph in onnxruntime (CPU, CUDA or TensorRT execution provider); the state is a dict of
    NumPy arrays, the graph's ``.next`` outputs of the previous call."""

    name = "onnxruntime"

    def __init__(self, model_path: str | os.PathLike, card: ModelCard | str | os.PathLike | None = None,
                 *, providers: list[str] | None = None, threads: int | None = None, session: Any = None,
                 card_source: str | None = None) -> None:
        """``session``: an onnxruntime session of ``model_path`` already open (the one
        :func:`runtime.backends.open_model` read the card from)."""
        super().__init__()
        path = check_model_file(model_path)
        session = session or open_session(path, providers, threads)
        self.card, self.card_source = session_card(path, session, card, card_source)

        def io(args) -> dict[str, tuple[tuple, Any]]:  # dtype None: not float32/float16
            return {a.name: (tuple(a.shape), FLOAT_TYPES.get(a.type)) for a in args}

        self._checked_io(check_step_io(path, self.card, self.card_source, io(session.get_inputs()),
                                       io(session.get_outputs())))
        self.model_path, self.session = path, session
        self.frame_dtype = next(FLOAT_TYPES[a.type] for a in session.get_inputs() if a.name == FRAME_INPUT)
        self._outputs = [LOGITS_OUTPUT, *(n + STATE_OUT_SUFFIX for n in self.state_spec)]
        self._loaded(f"onnxruntime {', '.join(session.get_providers())}")

    @classmethod
    def open(cls, path: Path, opened: OpenedCard, options: ModelOptions) -> "OnnxRuntimeStep":
        """The step model of a card :func:`runtime.backends.open_model` read (its session reused)."""
        return cls(path, opened.card, providers=options.providers, threads=options.threads,
                   session=opened.session, card_source=opened.source)

    def _infer(self, frames: np.ndarray, state: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        res = self.session.run(self._outputs, {FRAME_INPUT: frames.astype(self.frame_dtype, copy=False), **state})
        return np.asarray(res[0], np.float32), dict(zip(self.state_spec, res[1:]))
