"""export/trt_build.py end to end against the generated tensorrt doubles of 10.3 and 11.1
(tests/trt_double.py): every route, with the calls it made asserted."""

from __future__ import annotations

import json

import pytest

from export.plugin_graph import PLUGIN_NAMESPACE, PLUGIN_OP, PLUGIN_VERSION
from runtime.card import ModelCard, card_path_for
from runtime.common.files import file_sha256
from runtime.common.errors import CalibrationError, ExportError
from tests import trt_double


@pytest.fixture
def plugin_lib(tmp_path, monkeypatch):
    """A plugin library path whose loading is recorded (nothing is dlopen-ed: no libnvinfer here)."""
    import export.trt_build as tb

    lib = tmp_path / "libtsi_plugins.so"
    lib.write_bytes(b"\x7fELF stand-in")
    loaded = []
    monkeypatch.setattr(tb.ctypes, "CDLL", lambda path, mode=0: loaded.append((path, mode)))
    return lib, loaded


def build(monkeypatch, version, tiny_onnx, tmp_path, world=None, **spec):
    from export.trt_build import EngineSpec, build_engine

    world = world or trt_double.World(plugin_creators={(PLUGIN_OP, PLUGIN_VERSION, PLUGIN_NAMESPACE)})
    trt = trt_double.install(monkeypatch, version, world)
    path, _, card = tiny_onnx
    spec.setdefault("onnx_path", path)
    spec.setdefault("precision", "fp16")
    engine = tmp_path / f"tiny.{spec['precision']}.engine"
    out = build_engine(EngineSpec(engine_path=engine, card=card, onnx_sha256=file_sha256(path), **spec))
    return trt, out


def flags(trt):
    return [str(c[1][0]) for c in trt.calls if c[0] == "IBuilderConfig.set_flag"]


def test_10_3_fp16_flags_pinned_attention_timing_cache(monkeypatch, tiny_onnx, tmp_path):
    from export.plugin_graph import attention_node_names
    import onnx

    timing = tmp_path / "timing.cache"
    trt, engine = build(monkeypatch, "10.3", tiny_onnx, tmp_path, precision="fp16", timing_cache=timing,
                        fp32_layers=attention_node_names(onnx.load(tiny_onnx[0])), workspace_mib=256)
    names = trt.names()
    assert names[:4] == ["Logger.__init__", "Builder.__init__", "Builder.create_network", "OnnxParser.__init__"]
    assert ("Builder.create_network", (0,), {}) in trt.calls  # weakly typed: no STRONGLY_TYPED flag
    assert ("IBuilderConfig.set_memory_pool_limit", (trt.MemoryPoolType.WORKSPACE, 256 << 20), {}) in trt.calls
    assert flags(trt) == ["BuilderFlag.FP16", "BuilderFlag.OBEY_PRECISION_CONSTRAINTS"]
    pinned = [c for c in trt.calls if c[0] == "ILayer.precision="]
    assert len(pinned) == 24 + 16 and all(c[1] is trt.float32 for c in pinned)  # 8 SME x 3 + CTI softmaxes
    assert ("IBuilderConfig.create_timing_cache", (b"",), {}) in trt.calls
    assert timing.read_bytes() == b"+timings"  # written back (atomically) after the build
    assert json.loads(engine.read_bytes())["input"] == [1, 4, 3, 64, 64]
    assert ModelCard.load(card_path_for(engine)).precision == "fp16"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left
    assert "IOptimizationProfile.set_shape" not in names  # static batch: no profile


def test_10_3_int8_qdq_and_calibration_cache_and_dla(monkeypatch, tiny_onnx, tmp_path, plugin_lib):
    from calib.cache import write_cache

    trt, _ = build(monkeypatch, "10.3", tiny_onnx, tmp_path, precision="int8")
    assert flags(trt) == ["BuilderFlag.FP16", "BuilderFlag.INT8", "BuilderFlag.OBEY_PRECISION_CONSTRAINTS"]
    assert "IBuilderConfig.int8_calibrator=" not in trt.names()

    lib, loaded = plugin_lib
    path, _, card = tiny_onnx
    cache = write_cache(tmp_path / "tiny.int8.calib.cache", {"clip": 2.0}, onnx_sha256=file_sha256(path),
                        card=card, method="entropy", version_int=100300)
    trt, _ = build(monkeypatch, "10.3", tiny_onnx, tmp_path, precision="int8", implicit_int8=True,
                   calib_cache=cache, dla_core=1, plugin_lib=lib)
    names = trt.names()
    assert loaded == [(str(lib), __import__("ctypes").RTLD_GLOBAL)]
    assert names.index("IPluginRegistry.get_creator") < names.index("OnnxParser.parse_from_file")
    assert ("IPluginRegistry.get_creator", (PLUGIN_OP, PLUGIN_VERSION, PLUGIN_NAMESPACE), {}) in trt.calls
    calib = next(c[1] for c in trt.calls if c[0] == "IBuilderConfig.int8_calibrator=")
    assert calib.read_calibration_cache() == cache.read_bytes() and calib.get_batch("clip") is None
    assert ("IBuilderConfig.default_device_type=", trt.DeviceType.DLA) in trt.calls
    assert ("IBuilderConfig.DLA_core=", 1) in trt.calls
    assert flags(trt) == ["BuilderFlag.FP16", "BuilderFlag.INT8", "BuilderFlag.OBEY_PRECISION_CONSTRAINTS",
                          "BuilderFlag.GPU_FALLBACK"]

    # a cache written for another TensorRT version is refused
    write_cache(cache, {"clip": 2.0}, onnx_sha256=file_sha256(path), card=card, method="entropy",
                version_int=101300)
    with pytest.raises(CalibrationError, match="written for TensorRT 10.13.0, the installed TensorRT is 10.3.0"):
        build(monkeypatch, "10.3", tiny_onnx, tmp_path, precision="int8", implicit_int8=True, calib_cache=cache)


def test_11_1_strongly_typed_and_what_it_removed(monkeypatch, tiny_onnx, tmp_path):
    trt, _ = build(monkeypatch, "11.1", tiny_onnx, tmp_path, precision="int8")
    strongly = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    assert ("Builder.create_network", (strongly,), {}) in trt.calls
    assert flags(trt) == [] and "ILayer.precision=" not in trt.names()
    with pytest.raises(AttributeError):
        trt.BuilderFlag.FP16  # noqa: B018 - removed in 11.0, and so in the double
    with pytest.raises(ExportError, match="removed implicit INT8 calibration"):
        build(monkeypatch, "11.1", tiny_onnx, tmp_path, precision="int8", implicit_int8=True,
              calib_cache=tmp_path / "x.cache")


@pytest.mark.parametrize("version", ["10.3", "11.1"])
def test_dynamic_batch_profile(monkeypatch, tiny_ckpt, tmp_path, version):
    from export.friendly import export_friendly_model
    from export.onnx_export import export_onnx

    model, card = export_friendly_model(tiny_ckpt)
    dyn = export_onnx(model, card, tmp_path / "dyn.onnx", source_sha256="x", dynamic_batch=True)
    trt, engine = build(monkeypatch, version, (dyn, model, card), tmp_path, precision="fp16",
                        batch_profile=(1, 2, 4))
    shapes = [c[1] for c in trt.calls if c[0] == "IOptimizationProfile.set_shape"]
    assert shapes == [("clip", (1, 4, 3, 64, 64), (2, 4, 3, 64, 64), (4, 4, 3, 64, 64))]
    assert json.loads(engine.read_bytes())["profile_batch"] == [1, 4]


def test_missing_plugin_creator_and_parser_errors(monkeypatch, tiny_onnx, tmp_path, plugin_lib):
    lib, _ = plugin_lib
    with pytest.raises(ExportError, match="no plugin creator tsi::SaliencyAttention v1 is registered"):
        build(monkeypatch, "10.3", tiny_onnx, tmp_path, world=trt_double.World(), plugin_lib=lib)
    with pytest.raises(ExportError, match="parser rejected"):
        build(monkeypatch, "10.3", tiny_onnx, tmp_path, world=trt_double.World(fail_parse=True))


def test_build_engine_command_with_the_10_3_double(monkeypatch, tiny_onnx, tmp_path, caplog):
    """tsi-build-engine --onnx --fp16 where TensorRT (the double) is importable: the pipeline's engine
    stage writes <name>.fp16.engine with its card, through the staging folder, and no finishing
    commands are printed."""
    import logging

    import export.build_engine as be

    trt_double.install(monkeypatch, "10.3", trt_double.World())
    out = tmp_path / "out"
    with caplog.at_level(logging.INFO):
        assert be.main(["--onnx", str(tiny_onnx[0]), "--out", str(out), "--fp16"]) == 0
    assert {"tiny.fp16.engine", "tiny.fp16.json", "tiny.fp16.onnx"} <= {p.name for p in out.iterdir()}
    assert ModelCard.load(out / "tiny.fp16.json").precision == "fp16"
    assert "No engine was built" not in caplog.text
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
