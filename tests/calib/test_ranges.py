import numpy as np
import pytest

from calib.ranges import Candidate, collect_histograms, compute_ranges, entropy_amax, mse_amax
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
        compute_ranges(tiny_onnx[0], clips, "kl", exclude=set())


def test_one_pass_gives_each_method_alone(tiny_onnx, clips, all_ranges):
    """The builder collects the histograms once for every candidate: the same ranges as one method
    at a time."""
    cands = [Candidate(m) for m in ("minmax", "percentile", "entropy")]
    hist = collect_histograms(tiny_onnx[0], clips, exclude=_internal(tiny_onnx), num_bins=256, progress=False)
    for cand, r in zip(cands, [hist.ranges(c) for c in cands]):
        assert r.amax == all_ranges[cand.method].amax, cand


def _internal(tiny_onnx):
    import onnx

    from export.plugin_graph import attention_internal_tensors

    return attention_internal_tensors(onnx.load(tiny_onnx[0]))


@pytest.mark.parametrize("percentile", [99.0, 99.99])
def test_percentile_is_onnxruntimes(percentile):
    from onnxruntime.quantization.calibrate import HistogramCollector

    x = np.random.default_rng(1).standard_t(4, (3, 5000)).astype(np.float32)
    col = HistogramCollector("percentile", symmetric=True, num_bins=512, num_quantized_bins=128,
                             percentile=percentile, scenario="same")
    for part in x:
        col.collect({"t": [part]})
    lo, hi = col.compute_collection_result()["t"][:2]
    counts, edges, mn, mx = col.histogram_dict["t"]
    ours = Candidate("percentile", percentile).amax((np.asarray(counts), np.asarray(edges, np.float64), float(mn),
                                                     float(mx)), 512, {})
    assert ours == pytest.approx(max(abs(float(lo)), abs(float(hi))), rel=1e-6)


def _quant_mse(x: np.ndarray, amax: float) -> float:
    s = amax / 127
    return float(np.mean((x - np.clip(np.round(x / s), -127, 127) * s) ** 2))


@pytest.mark.parametrize("dist", ["normal", "heavy"])
def test_mse_amax_beats_its_neighbours(dist):
    rng = np.random.default_rng(2)
    x = {"normal": rng.standard_normal(50000), "heavy": rng.standard_t(2, 50000)}[dist]
    hist, edges = np.histogram(np.abs(x), bins=2048, range=(0, np.abs(x).max()))
    a = mse_amax(hist, edges)
    assert 0 < a < np.abs(x).max()
    best = _quant_mse(x, a)
    for other in (np.abs(x).max(), 0.5 * a, 2 * a):
        if other <= np.abs(x).max():
            assert best <= _quant_mse(x, other) * 1.01, (dist, a, other)
