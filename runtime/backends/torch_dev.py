"""PyTorch development backend for ``.pt`` / ``.pth`` checkpoints.

The only module of ``runtime/`` that touches torch or ``tsi``, and only inside :meth:`load`: a
Jetson never needs it (it runs the ``.onnx`` or ``.engine`` model).
"""

from __future__ import annotations

import os

import numpy as np

from runtime.card import CardError, ModelCard
from pathlib import Path

from runtime.backends.base import Backend, BackendError, ModelOptions, OpenedCard, check_model_file

__all__ = ["TorchDevBackend"]


class TorchDevBackend(Backend):
    name = "torch"

    def __init__(self, device: str = "cpu") -> None:
        super().__init__()
        self.device = device
        self._torch = None
        self._model = None

    @classmethod
    def open(cls, path: Path, opened: OpenedCard, options: ModelOptions) -> "TorchDevBackend":
        """The checkpoint (its card is inside it; ``opened.card`` is one given to override it)."""
        backend = cls(device=str(options.device) if options.device is not None else "cpu")
        try:
            return backend.load(path, opened.card)
        except BaseException:
            backend.close()
            raise

    def load(self, model_path: str | os.PathLike,
             card: ModelCard | str | os.PathLike | None = None) -> "TorchDevBackend":
        path = check_model_file(model_path)
        try:
            import torch
            from tsi.checkpoint import CheckpointError, load_model
        except ImportError as e:
            raise BackendError(
                "the .pt development backend needs PyTorch and the tsi package (pip install torch, "
                "run from the repository root); on a Jetson use the .onnx or .engine model"
            ) from e
        try:
            model, ckpt_card = load_model(path)
        except CheckpointError as e:  # the runtime's user errors know no tsi type
            raise BackendError(str(e)) from None
        if card is not None:
            given = card if isinstance(card, ModelCard) else ModelCard.load(card)
            if (given.labels, given.input_shape) != (ckpt_card.labels, ckpt_card.input_shape):
                raise CardError(f"checkpoint {path} does not match the card given: checkpoint "
                                f"{ckpt_card.input_shape} {len(ckpt_card.labels)} labels, card "
                                f"{given.input_shape} {len(given.labels)} labels")
            ckpt_card = given
        self._torch = torch
        self._model = model.to(self.device).eval()
        self.card, self.model_path, self.card_source = ckpt_card, path, f"{path} (checkpoint card)"
        return self

    def infer(self, clip: np.ndarray) -> np.ndarray:
        self.check_clip(clip)
        torch = self._torch
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(clip)).to(self.device)
            logits = self._model(x)
        return logits.float().cpu().numpy()

    def close(self) -> None:
        self._model = None
