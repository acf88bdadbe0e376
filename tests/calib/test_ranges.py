import numpy as np
import pytest

from calib.ranges import compute_ranges, entropy_amax
from tests.calib.entropy_reference import entropy_amax_loop


@pytest.mark.parametrize("dist", ["normal", "relu", "heavy"])
def test_entropy_vectorised_equals_loop(dist):
    rng = np.random.default_rng(0)
    x = {"normal": np.abs(rng.standard_normal(20000)), "relu": np.maximum(rng.standard_normal(20000), 0),
         "heavy": np.abs(rng.standard_t(3, 20000))}[dist]
    hist, edges = np.histogram(x, bins=400, range=(0, x.max()))
    a, b = entropy_amax(hist, edges), entropy_amax_loop(hist, edges)
    assert a == b and 0 < a <= x.max()
    if dist == "heavy":
        assert a < 0.6 * x.max()  # outliers clipped


@pytest.fixture(scope="module")
def all_ranges(tiny_onnx, clips):
    import onnx

    from export.plugin_graph import attention_internal_tensors

    path = tiny_onnx[0]
    exclude = attention_internal_tensors(onnx.load(path))
    return {m: compute_ranges(path, clips, m, exclude=exclude, num_bins=256, progress=False)
            for m in ("minmax", "percentile", "entropy")}


def test_ranges_cover_every_float_tensor(all_ranges, clips, tiny_onnx):
    import onnx

    from export.plugin_graph import attention_internal_tensors

    mm = all_ranges["minmax"].amax
    internal = attention_internal_tensors(onnx.load(tiny_onnx[0]))
    assert len(internal) == 16 and not internal & set(mm)  # attention scores/probs: never calibrated
    assert mm["clip"] == pytest.approx(float(np.abs(clips).max()), rel=1e-6)
    for method, r in all_ranges.items():
        assert set(r.amax) == set(mm) and len(mm) > 500, method
        a = np.array(list(r.amax.values()))
        assert np.all(np.isfinite(a)) and np.all(a >= 0)
    for name in mm:
        assert all_ranges["percentile"].amax[name] <= mm[name] * (1 + 1e-6)
        assert all_ranges["entropy"].amax[name] <= mm[name] * (1 + 1e-6)
    print(f"\n{len(mm)} tensors; input amax minmax {mm['clip']:.3f}, percentile "
          f"{all_ranges['percentile'].amax['clip']:.3f}, entropy {all_ranges['entropy'].amax['clip']:.3f}")


def test_unknown_method(tiny_onnx, clips):
    with pytest.raises(ValueError, match="calibration method"):
        compute_ranges(tiny_onnx[0], clips, "mse", exclude=set())
