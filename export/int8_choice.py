"""INT8 chosen by measurement: the calibration that keeps the model, on clips it was not calibrated on.

The calibration clips are split: every ``calib.clips.HOLD_OUT``-th clip (the clips are interleaved by class,
``calib.clips``) is held out, the rest calibrate. The activation histograms are collected once
(``calib.ranges.collect_histograms``) and every candidate range method of :data:`AUTO_CANDIDATES`
(entropy as TensorRT's ``IInt8EntropyCalibrator2``, percentiles, min-max, an MSE search) gives its
Q/DQ graph; each is compared with the FP32 graph on the held-out clips (onnxruntime): top-1
agreement and the logit error (max |diff| over the logit range, ``export.parity``). The best that
is within the :class:`Bound` wins (highest agreement, then the smallest logit error).

When no method is within the bound, the layers that cost the most (``calib.layer_error``: the error
each quantized layer adds over its input's, against FP32) are kept in float, 1, 2, 4, ... of them,
until the bound holds or :data:`MAX_FLOAT_FRACTION` of the layers are float. A graph that still
misses the bound is kept (the best one measured) and marked as such: the builder writes it, says so
and exits non-zero unless the loss was accepted (``--accept-int8-loss``).

What is chosen goes into the graph's card (``quantization``) and the calibration cache's key, so the
Q/DQ route and the implicit (cache) route get the same ranges and the same float layers.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import numpy as np

from calib.clips import split_clips
from calib.ranges import METHODS, PERCENTILE, Candidate, Ranges, ranges_from_amax
from runtime.common.errors import CalibrationError
from export.parity import Agreement, compare_logits, ort_session, run_onnx

log = logging.getLogger(__name__)

AUTO = "auto"
CHOICES = (AUTO, *METHODS)  # --calib-method
AUTO_CANDIDATES = (Candidate("entropy"), Candidate("percentile", 99.9), Candidate("percentile", PERCENTILE),
                   Candidate("percentile", 99.999), Candidate("minmax"), Candidate("mse"))
LEARNT = "learnt by quantization-aware fine-tuning"  # the candidate of a tsi-train --qat checkpoint
LEARNT_BASE = Candidate("percentile", PERCENTILE)  # for the tensors the fine-tuning did not quantize
MAX_FLOAT_FRACTION = 0.25  # at most this fraction of the quantized layers kept in float
DEFAULT_MIN_AGREEMENT = 0.97  # top-1 agreement with FP32 on the held-out clips
DEFAULT_MAX_LOGIT_ERROR = 0.15  # max |logit diff| / FP32 logit range on the held-out clips


@dataclass(frozen=True)
class Bound:
    min_agreement: float = DEFAULT_MIN_AGREEMENT
    max_logit_error: float = DEFAULT_MAX_LOGIT_ERROR

    def holds(self, a: Agreement) -> bool:
        return a.top1 >= self.min_agreement and a.rel <= self.max_logit_error

    def __str__(self) -> str:
        return f"top-1 agreement >= {100 * self.min_agreement:g}%, logit error <= {self.max_logit_error:g}"


def card_entry(method: str, agreement: Agreement, bound: Bound, calibrated: int, held_out: int,
               float_layers=()) -> dict:
    """A card's ``quantization`` (flat: scalars and lists of strings): how an INT8 model was made and
    how it agrees with FP32 on the held-out clips (the Q/DQ route's and ``export.cpu_int8``'s)."""
    return {"method": method, "held_out_clips": held_out, "calibration_clips": calibrated,
            "top1_agreement": round(agreement.top1, 4), "logit_error": round(agreement.rel, 4),
            "within_bound": bound.holds(agreement),
            "logit_range": round(agreement.logit_range, 4),  # FP32's, on the held-out clips
            "min_agreement": bound.min_agreement, "max_logit_error": bound.max_logit_error,
            "float_layers": list(float_layers)}


@dataclass
class Trial:
    label: str
    agreement: Agreement
    float_layers: tuple[str, ...] = ()

    def line(self, bound: Bound) -> str:
        mark = "within" if bound.holds(self.agreement) else "outside"
        extra = f" (+{len(self.float_layers)} layers in float)" if self.float_layers else ""
        return (f"{self.label}{extra}: agreement {100 * self.agreement.top1:.1f}%, logit error "
                f"{self.agreement.rel:.3f} ({mark})")


@dataclass
class Choice:
    ranges: Ranges  # of the quantized tensors only (what the Q/DQ graph reads)
    qdq: object  # the chosen Q/DQ ModelProto
    best: Trial
    trials: list[Trial]
    bound: Bound
    calibrated: int
    held_out: int
    float_reasons: list[str] = field(default_factory=list)
    histograms: object = None  # calib.ranges.Histograms of the calibration part
    candidate: Candidate | None = None
    learnt: dict[str, float] = field(default_factory=dict)  # tensor -> amax, when the learnt ranges won

    def all_ranges(self) -> Ranges:
        """The chosen method's ranges of every tensor (a TensorRT calibration cache lists them all)."""
        ranges = self.histograms.ranges(self.candidate)
        if not self.learnt:
            return ranges
        return ranges_from_amax(self.candidate, {**ranges.amax, **self.learnt}, ranges.num_clips, LEARNT)

    @property
    def within(self) -> bool:
        return self.bound.holds(self.best.agreement)

    def card_entry(self) -> dict:
        """The card's ``quantization`` (:func:`card_entry`)."""
        return card_entry(self.best.label, self.best.agreement, self.bound, self.calibrated, self.held_out,
                          self.best.float_layers)

    def notes(self) -> list[str]:
        lines = [f"INT8 choice on {self.held_out} held-out calibration clips (calibrated on the other "
                 f"{self.calibrated}; bound: {self.bound}):"]
        lines += [f"  {t.line(self.bound)}" for t in self.trials]
        verdict = "within the bound" if self.within else "OUTSIDE the bound"
        lines.append(f"  chose {self.best.label}" + (f" with {len(self.best.float_layers)} layer(s) in float"
                                                       if self.best.float_layers else "") + f": {verdict}")
        lines += [f"  kept in float: {r}" for r in self.float_reasons]
        return lines


def learnt_ranges(hist, quantized: set[str], overrides: dict[str, float]) -> Ranges:
    """The quantized tensors' ranges with ``overrides`` (learnt) over :data:`LEARNT_BASE`'s."""
    base = hist.ranges(LEARNT_BASE, only=quantized)
    return ranges_from_amax(LEARNT_BASE, {**base.amax, **overrides}, base.num_clips, LEARNT)


def candidates_for(method: str) -> tuple[Candidate, ...]:
    if method == AUTO:
        return AUTO_CANDIDATES
    return (Candidate(method),)


def _score(t: Trial, bound: Bound) -> tuple:
    return bound.holds(t.agreement), t.agreement.top1, -t.agreement.rel


def choose_int8(standard: str | os.PathLike, clips: np.ndarray, *, method: str = AUTO, bound: Bound = Bound(),
                progress: bool = True, learnt: list[dict] | None = None) -> Choice:
    """Calibrate ``standard`` (the FP32 ONNX file) on part of ``clips``, measure on the rest, choose
    (see the module's docstring). The attention stays in float (``export.variants``). The Q/DQ graph
    is made once; the candidates only change its activation scales (``calib.qdq.with_ranges``) and
    the fallback only removes the pairs in front of the float layers (``calib.qdq.keep_in_float``).
    ``learnt``: the ranges a quantization-aware fine-tuning learnt (its points, ``tsi.qat``), one
    more candidate (:data:`LEARNT`; the tensors it does not cover take the default percentile's)."""
    from calib.layer_error import layer_errors
    from calib.qdq import checked_qdq, keep_in_float, with_ranges
    from calib.ranges import collect_histograms
    from export.plugin_graph import attention_node_names
    from export.variants import int8_excluded_tensors, load_graph, qdq_graph

    calib, held = split_clips(clips)
    fp32 = load_graph(standard)
    attention = attention_node_names(fp32)
    ref = run_onnx(None, held, session=ort_session(fp32))
    hist = collect_histograms(standard, calib, exclude=int8_excluded_tensors(fp32), progress=progress)
    base = qdq_graph(standard, hist.ranges(Candidate("minmax")))
    quantized = {n.input[0] for n in base.graph.node if n.op_type == "QuantizeLinear"}
    cands = candidates_for(method)
    all_ranges = [hist.ranges(c, only=quantized, progress=progress) for c in cands]
    overrides: dict[str, float] = {}
    if learnt:
        from calib.qat_points import tensor_amax

        overrides = tensor_amax(base, learnt)
        if not overrides:
            raise CalibrationError("the checkpoint's learnt INT8 ranges (tsi-train --qat) name no layer of this graph")
        cands, all_ranges = (LEARNT_BASE, *cands), [learnt_ranges(hist, quantized, overrides), *all_ranges]

    def trial(ranges: Ranges, float_layers=()) -> tuple[Trial, object]:
        qdq = with_ranges(base, ranges)
        if float_layers:
            qdq = keep_in_float(qdq, float_layers)
        return Trial(str(ranges), compare_logits(ref, run_onnx(qdq, held)), tuple(float_layers)), qdq

    results = [(*trial(r), r, c) for r, c in zip(all_ranges, cands)]
    trials = [t for t, *_ in results]
    best, qdq, ranges, cand = max(results, key=lambda x: _score(x[0], bound))
    reasons: list[str] = []
    if not bound.holds(best.agreement):
        costly = layer_errors(fp32, qdq, held)
        limit = min(max(1, int(MAX_FLOAT_FRACTION * len(costly))), len(costly) - 1)  # never all of them
        k = 1
        while k <= limit:
            layers = tuple(e.node for e in costly[:k])
            t, q = trial(ranges, layers)
            trials.append(t)
            if _score(t, bound) > _score(best, bound):
                best, qdq = t, q
                reasons = [str(e) for e in costly[:k]]
            if bound.holds(t.agreement):
                break
            k = min(2 * k, limit) if k < limit else limit + 1
    choice = Choice(ranges, checked_qdq(qdq, [*attention, *best.float_layers], str(standard)), best, trials, bound,
                    len(calib), len(held), reasons, hist, cand, overrides if ranges.label == LEARNT else {})
    log.debug("%s", "\n".join(choice.notes()))
    return choice
