"""Tiny fixtures shared by the tests: a small TSI checkpoint with non-trivial BatchNorm statistics,
its causal (online) form, and a folder of short videos written with OpenCV."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

LABELS = ("left", "right", "still", "up", "down")
TINY = dict(frames=4, num_classes=5, input_size=64, base_width=16, sme_reduction=4)
TRT_REASON = "TensorRT is not installed (cannot be installed on this machine)"


def tensorrt_missing() -> bool:
    from runtime.trt_version import tensorrt_available

    return not tensorrt_available()


def requires_trt(fn):
    """``@pytest.mark.trt`` and skipped where TensorRT cannot be imported."""
    return pytest.mark.trt(pytest.mark.skipif(tensorrt_missing(), reason=TRT_REASON)(fn))


def make_checkpoint(path: Path, seed: int = 0, span_frames: int = 16) -> Path:
    """A tsi_r18 with 4 frames, 5 classes, 64x64 input, random BN statistics (so folding matters)."""
    import torch

    from tsi.checkpoint import make_card, save_checkpoint
    from tsi.model import create_model

    torch.manual_seed(seed)
    model = create_model("tsi_r18", **TINY).eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
                m.running_var.copy_(0.5 + 1.5 * torch.rand(n, generator=g))
                m.weight.copy_(0.2 + 0.8 * torch.rand(n, generator=g))
                m.bias.copy_(0.4 * torch.rand(n, generator=g) - 0.2)
        model.fc.weight.normal_(0, 0.5, generator=g)
        # centre the logits on structured random clips, so the random model's top-1 depends on its
        # input (otherwise one class wins everywhere and any "top-1 agreement" is trivial)
        feats = model.pool(model.forward_features(structured_clips(16, seed=seed + 99))).flatten(1)
        model.fc.bias.copy_(-(feats.mean(0) @ model.fc.weight.T))
    return save_checkpoint(path, model, make_card(model.cfg, list(LABELS), span_frames=span_frames))


def make_causal_checkpoint(path: Path, seed: int = 0, span_frames: int = 16):
    """The TINY tsi_r18 in its causal (online) form with its temporal paths randomised
    (``tests.tsi.test_causal.randomize``): (checkpoint path, model)."""
    import torch

    from tests.tsi.test_causal import randomize
    from tsi.checkpoint import make_card, save_checkpoint
    from tsi.model import create_model

    torch.manual_seed(seed)
    model = randomize(create_model("tsi_r18", causal=True, zero_init_residual=False, **TINY))
    return save_checkpoint(path, model, make_card(model.cfg, list(LABELS), span_frames=span_frames)), model


def structured_clips(n: int, seed: int = 1, frames: int = 4, size: int = 64):
    """Random clips with per-clip colour offsets and coarse spatial patterns (N, T, 3, S, S) float32."""
    import torch

    rng = np.random.default_rng(seed)
    base = 1.5 * rng.standard_normal((n, 1, 3, 1, 1))
    coarse = np.kron(rng.standard_normal((n, frames, 3, size // 8, size // 8)), np.ones((1, 1, 1, 8, 8)))
    x = base + coarse + 0.3 * rng.standard_normal((n, frames, 3, size, size))
    return torch.from_numpy(x.astype(np.float32))


def write_video(path: Path, frames: int = 12, size=(96, 80), seed: int = 0, direction: int = 1) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 15.0, (w, h))
    assert writer.isOpened()
    colour = tuple(int(c) for c in rng.integers(60, 255, 3))
    for t in range(frames):
        f = np.full((h, w, 3), int(rng.integers(20, 60)), np.uint8)
        x = 5 + 5 * t if direction > 0 else w - 25 - 5 * t
        cv2.rectangle(f, (x, 20), (x + 20, 50), colour, -1)
        writer.write(f)
    writer.release()
    return path


def write_video_folder(root: Path, per_class: int = 5, classes=("left", "right"), broken: int = 0) -> Path:
    for ci, c in enumerate(classes):
        for k in range(per_class):
            write_video(root / c / f"{c}_{k}.mp4", seed=100 * ci + k, direction=1 if ci % 2 == 0 else -1)
    for k in range(broken):
        (root / classes[0] / f"broken_{k}.mp4").write_bytes(b"this is not a video" * 10)
    return root


def listing(folder: Path) -> list[str]:
    """Every path under ``folder`` (relative), hidden files included."""
    if not folder.exists():
        return []
    return sorted(os.path.relpath(os.path.join(d, f), folder) for d, _, fs in os.walk(folder) for f in fs)
