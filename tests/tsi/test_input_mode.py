"""TSIConfig.input_mode="diff": the stem sees each sampled frame less the one before, computed in
the model (so the exported graph carries it and the runtime needs nothing), refused for the causal
form, and never started from an RGB model's shipped initialisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.export.helpers import LABELS, TINY
from tsi.config import TSIConfig
from tsi.model import create_model, frame_differences


def test_frame_differences_are_each_frame_less_the_one_before():
    x = torch.arange(2 * 4 * 1 * 1 * 1, dtype=torch.float32).view(2, 4, 1, 1, 1) ** 2
    d = frame_differences(x)
    assert d.shape == x.shape
    torch.testing.assert_close(d[:, 1:], x[:, 1:] - x[:, :-1])
    torch.testing.assert_close(d[:, 0], d[:, 1])  # the first frame takes the second's


def test_a_diff_model_is_the_rgb_model_on_the_frame_differences():
    torch.manual_seed(0)
    diff = create_model("tsi_r18", input_mode="diff", **TINY).eval()
    rgb = create_model("tsi_r18", **TINY).eval()
    rgb.load_state_dict(diff.state_dict())
    x = torch.randn(2, 4, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(diff(x), rgb(frame_differences(x)))
        # what is there does not count, only what moved: two still clips of different content
        still = [torch.randn(1, 1, 3, 64, 64).expand(1, 4, 3, 64, 64) for _ in range(2)]
        torch.testing.assert_close(diff(still[0]), diff(still[1]))


def test_diff_has_no_causal_form_and_unknown_modes_are_refused():
    with pytest.raises(ValueError, match="input_mode='diff' has no causal"):
        TSIConfig(input_mode="diff", causal=True)
    with pytest.raises(ValueError, match="input_mode='flow' is not one of"):
        TSIConfig(input_mode="flow")
    assert TSIConfig.from_dict({k: v for k, v in TSIConfig().to_dict().items() if k != "input_mode"}).input_mode == "rgb"


def test_the_exported_graph_computes_the_differences(tmp_path):
    import onnxruntime as ort

    from export.onnx_export import export_onnx
    from tsi.checkpoint import make_card

    torch.manual_seed(1)
    model = create_model("tsi_r18", input_mode="diff", **TINY).eval()
    path = export_onnx(model, make_card(model.cfg, list(LABELS)), tmp_path / "diff.onnx", source_sha256="t")
    x = torch.randn(1, 4, 3, 64, 64)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        want = model(x).numpy()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4 * np.abs(want).max())


def test_the_shipped_rgb_initialisation_is_not_taken_for_a_diff_model():
    from tsi import init as tsi_init
    from tsi.assets import MOTION_INITS

    if not MOTION_INITS["tsi_r18"].is_file():
        pytest.skip("no shipped TSI-R18 initialisation in this checkout")
    demo = dict(frames=8, input_size=64, base_width=32, sme_reduction=8, num_classes=12)
    rgb = create_model("tsi_r18", **demo).cfg
    path, _, why = tsi_init.resolve("auto", "tsi_r18", rgb, other_init=False)
    assert path is not None, why  # a checkpoint saved before the field existed reads as rgb
    path, _, why = tsi_init.resolve("auto", "tsi_r18", rgb.replace(input_mode="diff"), other_init=False)
    assert path is None and "input_mode diff vs rgb" in why
    with pytest.raises(tsi_init.InitError, match="input_mode diff vs rgb"):
        tsi_init.resolve("motion", "tsi_r18", rgb.replace(input_mode="diff"), other_init=False)
