import json

import numpy as np
import pytest

from calib.cache import amax_to_hex, check_key, format_cache, key_path, load_cache, parse_cache, write_cache
from runtime.card import ModelCard
from runtime.common.files import file_sha256
from runtime.common.errors import CalibrationError

CARD = ModelCard(arch="tsi_r18", labels=("a", "b"), frames=4, input_size=64, resize_short=73,
                 source_sha256="ab" * 32)


def test_known_encoding():
    # 127 * 2**-7: scale 2**-7 = 0x3c000000; 1.0 -> 1/127 = 0x3c010204
    assert amax_to_hex(127 / 128) == "3c000000"
    assert amax_to_hex(1.0) == "3c010204"


def test_round_trip_bit_exact(tmp_path):
    rng = np.random.default_rng(0)
    amax = {f"/backbone/t{i}_output_0": float(v) for i, v in enumerate(rng.uniform(1e-3, 100, 50))}
    amax["clip"] = 2.64
    amax["zeros"] = 0.0
    onnx_file = tmp_path / "m.onnx"
    onnx_file.write_bytes(b"model bytes")
    sha = file_sha256(onnx_file)
    path = write_cache(tmp_path / "m.int8.calib.cache", amax, onnx_sha256=sha, card=CARD, method="entropy",
                       num_clips=64, version_int=100300)
    text = path.read_text()
    assert text.splitlines()[0] == "TRT-100300-EntropyCalibration2"
    version, algo, scales = parse_cache(text)
    assert (version, algo) == (100300, "EntropyCalibration2") and set(scales) == set(amax)
    for name, a in amax.items():
        if a > 0:
            want = np.float32(np.float32(a) / np.float32(127))
            assert scales[name].view(np.uint32) == want.view(np.uint32), name
    assert scales["zeros"] > 0  # an all-zero tensor gets a tiny positive scale
    key = json.loads(key_path(path).read_text())
    assert key["onnx_sha256"] == sha and key["method"] == "entropy" and key["card"] == CARD.to_dict()
    assert load_cache(path, onnx_sha256=sha, card=CARD, method="entropy") == text.encode()
    assert not list(tmp_path.glob(".*.tmp"))


def test_refuses_a_cache_of_another_model(tmp_path):
    path = write_cache(tmp_path / "c.cache", {"clip": 1.0}, onnx_sha256="1" * 64, card=CARD, method="minmax")
    with pytest.raises(CalibrationError, match="does not belong to this model: it was calibrated on ONNX "
                                               "sha256 111111111111"):
        load_cache(path, onnx_sha256="2" * 64)
    with pytest.raises(CalibrationError, match="model card differs in frames"):
        check_key(path, onnx_sha256="1" * 64, card=CARD.replace(frames=8))
    with pytest.raises(CalibrationError, match="holds minmax ranges, entropy were asked for"):
        check_key(path, onnx_sha256="1" * 64, method="entropy")
    # a cache is only read by the TensorRT version it was written for (10.3 here)
    assert load_cache(path, onnx_sha256="1" * 64, version_int=100300)
    with pytest.raises(CalibrationError, match=r"written for TensorRT 10\.3\.0, the installed TensorRT is 10\.13\.0"):
        load_cache(path, onnx_sha256="1" * 64, version_int=101300)
    key_path(path).unlink()
    with pytest.raises(CalibrationError, match="no key file"):
        load_cache(path, onnx_sha256="1" * 64)
    with pytest.raises(CalibrationError, match="not found"):
        load_cache(tmp_path / "none.cache", onnx_sha256="1" * 64)


def test_parse_errors():
    with pytest.raises(CalibrationError, match="not 'TRT-<version>-<algorithm>'"):
        parse_cache("hello\nclip: 3c010204\n")
    with pytest.raises(CalibrationError, match="line 2"):
        parse_cache("TRT-100300-EntropyCalibration2\nclip: 3c01\n")
    with pytest.raises(CalibrationError, match="empty"):
        parse_cache("")
    assert format_cache({"b": 1.0, "a": 2.0}).splitlines()[1].startswith("a: ")


def test_no_entries_for_constants(tiny_onnx, clips):
    """Initializers, Constant outputs and what is computed from them alone get no range (and so no
    cache entry); every activation does."""
    import onnx

    from calib.ranges import compute_ranges, constant_tensors

    proto = onnx.load(tiny_onnx[0])
    const = constant_tensors(proto)
    constant_nodes = [n for n in proto.graph.node if n.op_type == "Constant"]
    assert constant_nodes and {n.output[0] for n in constant_nodes} <= const
    r = compute_ranges(tiny_onnx[0], clips[:2], "minmax", exclude=set(), progress=False)
    assert not set(r.amax) & const and "clip" in r.amax
    assert min(r.amax.values()) > 0  # no all-zero entry left
