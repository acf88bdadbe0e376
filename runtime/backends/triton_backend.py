"""A model on a Triton Inference Server (``--model triton://HOST:PORT/NAME``): the clip backend
(the scheduler's batch of due windows, one request) and the online step model (one request per
sampled frame; the state is inputs and outputs, kept here per stream as NumPy arrays). The card,
the inputs and outputs come from the model's config and are checked as a local model's are;
the connection, its retries and outages are :class:`runtime.backends.triton_client.TritonConnection`'s.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from runtime.backends.base import Backend, ModelOptions, check_clip_io, check_clip_model
from runtime.backends.triton_client import DTYPES, Outage, TritonAddress, TritonConnection
from runtime.card import CardError, ModelCard
from runtime.reconnect import ReconnectPolicy
from runtime.step_graph import FRAME_INPUT, LOGITS_OUTPUT, STATE_OUT_SUFFIX, HostStateStep, check_step_io

__all__ = ["TritonBackend", "TritonStep", "open_triton"]


def _tensors(cfg: dict[str, Any], key: str) -> list[tuple[str, list[int | None], str]]:
    """(name, dims with the batch axis (None: dynamic), data type) of the config's inputs or outputs."""
    batched = int(cfg.get("max_batch_size", 0)) > 0
    return [(t["name"], ([None] if batched else []) + [int(d) if int(d) > 0 else None for d in t.get("dims", [])],
             t.get("data_type", "")) for t in cfg.get(key, [])]


def _card(conn: TritonConnection, cfg: dict[str, Any], card: ModelCard | None) -> tuple[ModelCard, str]:
    if card is not None:
        return card, "the card passed in"
    return conn.card(cfg), f"{conn.address} (config parameters)"


class TritonBackend(Backend):
    """A clip model on a Triton server: :meth:`infer` is one request of the whole batch (a
    dynamic-batch model takes up to its ``max_batch_size``; :meth:`Backend.infer_batch` splits more)."""

    name = "triton"

    def __init__(self, conn: TritonConnection) -> None:
        super().__init__()
        self.conn = conn

    def load(self, model_path: Any = None, card: ModelCard | None = None) -> "TritonBackend":
        cfg = self.conn.config()
        card, source = _card(self.conn, cfg, card)
        where = str(self.conn.address)
        check_clip_model(where, card, source)
        inputs, outputs = _tensors(cfg, "input"), _tensors(cfg, "output")
        check_clip_io(where, card, source, inputs, outputs, DTYPES)
        self.card, self.card_source, self.model_path = card, source, where
        (self._in_name, shape, dtype), self._out_name = inputs[0], outputs[0][0]
        self._in_dtype = DTYPES[dtype]
        self._batch = self.fixed_batch = shape[0]
        if self.fixed_batch is None:
            self.max_batch = int(cfg["max_batch_size"])
        return self

    def infer(self, clip: np.ndarray) -> np.ndarray:
        x = self.batch_input(clip)
        (logits,) = self.conn.infer({self._in_name: np.ascontiguousarray(x)}, [self._out_name], clip.shape[0])
        logits = np.asarray(logits, np.float32)
        if logits.shape != (clip.shape[0], self.card.num_classes):
            raise CardError(f"{self.model_path} returned logits {logits.shape}; its card has "
                            f"{self.card.num_classes} labels")
        return logits

    def take_outage(self) -> Outage | None:
        return self.conn.take_outage()

    def close(self) -> None:
        self.conn.close()

    def __repr__(self) -> str:
        return f"TritonBackend({str(self.conn.address)!r})"


class TritonStep(HostStateStep):
    """An online step graph on a Triton server (served with ``max_batch_size: 0``, or batched with
    a batch of 1 per request): one request per sampled frame of a stream, that stream's state sent
    with it and the ``.next`` outputs kept as its new state."""

    name = "triton"

    def __init__(self, conn: TritonConnection, card: ModelCard | None = None) -> None:
        super().__init__()
        self.conn = conn
        cfg = conn.config()
        self.card, self.card_source = _card(conn, cfg, card)
        where = str(conn.address)

        def io(key: str) -> dict[str, tuple[tuple, Any]]:
            return {n: (tuple(1 if d is None and i == 0 else d for i, d in enumerate(dims)), DTYPES.get(t))
                    for n, dims, t in _tensors(cfg, key)}

        self._checked_io(check_step_io(where, self.card, self.card_source, io("input"), io("output")))
        self.model_path = where
        self.frame_dtype = io("input")[FRAME_INPUT][1]
        self._outputs = [LOGITS_OUTPUT, *(n + STATE_OUT_SUFFIX for n in self.state_spec)]
        self._loaded(f"triton {conn.address.protocol}")

    def _infer(self, frames: np.ndarray, state: dict[str, np.ndarray]
               ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        x = np.ascontiguousarray(frames.astype(self.frame_dtype, copy=False))
        res = self.conn.infer({FRAME_INPUT: x, **state}, self._outputs, len(x))
        return np.asarray(res[0], np.float32), dict(zip(self.state_spec, (np.array(r) for r in res[1:])))

    def take_outage(self) -> Outage | None:
        return self.conn.take_outage()

    def close(self) -> None:
        self.conn.close()


def open_triton(url: str, options: ModelOptions, card: ModelCard | None = None,
                mode: str | None = None) -> TritonBackend | TritonStep:
    """The model at ``url`` as its card says (or as ``mode`` asks: the other mode is a
    :class:`CardError`): a clip :class:`TritonBackend` or an online :class:`TritonStep`."""
    policy = options.reconnect or ReconnectPolicy()
    conn = TritonConnection(TritonAddress.parse(url), policy, options.stop or threading.Event())
    try:
        found = card or conn.card(conn.config())
        if (mode or found.mode) == "online":
            return TritonStep(conn, card)
        return TritonBackend(conn).load(card=card)
    except BaseException:
        conn.close()
        raise
