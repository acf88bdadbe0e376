"""TensorRT engine builds: run only where TensorRT is installed (a Jetson or an NVIDIA GPU desktop)."""

import pytest

from tests.export.helpers import requires_trt


@requires_trt
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_build_engine_and_log_io(tmp_path, tiny_onnx, precision):
    import tensorrt as trt

    from export.trt_build import EngineSpec, build_engine, log_engine_io
    from runtime.card import ModelCard, card_path_for

    path, _, card = tiny_onnx
    engine = build_engine(EngineSpec(onnx_path=path, engine_path=tmp_path / f"tiny.{precision}.engine",
                                     precision=precision, card=card, workspace_mib=256,
                                     timing_cache=tmp_path / "timing.cache"))
    assert engine.stat().st_size > 0 and (tmp_path / "timing.cache").is_file()
    assert ModelCard.load(card_path_for(engine)).precision == precision
    rows = log_engine_io(trt, trt.Logger(trt.Logger.WARNING), engine.read_bytes(), engine)
    assert [r[0] for r in rows] == ["clip", "logits"]
    assert rows[0][2] == (1, 4, 3, 64, 64) and rows[1][2] == (1, 5)
