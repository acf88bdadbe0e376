import sys

import numpy as np
import pytest

from tests.export.helpers import requires_trt


def test_module_imports_without_tensorrt(monkeypatch):
    import calib.calibrator as cal

    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(ImportError, match="JetPack"):
        cal.make_entropy_calibrator(np.zeros((2, 4, 3, 64, 64), np.float32))


@requires_trt
def test_entropy_calibrator_feeds_batches_and_keys_its_cache(tmp_path, tiny_onnx, clips):
    """Runs only where TensorRT and cuda-python are installed (a GPU machine)."""
    import tensorrt as trt

    from calib.cache import load_cache, parse_cache
    from runtime.common.files import file_sha256
    from calib.calibrator import make_entropy_calibrator

    path, _, card = tiny_onnx
    sha = file_sha256(path)
    cache = tmp_path / "tiny.int8.calib.cache"
    cal = make_entropy_calibrator(clips, cache_path=cache, onnx_sha256=sha, card=card)
    assert isinstance(cal, trt.IInt8EntropyCalibrator2) and cal.get_batch_size() == 1
    ptrs = [cal.get_batch(["clip"]) for _ in range(len(clips))]
    assert all(isinstance(p[0], int) and p[0] for p in ptrs)
    assert cal.get_batch(["clip"]) is None
    assert cal.read_calibration_cache() is None
    cal.write_calibration_cache(b"TRT-100300-EntropyCalibration2\nclip: 3c010204\n")
    assert parse_cache(load_cache(cache, onnx_sha256=sha))[2]["clip"] > 0
    cal.free()


@pytest.mark.parametrize("version", ["10.3", "11.1"])
def test_entropy_calibrator_against_the_tensorrt_doubles(tmp_path, tiny_onnx, clips, monkeypatch, version):
    """The calibrator against the generated tensorrt double (10.3: it subclasses the real
    IInt8EntropyCalibrator2; 11.1 has none: refused with a message) and the cudart stand-in."""
    import ctypes

    from calib.cache import parse_cache, write_cache
    from calib.calibrator import make_entropy_calibrator
    from runtime.common.files import file_sha256
    from runtime.common.errors import CalibrationError
    from tests import trt_double
    from tests.runtime.fake_cudart import CudaRt

    cudart = CudaRt()
    trt = trt_double.install(monkeypatch, version, cudart=cudart)
    path, _, card = tiny_onnx
    sha = file_sha256(path)
    cache = tmp_path / "tiny.int8.calib.cache"
    if version == "11.1":
        with pytest.raises(CalibrationError, match="removed in 11.0"):
            make_entropy_calibrator(clips, cache_path=cache, onnx_sha256=sha, card=card)
        return
    cal = make_entropy_calibrator(clips, cache_path=cache, onnx_sha256=sha, card=card)
    assert isinstance(cal, trt.IInt8EntropyCalibrator2) and cal.get_batch_size() == 1
    for i in range(len(clips)):
        (ptr,) = cal.get_batch(["clip"])
        got = np.frombuffer((ctypes.c_uint8 * clips[i].nbytes).from_address(ptr), np.float32)
        assert np.array_equal(got, clips[i].ravel())  # the clip's bytes in "device" memory
    assert cal.get_batch(["clip"]) is None
    assert cal.read_calibration_cache() is None
    cal.write_calibration_cache(b"TRT-100300-EntropyCalibration2\nclip: 3c010204\n")
    assert parse_cache(cal.read_calibration_cache())[2]["clip"] > 0
    # a cache of another TensorRT version is not handed to TensorRT (it recalibrates instead)
    write_cache(cache, {"clip": 1.0}, onnx_sha256=sha, card=card, method="entropy", version_int=101300)
    assert cal.read_calibration_cache() is None
    cal.free()
    assert cudart.buffers == {}
