"""The OpenVINO backend's CPU rewrites (runtime.backends.openvino_graph): the long attentions on the
C++ kernel, the splits as gathers and the temporal convolutions as shifted sums, each giving
onnxruntime's logits, clip and step graphs."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from runtime.assets import DEMO_ONNX
from runtime.backends import open_backend, open_step
from runtime.backends.onnxruntime_backend import session_options
from runtime.kernels import cpu_attention
from tests.runtime.helpers import check_steps_against_onnxruntime

ov = pytest.importorskip("openvino", reason='OpenVINO is not installed (pip install ".[openvino]")')


def plain(path):
    return ort.InferenceSession(str(path), session_options(1), providers=["CPUExecutionProvider"])


def op_types(backend) -> list[str]:
    return [op.get_rt_info()["layerType"].astype(str) for op in backend.compiled.get_runtime_model().get_ops()]


def test_the_demos_splits_and_temporal_convs_are_rewritten_and_its_short_attentions_stay(monkeypatch):
    from runtime.backends.openvino_graph import prepare_for_cpu

    monkeypatch.setattr(cpu_attention, "available", lambda: pytest.fail("the kernel was asked for"))

    model = ov.Core().read_model(str(DEMO_ONNX))
    kinds = lambda: [op.get_type_name() for op in model.get_ordered_ops()]  # noqa: E731
    splits = sum(k in ("VariadicSplit", "Split") for k in kinds())
    # 256 keys at most: below MIN_KEYS; CTI's three TConvs in each of the 8 blocks
    assert splits and prepare_for_cpu(model) == (0, splits, 24)
    assert not any(k in ("VariadicSplit", "Split") for k in kinds())
    assert kinds().count("GroupConvolution") == 8 * 4  # what is left: SME's K = 4 depthwise 3x3 per block


def test_the_temporal_convs_as_shifted_sums_give_onnxruntimes_logits(monkeypatch):
    """Without the kernel (the attentions stay OpenVINO's): the demo's trained temporal weights, the
    clip's first and last frames (the zero padding) included."""
    monkeypatch.setattr(cpu_attention, "available", lambda: False)
    backend = open_backend(DEMO_ONNX, "openvino", threads=1)
    ref = plain(DEMO_ONNX)
    for seed in range(3):
        clip = np.random.default_rng(seed).standard_normal((1, *backend.card.input_shape)).astype(np.float32)
        want = ref.run(None, {ref.get_inputs()[0].name: clip})[0]
        np.testing.assert_allclose(backend.infer(clip), want, rtol=0, atol=1e-5 * np.abs(want).max())


@pytest.mark.skipif(not cpu_attention.available(), reason=f"no CPU kernel: {cpu_attention.unavailable_reason()}")
def test_every_attention_of_the_demo_on_the_kernel_gives_onnxruntimes_logits(monkeypatch):
    monkeypatch.setattr(cpu_attention, "MIN_KEYS", 1)
    backend = open_backend(DEMO_ONNX, "openvino", threads=1)
    assert op_types(backend).count("Reference") == 8  # the 8 SME attentions, run by their evaluate()
    ref = plain(DEMO_ONNX)
    for seed in range(3):
        clip = np.random.default_rng(seed).standard_normal((1, *backend.card.input_shape)).astype(np.float32)
        want = ref.run(None, {ref.get_inputs()[0].name: clip})[0]
        np.testing.assert_allclose(backend.infer(clip), want, rtol=0, atol=1e-5 * np.abs(want).max())


@pytest.mark.skipif(not cpu_attention.available(), reason=f"no CPU kernel: {cpu_attention.unavailable_reason()}")
def test_the_step_graph_on_the_kernel_keeps_onnxruntimes_logits(monkeypatch, tmp_path):
    from export.friendly import export_friendly_model
    from export.stream_export import export_step_onnx
    from tests.export.helpers import make_causal_checkpoint

    monkeypatch.setattr(cpu_attention, "MIN_KEYS", 1)
    ckpt, _ = make_causal_checkpoint(tmp_path / "m.pt")
    friendly, card = export_friendly_model(ckpt)
    # a dynamic batch (as the suite's and the multi-stream graphs have): the attentions still go to the kernel
    path = export_step_onnx(friendly, card, tmp_path / "m.online.onnx", source_sha256="t", dynamic_batch=True)
    step = open_step(path, "openvino", threads=1)
    assert "Reference" in op_types(step)
    def outputs(feed, names):
        logits, state = step._infer(feed["frame"], {k: v for k, v in feed.items() if k != "frame"})
        return [logits, *(state[n[:-len(".next")]] for n in names[1:])]

    check_steps_against_onnxruntime(path, card, outputs)


def test_without_the_kernel_the_attention_stays_in_openvino(monkeypatch):
    monkeypatch.setattr(cpu_attention, "MIN_KEYS", 1)
    monkeypatch.setattr(cpu_attention, "available", lambda: False)
    backend = open_backend(DEMO_ONNX, "openvino", threads=1)
    assert "Reference" not in op_types(backend)


@pytest.mark.skipif(not cpu_attention.available(), reason=f"no CPU kernel: {cpu_attention.unavailable_reason()}")
def test_a_model_openvino_cannot_compile_with_the_kernel_falls_back_to_its_own_attention(monkeypatch, caplog):
    from runtime.backends import openvino_backend

    core = openvino_backend._core()

    class Refusing:  # OpenVINO refusing the kernel's operation
        def __getattr__(self, name):
            return getattr(core, name)

        def compile_model(self, model, *a, **k):
            if any(op.get_type_name() == "SaliencyAttention" for op in model.get_ordered_ops()):
                raise RuntimeError("[ReshapeTransformation] refused")
            return core.compile_model(model, *a, **k)

    monkeypatch.setattr(cpu_attention, "MIN_KEYS", 1)
    monkeypatch.setattr(openvino_backend, "_core", lambda: Refusing())
    with caplog.at_level("WARNING"):
        backend = open_backend(DEMO_ONNX, "openvino", threads=1)
    assert "Reference" not in op_types(backend) and "OpenVINO's own attention" in caplog.text
    ref = plain(DEMO_ONNX)
    clip = np.random.default_rng(0).standard_normal((1, *backend.card.input_shape)).astype(np.float32)
    want = ref.run(None, {ref.get_inputs()[0].name: clip})[0]
    np.testing.assert_allclose(backend.infer(clip), want, rtol=0, atol=1e-5 * np.abs(want).max())
