from __future__ import annotations

import numpy as np
import pytest

from runtime.smoothing import (EmaSmoother, EventDetector, MeanSmoother, make_smoother, softmax,
                               topk)

LABELS = ("a", "b", "c")


def p(*v: float) -> np.ndarray:
    return np.array(v, np.float32)


def test_softmax_and_topk():
    s = softmax(np.array([[1000.0, 0.0, 1000.0]]))
    np.testing.assert_allclose(s, [[0.5, 0.0, 0.5]], atol=1e-6)
    assert topk(p(0.1, 0.7, 0.2), LABELS, 2) == [("b", pytest.approx(0.7)), ("c", pytest.approx(0.2))]
    assert len(topk(p(0.1, 0.7, 0.2), LABELS, 10)) == 3


def test_mean_smoother_averages_last_n():
    m = MeanSmoother(3, n=2)
    np.testing.assert_allclose(m.update(p(1, 0, 0)), [1, 0, 0])
    np.testing.assert_allclose(m.update(p(0, 1, 0)), [0.5, 0.5, 0])
    np.testing.assert_allclose(m.update(p(0, 0, 1)), [0, 0.5, 0.5])


def test_ema_smoother():
    e = EmaSmoother(3, alpha=0.5)
    np.testing.assert_allclose(e.update(p(1, 0, 0)), [1, 0, 0])
    np.testing.assert_allclose(e.update(p(0, 1, 0)), [0.5, 0.5, 0])
    np.testing.assert_allclose(e.update(p(0, 1, 0)), [0.25, 0.75, 0])
    with pytest.raises(ValueError):
        make_smoother("median", 3)
    with pytest.raises(ValueError):
        EmaSmoother(3, alpha=0.0)


def test_events_start_over_threshold_and_end_when_top1_changes():
    det = EventDetector(LABELS, threshold=0.6)
    stream = [
        (p(0.4, 0.3, 0.3), None),  # nothing over threshold
        (p(0.7, 0.2, 0.1), None),  # a starts at frame 10
        (p(0.9, 0.05, 0.05), None),
        (p(0.2, 0.7, 0.1), "a"),  # b takes over: a ends at frame 20
        (p(0.3, 0.5, 0.2), "b"),  # b below threshold: b ends at frame 30
        (p(0.1, 0.1, 0.8), None),  # c starts at frame 50
    ]
    ended = []
    for i, (scores, ends) in enumerate(stream):
        ev = det.update(scores, frame_index=i * 10, t_s=i)
        assert (ev.label if ev else None) == ends
        if ev:
            ended.append(ev)
    a, b = ended
    assert (a.start_frame, a.end_frame, a.start_s, a.end_s) == (10, 20, 1, 2)
    assert a.score == pytest.approx(0.9)
    assert (b.start_frame, b.end_frame) == (30, 30)
    assert det.current == ("c", pytest.approx(0.8))
    last = det.flush()
    assert (last.label, last.start_frame, last.end_frame) == ("c", 50, 50)
    assert det.flush() is None
    assert set(a.to_dict()) == {"label", "score", "start_frame", "end_frame", "start_s", "end_s"}


def test_smoothing_suppresses_a_one_window_blip():
    det = EventDetector(LABELS, threshold=0.5)
    m = make_smoother("mean", 3, n=3)
    seq = [p(0.9, 0.05, 0.05)] * 5 + [p(0.05, 0.9, 0.05)] + [p(0.9, 0.05, 0.05)] * 5
    events = [e for i, s in enumerate(seq) if (e := det.update(m.update(s), i, i))]
    assert events == [] and det.flush().label == "a"
