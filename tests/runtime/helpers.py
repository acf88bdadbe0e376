"""Fixtures made by the tests themselves: a tiny ONNX model whose class is the dominant colour,
its card, coloured videos, fake captures and fake backends."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import cv2
import numpy as np

from runtime.backends.base import Backend
from runtime.card import ONNX_METADATA_KEY, ModelCard

LABELS = ("red", "green", "blue")
BGR = {"red": (0, 0, 255), "green": (0, 255, 0), "blue": (255, 0, 0)}


def make_card(frames: int = 4, size: int = 16, span: int = 8, labels: Sequence[str] = LABELS,
              **kw: Any) -> ModelCard:
    return ModelCard(arch="tiny-colour", labels=tuple(labels), frames=frames, input_size=size,
                     resize_short=size, span_frames=span, fps=30.0, **kw)


def make_onnx(path: Path, frames: int = 4, size: int = 16, classes: int = 3,
              card: ModelCard | None = None, batch: int | str = "N") -> Path:
    """Input (N, T, 3, S, S) float -> ReduceMean over T, H, W -> (N, 3) -> MatMul 5*I -> (N, K).
    With the card's RGB normalisation, class c is the dominant channel c (R, G, B)."""
    import onnx
    from onnx import TensorProto, helper

    w = np.zeros((3, classes), dtype=np.float32)
    for c in range(min(3, classes)):
        w[c, c] = 5.0
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["clip", "axes"], ["mean"], keepdims=0),
            helper.make_node("MatMul", ["mean", "w"], ["logits"]),
        ],
        "tiny_colour",
        [helper.make_tensor_value_info("clip", TensorProto.FLOAT, [batch, frames, 3, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, classes])],
        initializer=[
            helper.make_tensor("axes", TensorProto.INT64, [3], [1, 3, 4]),
            helper.make_tensor("w", TensorProto.FLOAT, list(w.shape), w.ravel().tolist()),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    if card is not None:
        entry = model.metadata_props.add()
        entry.key, entry.value = ONNX_METADATA_KEY, card.to_json()
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path


def make_step_onnx(path: Path, card: ModelCard, size: int = 16) -> Path:
    """An online step graph: frame (1, 3, S, S), h (1, 3) -> logits = h + mean(frame) over H, W;
    h.next = logits."""
    from onnx import TensorProto, checker, helper

    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["frame", "axes"], ["mean"], keepdims=0),
         helper.make_node("Add", ["h", "mean"], ["logits"]),
         helper.make_node("Identity", ["logits"], ["h.next"])],
        "tiny_step",
        [helper.make_tensor_value_info("frame", TensorProto.FLOAT, [1, 3, size, size]),
         helper.make_tensor_value_info("h", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3]),
         helper.make_tensor_value_info("h.next", TensorProto.FLOAT, [1, 3])],
        initializer=[helper.make_tensor("axes", TensorProto.INT64, [2], [2, 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    entry = model.metadata_props.add()
    entry.key, entry.value = ONNX_METADATA_KEY, card.to_json()
    checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path


def reference_logits(clip: np.ndarray, classes: int = 3) -> np.ndarray:
    w = np.zeros((3, classes), dtype=np.float32)
    for c in range(min(3, classes)):
        w[c, c] = 5.0
    return clip.mean(axis=(1, 3, 4)) @ w


def write_video(path: Path, colours: Iterable[str], size: tuple[int, int] = (64, 48),
                fps: float = 30.0) -> Path:
    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert writer.isOpened()
    for name in colours:
        frame = np.empty((h, w, 3), np.uint8)
        frame[:] = BGR[name]
        writer.write(frame)
    writer.release()
    return path


def solid(name: str, h: int = 24, w: int = 32) -> np.ndarray:
    frame = np.empty((h, w, 3), np.uint8)
    frame[:] = BGR[name]
    return frame


class FakeCapture:
    """``cv2.VideoCapture`` stand-in. ``items`` yields per read: an array (a frame), ``False`` (a
    failed read) or anything else (returned as a malformed frame). After the items every read
    fails (the end of a file, or a dropped stream)."""

    def __init__(self, items: Iterable[Any], fps: float = 30.0, opened: bool = True,
                 block: threading.Event | None = None) -> None:
        self._items = iter(items)
        self.fps = fps
        self.opened = opened
        self.released = False
        self.block = block
        self.reads = 0

    def read(self) -> tuple[bool, Any]:
        if self.block is not None:
            self.block.wait(10.0)
        self.reads += 1
        item = next(self._items, False)
        if item is False:
            return False, None
        return True, item

    def isOpened(self) -> bool:  # noqa: N802
        return self.opened and not self.released

    def release(self) -> None:
        self.released = True

    def get(self, prop: int) -> float:
        return self.fps if prop == cv2.CAP_PROP_FPS else 0.0


def sequence_opener(*caps: Any) -> Callable:
    """An opener returning ``caps`` one per call (an exception instance is raised); the last one
    repeats."""
    calls = []

    def opener(spec):
        item = caps[min(len(calls), len(caps) - 1)]
        calls.append(spec)
        if isinstance(item, BaseException):
            raise item
        if callable(item) and not isinstance(item, FakeCapture):
            return item()
        return item

    opener.calls = calls
    return opener


class FakeBackend(Backend):
    """Returns preset logits (cycling through ``schedule`` every ``period`` inferences), optionally
    sleeping ``delay`` seconds per inference."""

    name = "fake"

    def __init__(self, card: ModelCard, delay: float = 0.0, period: int = 0) -> None:
        super().__init__()
        self.card = card
        self.delay = delay
        self.period = period
        self.calls = 0
        k = card.num_classes
        self._logits = [np.full((1, k), -5.0, np.float32) for _ in range(k)]
        for i, lg in enumerate(self._logits):
            lg[0, i] = 5.0

    def load(self, model_path, card=None):  # pragma: no cover - never loaded from a file
        return self

    def infer(self, clip: np.ndarray) -> np.ndarray:
        self.check_clip(clip)
        if self.delay:
            time.sleep(self.delay)
        self.calls += 1
        which = (self.calls // self.period) % len(self._logits) if self.period else 0
        logits = self._logits[which]
        return logits if clip.shape[0] == 1 else np.repeat(logits, clip.shape[0], axis=0)


def check_steps_against_onnxruntime(path: Path, card: ModelCard, step_outputs: Callable, *, steps: int = 4) -> None:
    """Feeds ``steps`` random frames to the step graph ``path`` in a plain onnxruntime session and to
    ``step_outputs(feed, names) -> [arrays]`` (the backend under test), each fed the reference's
    states, and compares every output. 1e-4 of each output's scale: the randomised temporal paths of
    the tiny causal model amplify the two float32 roundings of the attention (up to 1.4e-5 seen)."""
    import onnxruntime as ort

    from runtime.backends.onnxruntime_backend import session_options

    ref = ort.InferenceSession(str(path), session_options(1), providers=["CPUExecutionProvider"])
    names = [o.name for o in ref.get_outputs()]
    state = {i.name: np.zeros([d if isinstance(d, int) else 1 for d in i.shape], np.float32)
             for i in ref.get_inputs() if i.name != "frame"}
    rng = np.random.default_rng(0)
    for _ in range(steps):
        feed = {"frame": rng.standard_normal((1, *card.input_shape[1:])).astype(np.float32), **state}
        want = ref.run(None, feed)
        for n, a, b in zip(names, want, step_outputs(feed, names)):
            np.testing.assert_allclose(b, a, rtol=0, atol=1e-4 * max(1.0, np.abs(a).max()), err_msg=n)
        state = {n[:-len(".next")]: a for n, a in zip(names, want) if n.endswith(".next")}
