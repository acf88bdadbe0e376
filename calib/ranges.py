"""Activation ranges (amax per tensor) from calibration clips, run through onnxruntime.

Data collection is onnxruntime.quantization's ``PercentileCalibrater`` as ``create_calibrator``
builds it (every float tensor becomes a graph output; a histogram of |x| with each tensor's min and
max is collected batch by batch), minus the attention's (B, L, L) scores/probabilities, which stay
in float and would dominate memory. Every method reads its amax from those histograms, so one pass
over the clips serves them all (:func:`collect_histograms`, :meth:`Histograms.ranges`; the builder compares them,
``export.int8_choice``):

- ``minmax``: amax = max |x| (as ``CalibrationMethod.MinMax``, symmetric).
- ``percentile``: amax = the given percentile of |x| (99.99 by default), as
  ``CalibrationMethod.Percentile`` computes it.
- ``mse``: the amax of least mean squared quantization error over the histogram (rounding inside,
  clipping outside; pytorch-quantization's "mse").
- ``entropy``: TensorRT's entropy calibration (``IInt8EntropyCalibrator2``): the |x| histogram that
  the percentile calibrator collects, then the KL-divergence threshold search of TensorRT (GTC 2017,
  "8-bit inference with TensorRT"), as NVIDIA's pytorch-quantization implements it: candidate
  thresholds at bin edges 128..2048, reference P = the clipped histogram (outliers folded into the
  last bin), candidate Q = P merged into 128 levels and expanded over P's non-zero bins; amax = the
  edge of the smallest KL(P||Q). onnxruntime's own ``Entropy`` method is not used: it searches a
  signed two-sided histogram (not TensorRT's |x| one), and its pure-Python loop takes ~0.5 s per
  tensor at 2048 bins. :func:`entropy_amax` is vectorised and checked against a loop transcription.

:func:`compute_ranges` returns a :class:`Ranges`: ``amax`` ``{tensor: float}`` for every float tensor
but those attention internals (the TensorRT cache wants every tensor an INT8 layer touches; the
builder pins attention to FP32) and onnxruntime ``TensorsData`` for ``quantize_static``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runtime.common.errors import CalibrationError

log = logging.getLogger(__name__)

METHODS = ("entropy", "percentile", "minmax", "mse")
DEFAULT_METHOD = "percentile"  # of a single calibration (the online step graph; the builder measures, export.int8_choice)
NUM_BINS = 2048
NUM_QUANT_BINS = 128  # int8: 127 levels + 0 on the |x| side
PERCENTILE = 99.99
CHUNK = 2  # clips per collect_data call: bounds activation memory (~2 GB a clip for tsi_r50, T=8, 224²)


@dataclass
class Ranges:
    method: str
    amax: dict[str, float]
    tensors_data: object  # onnxruntime.quantization.calibrate.TensorsData
    num_clips: int
    label: str = ""  # the candidate that made them ("percentile 99.99"); the method when empty

    def __str__(self) -> str:
        return self.label or self.method


@dataclass(frozen=True)
class Candidate:
    """One way of turning a tensor's |x| histogram into amax: ``method`` (one of :data:`METHODS`)
    and, for ``percentile``, the percentile."""

    method: str
    percentile: float | None = None

    def __post_init__(self) -> None:
        ort_method(self.method)  # a ValueError naming the methods
        if self.method == "percentile" and self.percentile is None:
            object.__setattr__(self, "percentile", PERCENTILE)

    def __str__(self) -> str:
        return f"percentile {self.percentile:g}" if self.method == "percentile" else self.method

    def amax(self, hist: tuple, num_bins: int, memo: dict) -> float:
        """amax of one tensor's (|x| histogram, edges, min, max); ``memo`` caches the searches of
        repeated histograms (Reshape/Transpose outputs repeat their input's)."""
        counts, edges, lo, hi = hist
        top = max(abs(lo), abs(hi))
        if self.method == "minmax":
            return top
        if self.method == "percentile":  # as onnxruntime's PercentileCalibrater (symmetric)
            total = counts.sum()
            if total == 0:
                return top
            idx = int(np.searchsorted(np.cumsum(counts / total), self.percentile / 100.0))
            return min(float(edges[min(idx, len(edges) - 1)]), top)
        h, e = _rebin(counts, edges, num_bins)
        key = (h.tobytes(), e.tobytes())
        if key not in memo:
            memo[key] = max((entropy_amax if self.method == "entropy" else mse_amax)(h, e), 0.0)
        # the grown histogram's last edge may lie past the data: never beyond max |x|
        return min(memo[key], top)


def ort_method(method: str):
    from onnxruntime.quantization import CalibrationMethod

    try:  # onnxruntime has no MSE method: its ranges go to quantize_static as percentile ones
        return {"entropy": CalibrationMethod.Entropy, "percentile": CalibrationMethod.Percentile,
                "minmax": CalibrationMethod.MinMax, "mse": CalibrationMethod.Percentile}[method]
    except KeyError:
        raise ValueError(f"calibration method must be one of {METHODS} (got {method!r})") from None


def _rebin(hist: np.ndarray, edges: np.ndarray, num_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Merge adjacent bins by an integer factor so at most ``num_bins`` remain (onnxruntime's |x|
    histogram grows past its initial bin count when a later batch has a larger maximum)."""
    factor = int(np.ceil(len(hist) / num_bins))
    if factor <= 1:
        return hist, edges
    pad = (-len(hist)) % factor
    h = np.concatenate([hist, np.zeros(pad, hist.dtype)]).reshape(-1, factor).sum(1)
    width = edges[1] - edges[0]
    return h, edges[0] + width * factor * np.arange(len(h) + 1, dtype=np.float64)


def entropy_amax(hist: np.ndarray, edges: np.ndarray, *, num_quant_bins: int = NUM_QUANT_BINS,
                 start: int = NUM_QUANT_BINS, stride: int = 1, chunk: int = 256) -> float:
    """TensorRT-style KL threshold of a histogram of |x| (``edges[0] == 0``). Vectorised over the
    candidate thresholds (tested against a plain-loop transcription, tests/calib/entropy_reference.py)."""
    hist = np.asarray(hist, dtype=np.float64).copy()
    n = len(hist)
    if n <= num_quant_bins or hist.sum() == 0:
        return float(edges[-1])
    hist[0] = hist[1]  # as pytorch-quantization: ignore the spike of exact zeros (ReLU outputs)
    cum = np.concatenate([[0.0], np.cumsum(hist)])
    nz = (hist > 0).astype(np.float64)
    cum_nz = np.concatenate([[0.0], np.cumsum(nz)])
    total = cum[-1]
    cands = np.arange(start, n + 1, stride)
    j = np.arange(n)
    kl = np.empty(len(cands))
    for c0 in range(0, len(cands), chunk):
        ii = cands[c0:c0 + chunk][:, None]  # (m, 1) candidate bin counts
        w = int(ii[-1, 0])  # the bins past the chunk's largest candidate are outside every one of them
        jj, h = j[None, :w], hist[None, :w]
        inside = jj < ii  # (m, w)
        # level of bin j when i bins are merged into num_quant_bins: floor(j * L / i)
        level = np.minimum((jj * num_quant_bins) // ii, num_quant_bins - 1)
        bounds = -((-np.arange(num_quant_bins + 1)[None, :] * ii) // num_quant_bins)  # ceil(g*i/L)
        gsum = cum[bounds[:, 1:]] - cum[bounds[:, :-1]]
        gnz = cum_nz[bounds[:, 1:]] - cum_nz[bounds[:, :-1]]
        dens = np.divide(gsum, gnz, out=np.zeros_like(gsum), where=gnz > 0)
        q = np.where(inside & (h > 0), np.take_along_axis(dens, level, axis=1), 0.0)
        p = np.where(inside, h, 0.0)
        p[np.arange(len(ii)), ii[:, 0] - 1] += total - cum[ii[:, 0]]  # outliers into the last bin
        p /= p.sum(1, keepdims=True)
        qs = q.sum(1, keepdims=True)
        q = np.divide(q, qs, out=np.zeros_like(q), where=qs > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(p > 0, p * np.log(p / q), 0.0)
        kl[c0:c0 + chunk] = np.where(np.any((p > 0) & (q == 0), axis=1), np.inf, terms.sum(1))
    best = len(kl) - 1 - int(np.argmin(kl[::-1]))  # the last minimum, as pytorch-quantization
    return float(edges[cands[best]])


def mse_amax(hist: np.ndarray, edges: np.ndarray, *, num_levels: int = 127, start: int = NUM_QUANT_BINS,
             stride: int = 4) -> float:
    """The amax whose symmetric int8 quantization of the histogram (values at bin centres) has the
    least mean squared error: rounding inside +-amax, clipping beyond (pytorch-quantization's "mse"
    method). Candidates at every ``stride``-th bin edge from ``start``."""
    hist = np.asarray(hist, dtype=np.float64)
    n = len(hist)
    if n <= start or hist.sum() == 0:
        return float(edges[-1])
    centres = (edges[:-1] + edges[1:]) / 2
    centres[0] = 0.0  # the first bin holds the exact zeros of ReLU outputs: they quantize exactly
    cands = edges[np.arange(start, n + 1, stride)]
    best, best_err = float(edges[-1]), np.inf
    for c0 in range(0, len(cands), 64):
        amax = cands[c0:c0 + 64, None]
        step = amax / num_levels
        q = np.clip(np.round(centres[None, :] / step), 0, num_levels) * step
        err = ((centres[None, :] - q) ** 2 * hist[None, :]).sum(1)
        k = int(np.argmin(err))
        if err[k] < best_err:
            best, best_err = float(amax[k, 0]), float(err[k])
    return best


class _ClipReader:
    """onnxruntime CalibrationDataReader over a slice of the clips, ``batch`` clips per run."""

    def __init__(self, input_name: str, clips: np.ndarray, batch: int):
        self.input_name, self.clips, self.batch, self.pos = input_name, clips, batch, 0

    def get_next(self):
        if self.pos >= len(self.clips):
            return None
        x = self.clips[self.pos:self.pos + self.batch]
        self.pos += self.batch
        return {self.input_name: np.ascontiguousarray(x, dtype=np.float32)}

    def __len__(self) -> int:
        return -(-len(self.clips) // self.batch)


class _FeedReader:
    """onnxruntime CalibrationDataReader over ready input dicts (graphs with several inputs)."""

    def __init__(self, feeds):
        self.feeds, self.pos = feeds, 0

    def get_next(self):
        if self.pos >= len(self.feeds):
            return None
        self.pos += 1
        return self.feeds[self.pos - 1]

    def __len__(self) -> int:
        return len(self.feeds)


@contextlib.contextmanager
def _quiet_stdout():
    """onnxruntime's histogram calibrators print() progress; send it to the debug log instead."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        yield
    if buf.getvalue().strip():
        log.debug("onnxruntime calibrator: %s", buf.getvalue().strip().replace("\n", " | "))


def constant_tensors(proto) -> set[str]:
    """Tensors that do not depend on the graph's inputs: initializers, Constant/ConstantOfShape
    outputs and everything computed from those alone. They are weights or shapes, not activations:
    no range, no calibration-cache entry (TensorRT folds them)."""
    const = {i.name for i in proto.graph.initializer}
    for n in proto.graph.node:  # nodes are in topological order
        if n.op_type in ("Constant", "ConstantOfShape") or (n.input and all(not i or i in const for i in n.input)):
            const.update(o for o in n.output if o)
    return const


def _calibrator(model: Path, augmented: Path, *, num_bins: int, exclude: set[str]):
    """onnxruntime's Percentile calibrator (|x| histograms with each tensor's min and max), as
    ``create_calibrator`` builds it, minus the ``exclude`` tensors (ORT selects tensors by op type
    only; the attention's (B, L, L) tensors would dominate the memory of every batch). Every method
    reads its amax from these histograms (:class:`Candidate`)."""
    from onnxruntime.quantization.calibrate import PercentileCalibrater

    class Calibrater(PercentileCalibrater):
        def select_tensors_to_calibrate(self, model_proto):
            tensors, value_infos = super().select_tensors_to_calibrate(model_proto)
            return tensors - exclude, value_infos

    cal = Calibrater(model, [], augmented_model_path=str(augmented), symmetric=True, num_bins=num_bins)
    cal.augment_graph()
    cal.execution_providers = ["CPUExecutionProvider"]
    cal.create_inference_session()
    return cal


def compute_ranges(model: str | os.PathLike, clips: np.ndarray | None, method: str, *,
                   exclude: set[str], percentile: float = PERCENTILE,
                   num_bins: int | None = None, progress: bool = True, feeds: list[dict] | None = None) -> Ranges:
    """amax of every float tensor of the ONNX file ``model`` over ``clips`` (N, T, 3, S, S), except
    ``exclude`` (the attention's scores and probabilities, which stay in float: the caller finds them,
    ``export.plugin_graph.attention_internal_tensors``).
    ``num_bins`` defaults to :data:`NUM_BINS` (2048, TensorRT's histogram size).
    ``feeds``: instead of clips, ready ``{input name: array}`` dicts, one run each (a graph with
    several inputs, e.g. the online step graph: frame + state); ``clips`` is then ignored."""
    cand = Candidate(method, percentile if method == "percentile" else None)
    return collect_histograms(model, clips, exclude=exclude, num_bins=num_bins, progress=progress,
                              feeds=feeds).ranges(cand, progress=progress)


@dataclass
class Histograms:
    """The |x| histogram, min and max of every calibrated tensor, collected once
    (:func:`collect_histograms`); :meth:`ranges` turns them into any candidate's ranges."""

    hists: dict[str, tuple]  # name -> (counts, edges, min, max)
    num_bins: int
    n_runs: int

    def ranges(self, candidate: Candidate, *, only=None, progress: bool = False) -> Ranges:
        """``candidate``'s ranges of every tensor (of the tensors ``only``, when given)."""
        from runtime.common.progress import progress_bar

        memo: dict = {}
        items = [(k, v) for k, v in self.hists.items() if only is None or k in only]
        amax = {name: candidate.amax(hist, self.num_bins, memo)
                for name, hist in progress_bar(items, desc=f"{candidate} thresholds", unit="tensor",
                                               enabled=progress and candidate.method in ("entropy", "mse"),
                                               leave=False)}
        log.info("ranges (%s) of %d tensors from %d runs", candidate, len(amax), self.n_runs)
        return ranges_from_amax(candidate, amax, self.n_runs)


def collect_histograms(model: str | os.PathLike, clips: np.ndarray | None, *, exclude: set[str],
                       num_bins: int | None = None, progress: bool = True,
                       feeds: list[dict] | None = None) -> Histograms:
    """One pass of onnxruntime's |x| histogram collector over ``clips`` (or ``feeds``), every float
    tensor but ``exclude`` and the graph's constants (:func:`constant_tensors`)."""
    if feeds is not None:
        if len(feeds) == 0:
            raise CalibrationError("no calibration feeds")
        readers = [_FeedReader(feeds[s:s + CHUNK]) for s in range(0, len(feeds), CHUNK)]
        return _collect(model, exclude, num_bins, progress, len(feeds), readers, total=len(readers))
    import onnx

    if clips is None or len(clips) == 0:
        raise CalibrationError("no calibration clips")
    proto = onnx.load(str(model))
    inp = proto.graph.input[0]
    dim0 = inp.type.tensor_type.shape.dim[0]
    batch = 1 if dim0.HasField("dim_value") else min(CHUNK, len(clips))
    if dim0.HasField("dim_value") and dim0.dim_value != 1:
        batch = dim0.dim_value
        if len(clips) % batch:
            raise CalibrationError(f"the model's static batch {batch} does not divide {len(clips)} clips")
    step = max(batch, CHUNK - CHUNK % batch)
    readers = (_ClipReader(inp.name, clips[s:s + step], batch) for s in range(0, len(clips), step))
    return _collect(model, exclude, num_bins, progress, len(clips), readers, total=-(-len(clips) // step))


def _collect(model, exclude, num_bins: int | None, progress: bool, n_runs: int, readers, total: int) -> Histograms:
    import onnx
    from runtime.common.progress import progress_bar

    num_bins = num_bins or NUM_BINS
    exclude = set(exclude) | constant_tensors(onnx.load(str(model)))
    with tempfile.TemporaryDirectory(prefix="tsi_calib_") as tmp, _quiet_stdout():
        calibrator = _calibrator(Path(model), Path(tmp) / "aug.onnx", num_bins=num_bins, exclude=exclude)
        for reader in progress_bar(readers, total=total, desc="calibrating", unit="chunk", enabled=progress,
                                   leave=False):
            calibrator.collect_data(reader)
        hists = {name: (np.asarray(h[0]), np.asarray(h[1], dtype=np.float64), float(h[2]), float(h[3]))
                 for name, h in calibrator.collector.get_histogram_dict().items()}
        del calibrator
    return Histograms(hists, num_bins, n_runs)


def ranges_from_amax(candidate: "Candidate", amax: dict[str, float], n_runs: int, label: str = "") -> Ranges:
    """A :class:`Ranges` (symmetric, +-amax) for onnxruntime's ``quantize_static`` too; ``label``
    names them (the candidate's name when empty)."""
    from onnxruntime.quantization.calibrate import TensorData, TensorsData

    data = TensorsData(ort_method(candidate.method),
                       {k: TensorData(lowest=np.array(-v, np.float32), highest=np.array(v, np.float32))
                        for k, v in amax.items()})
    return Ranges(candidate.method, amax, data, n_runs, label=label or str(candidate))
