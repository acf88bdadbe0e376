"""``tsi-live`` without ``--model``: the demo model built in the current folder, else the one the
runtime package ships (runtime/assets/tsi_demo.onnx; tests/export/test_demo_asset.py checks it is the
export of the shipped checkpoint)."""

from __future__ import annotations

import numpy as np

from runtime.assets import DEMO_ONNX
from runtime.backends.onnxruntime_backend import OnnxRuntimeBackend
from runtime.plan import DEFAULT_MODEL, resolve_model_path


def test_the_shipped_demo_model_is_the_fallback(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no artifacts/demo here
    assert resolve_model_path(None) == DEMO_ONNX and DEMO_ONNX.is_file()
    built = tmp_path / DEFAULT_MODEL
    built.parent.mkdir(parents=True)
    built.write_bytes(b"")  # one that tsi-build-engine wrote here comes first
    assert resolve_model_path(None) == DEFAULT_MODEL


def test_the_shipped_demo_model_opens_with_its_card():
    backend = OnnxRuntimeBackend(threads=1).load(DEMO_ONNX)
    try:
        card = backend.card
        assert card.num_classes == 11 and card.precision == "fp32" and card.mode == "clip"
        assert len(card.source_sha256) == 64 and "metadata_props" in backend.card_source  # no .json beside it
        logits = backend.infer(np.zeros((1, *card.input_shape), np.float32))
        assert logits.shape == (1, 11) and np.isfinite(logits).all()
    finally:
        backend.close()
    assert DEMO_ONNX.stat().st_size < 16 * 2**20  # the FP32 weights of the reduced-width R18: ~11 MB
