from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from runtime.backends import BackendError, open_backend
from runtime.backends.cuda_api import CudaError
from runtime.backends.onnxruntime_backend import resolve_providers
from runtime.card import CardError, card_path_for
from tests import trt_double
from tests.runtime.fake_cudart import CudaRt
from tests.runtime.helpers import make_card, make_onnx, reference_logits

RNG = np.random.default_rng(0)


def clip_for(card, n=1):
    return RNG.standard_normal((n,) + card.input_shape).astype(np.float32)


def test_onnx_with_embedded_card_matches_reference(tmp_path):
    card = make_card()
    model = make_onnx(tmp_path / "m.onnx", card=card)
    with open_backend(model) as backend:
        assert backend.name == "onnxruntime" and backend.card == card
        x = clip_for(card, n=2)
        out = backend.infer(x)
        assert out.shape == (2, 3) and out.dtype == np.float32
        np.testing.assert_allclose(out, reference_logits(x), atol=1e-5)
        with pytest.raises(ValueError, match="expected a clip"):
            backend.infer(np.zeros((1, 5, 3, 16, 16), np.float32))
        with pytest.raises(ValueError, match="float32"):
            backend.infer(np.zeros((1,) + card.input_shape, np.float64))


def test_onnx_card_beside_the_model(tmp_path):
    card = make_card()
    model = make_onnx(tmp_path / "m.onnx")
    card.save(card_path_for(model))
    with open_backend(model) as backend:
        assert backend.card == card


def test_embedded_card_wins_over_a_stale_one_beside(tmp_path, caplog):
    card = make_card()
    model = make_onnx(tmp_path / "m.onnx", card=card)
    card.replace(labels=("x", "y", "z")).save(card_path_for(model))
    with caplog.at_level(logging.WARNING), open_backend(model) as backend:
        assert backend.card == card
    assert "differs" in caplog.text


def test_missing_model(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.onnx"):
        open_backend(tmp_path / "nope.onnx")


def test_missing_card_names_where_it_looked(tmp_path):
    model = make_onnx(tmp_path / "m.onnx")
    with pytest.raises(CardError) as info:
        open_backend(model)
    msg = str(info.value)
    assert "no model card" in msg and "tsi.model_card" in msg and "m.json" in msg


@pytest.mark.parametrize("change, words", [
    (dict(frames=8, span=16), "frames T: model 4, card 8"),
    (dict(size=32), "input size: model 16x16, card 32x32"),
    (dict(labels=("a", "b", "c", "d")), "classes: model outputs 3, card has 4 labels"),
])
def test_card_that_does_not_match_the_model(tmp_path, change, words):
    model = make_onnx(tmp_path / "m.onnx", frames=4, size=16, classes=3)
    card = make_card(**change)
    card.save(card_path_for(model))
    with pytest.raises(CardError) as info:
        open_backend(model)
    msg = str(info.value)
    assert words in msg and str(model) in msg and "m.json" in msg


def test_explicit_card_path_overrides(tmp_path):
    model = make_onnx(tmp_path / "m.onnx", card=make_card(frames=8, span=16), frames=8)
    other = make_card(size=32).save(tmp_path / "other.json")
    with pytest.raises(CardError, match="other.json"):
        open_backend(model, card=other)


def test_not_a_model(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a protobuf")
    with pytest.raises(BackendError, match="bad.onnx"):
        open_backend(bad)


def test_backend_choice_and_options_are_checked(tmp_path):
    model = make_onnx(tmp_path / "m.onnx", card=make_card())
    with pytest.raises(BackendError, match="--providers tensorrt"):
        open_backend(model, "tensorrt")
    with pytest.raises(BackendError, match="tensorrt backend only"):
        open_backend(model, cuda_graph=True)
    other = tmp_path / "m.txt"
    other.write_text("x")
    with pytest.raises(BackendError, match="no backend"):
        open_backend(other)
    import onnxruntime
    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        with pytest.raises(BackendError, match="CUDAExecutionProvider.*not available"):
            open_backend(model, providers=["cuda"])
    assert resolve_providers(["cpu"], ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    assert resolve_providers(None, ["CUDAExecutionProvider", "CPUExecutionProvider"]) == [
        "CUDAExecutionProvider", "CPUExecutionProvider"]


# -- TensorRT, driven through the generated tensorrt doubles (10.3, 11.1) and a cudart stand-in ----
TRT_VERSIONS = pytest.mark.parametrize("trt_version", ["10.3", "11.1"])


def install_trt(monkeypatch, version):
    cudart = CudaRt()
    world = trt_double.World()
    trt = trt_double.install(monkeypatch, version, world, cudart=cudart)
    return trt, cudart, world


def write_engine(path, card=None, **spec):
    spec = {"input": [1, 4, 3, 16, 16], "classes": 3, **spec}
    path.write_bytes(json.dumps(spec).encode())
    if card is not None:
        card.save(card_path_for(path))
    return path


@TRT_VERSIONS
@pytest.mark.parametrize("cuda_graph", [False, True])
@pytest.mark.parametrize("dims", [[1, 4, 3, 16, 16], [-1, 4, 3, 16, 16]])
def test_tensorrt_backend_end_to_end_with_doubles(tmp_path, monkeypatch, caplog, cuda_graph, dims, trt_version):
    trt, cudart, world = install_trt(monkeypatch, trt_version)
    card = make_card()
    engine = write_engine(tmp_path / "m.engine", card, input=dims)
    with caplog.at_level(logging.INFO, logger="runtime"):
        backend = open_backend(engine, cuda_graph=cuda_graph)
    calls = trt.names()
    assert calls[:4] == ["Logger.__init__", "init_libnvinfer_plugins", "Runtime.__init__",
                         "Runtime.deserialize_cuda_engine"], calls
    assert calls.count("IExecutionContext.set_tensor_address") == 2
    assert ("IExecutionContext.set_input_shape" in calls) == (dims[0] == -1)
    assert f"engine tensor input  clip: {dims} DataType.FLOAT" in caplog.text
    assert "bound input  clip: [1, 4, 3, 16, 16] float32" in caplog.text
    assert "bound output logits: [1, 3] float32" in caplog.text
    ctx = world.engines[0]._values["_contexts"][0]
    assert set(ctx._values["_addresses"]) == {"clip", "logits"}
    x = clip_for(card)
    cudart.ops.clear()
    executed = ctx._values["_executed"]
    out = backend.infer(x)
    np.testing.assert_allclose(out, reference_logits(x), atol=1e-5)
    if cuda_graph:
        assert cudart.ops == ["h2d", "graph", "d2h", "sync"]
        assert ctx._values["_executed"] == executed  # replayed, not re-enqueued
    else:
        assert cudart.ops == ["h2d", "execute", "d2h", "sync"]
    out2 = backend.infer(-x)
    np.testing.assert_allclose(out2, reference_logits(-x), atol=1e-5)
    assert not np.shares_memory(out, out2)
    with pytest.raises(ValueError):
        backend.infer(clip_for(card, n=2))
    backend.close()
    assert cudart.buffers == {}  # every host and device buffer freed
    backend.close()


@TRT_VERSIONS
def test_tensorrt_fp16_engine_io(tmp_path, monkeypatch, trt_version):
    install_trt(monkeypatch, trt_version)
    card = make_card()
    engine = write_engine(tmp_path / "m.plan", card, dtype="float16")
    with open_backend(engine) as backend:
        x = clip_for(card)
        np.testing.assert_allclose(backend.infer(x), reference_logits(x), atol=2e-2)


def test_tensorrt_errors(tmp_path, monkeypatch):
    trt, cudart, _ = install_trt(monkeypatch, "10.3")
    card = make_card()
    with pytest.raises(CardError, match="no model card"):
        open_backend(write_engine(tmp_path / "nocard.engine"))
    bad = tmp_path / "bad.engine"
    bad.write_bytes(b"\x00garbage")
    card.save(card_path_for(bad))
    with pytest.raises(BackendError, match="could not deserialise .*rebuild it on this device"):
        open_backend(bad)
    with pytest.raises(CardError, match="frames T: model 8, card 4"):
        open_backend(write_engine(tmp_path / "t8.engine", card, input=[1, 8, 3, 16, 16]))
    with pytest.raises(CardError, match="classes: model outputs 5"):
        open_backend(write_engine(tmp_path / "k5.engine", card, classes=5))
    dyn2 = open_backend(write_engine(tmp_path / "dyn.engine", card, input=[-1, 4, 3, 16, 16],
                                     profile_batch=[2, 8]))  # a profile without batch 1
    with pytest.raises(ValueError, match=r"batch 2\.\.8"):
        dyn2.infer(clip_for(card))
    x = clip_for(card)
    np.testing.assert_allclose(dyn2.infer_batch(x), reference_logits(x), atol=1e-5)  # padded
    dyn2.close()
    good = write_engine(tmp_path / "good.engine", card)
    with pytest.raises(FileNotFoundError, match="plugin library not found"):
        open_backend(good, plugin=tmp_path / "libmissing.so")
    cudart.fail_malloc_over = 100
    with pytest.raises(CudaError, match="cudaMalloc.*cudaErrorMemoryAllocation"):
        open_backend(good)
    cudart.fail_malloc_over = None
    cudart.fail_capture = True
    with pytest.raises(BackendError, match="without --cuda-graph"):
        open_backend(good, cuda_graph=True)


def test_tensorrt_missing_packages_say_what_to_install(tmp_path, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import fails
    card = make_card()
    with pytest.raises(BackendError, match="TensorRT's Python bindings"):
        open_backend(write_engine(tmp_path / "m.engine", card))


# -- batches of clips (several streams in one inference) ---------------------------------------
@pytest.mark.parametrize("trt_version", ["10.3", "11.1"])
@pytest.mark.parametrize("cuda_graph", [False, True])
def test_tensorrt_dynamic_batch_profile_takes_any_batch_within_it(tmp_path, monkeypatch, cuda_graph,
                                                                  trt_version):
    trt, cudart, _ = install_trt(monkeypatch, trt_version)
    card = make_card()
    engine = write_engine(tmp_path / "m.engine", card, input=[-1, 4, 3, 16, 16], profile_batch=[1, 4])
    backend = open_backend(engine, cuda_graph=cuda_graph)
    assert (backend.fixed_batch, backend.min_batch, backend.max_batch) == (None, 1, 4)
    rng = np.random.default_rng(0)
    for n in (3, 1, 4, 3):
        x = rng.standard_normal((n,) + card.input_shape).astype(np.float32)
        np.testing.assert_allclose(backend.infer(x), reference_logits(x), atol=1e-5)
    if cuda_graph:
        assert sorted(backend._graphs) == [1, 3, 4]  # one graph per batch size, captured once
    with pytest.raises(ValueError, match=r"batch 1\.\.4"):
        backend.infer(np.zeros((5,) + card.input_shape, np.float32))
    x = rng.standard_normal((9,) + card.input_shape).astype(np.float32)
    np.testing.assert_allclose(backend.infer_batch(x), reference_logits(x), atol=1e-5)  # 4+4+1
    backend.close()
    assert cudart.buffers == {}


def test_onnx_batches_static_and_dynamic(tmp_path):
    card = make_card()
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5,) + card.input_shape).astype(np.float32)
    dynamic = open_backend(make_onnx(tmp_path / "d.onnx", card=card))
    assert dynamic.fixed_batch is None
    np.testing.assert_allclose(dynamic.infer_batch(x), reference_logits(x), atol=1e-5)
    static = open_backend(make_onnx(tmp_path / "s.onnx", card=card, batch=2))
    assert static.fixed_batch == 2
    calls = []
    real = static.infer
    static.infer = lambda clip: calls.append(clip.shape[0]) or real(clip)
    np.testing.assert_allclose(static.infer_batch(x), reference_logits(x), atol=1e-5)
    assert calls == [2, 2, 2]  # the last chunk of one clip padded to the model's batch


# -- the model opener: the card read once, the class from (file kind, card mode) -----------------
def test_the_model_table_has_a_class_per_file_kind_and_mode():
    from runtime.backends.onnxruntime_backend import OnnxRuntimeBackend
    from runtime.backends.onnxruntime_step import OnnxRuntimeStep
    from runtime.backends.openvino_backend import OpenVINOBackend
    from runtime.backends.openvino_step import OpenVINOStep
    from runtime.backends.opener import CARD_READERS, FILE_KINDS, MODEL_CLASSES
    from runtime.backends.tensorrt_backend import TensorRTBackend
    from runtime.backends.tensorrt_step import TensorRTStep
    from runtime.backends.torch_dev import TorchDevBackend

    assert MODEL_CLASSES == {("onnx", "clip"): OnnxRuntimeBackend, ("onnx", "online"): OnnxRuntimeStep,
                             ("engine", "clip"): TensorRTBackend, ("engine", "online"): TensorRTStep,
                             ("torch", "clip"): TorchDevBackend, ("openvino", "clip"): OpenVINOBackend,
                             ("openvino", "online"): OpenVINOStep}
    assert set(CARD_READERS) == set(FILE_KINDS.values()) == {kind for kind, _ in MODEL_CLASSES}


def test_a_clip_model_opens_with_its_graph_opened_once(tmp_path, monkeypatch):
    import runtime.backends.onnxruntime_backend as ortb
    from runtime.backends import open_model, open_step

    path = make_onnx(tmp_path / "m.onnx", card=make_card())
    opened = []
    real = ortb.open_session
    monkeypatch.setattr(ortb, "open_session", lambda *a, **k: opened.append(real(*a, **k)) or opened[-1])
    with open_model(path) as m:
        assert isinstance(m, ortb.OnnxRuntimeBackend) and m.session is opened[0] and len(opened) == 1
        assert m.card_source.endswith("(metadata_props 'tsi.model_card')")
    with pytest.raises(CardError, match="mode='clip'"):  # the online entry point refuses it clearly
        open_step(path)


def test_a_checkpoint_is_a_clip_model_only(tmp_path):
    from runtime.backends import open_step

    pt = tmp_path / "m.pt"
    pt.write_bytes(b"")
    with pytest.raises(BackendError, match="the torch backend runs clip models only"):
        open_step(pt)
