"""benchmarks.online_sequences on two tiny random runs (one causal, one offline): each exported as
the live runtime runs it and run over continuous videos of the 11 synthetic actions (repeats, an
idle stretch, lengths drawn per action); the plan of a video; the scoring of idle events."""

import json

import numpy as np
import pytest

from benchmarks.online_sequences import in_span, run, sequence_plan


def test_causal_and_offline_runs_through_the_live_runtime(tmp_path):
    from tests.export.helpers import make_causal_checkpoint, make_checkpoint

    runs = tmp_path / "runs"
    (runs / "tiny-causal").mkdir(parents=True)
    (runs / "tiny").mkdir()
    make_causal_checkpoint(runs / "tiny-causal" / "last.pt")
    make_checkpoint(runs / "tiny" / "last.pt")
    out = tmp_path / "seq.md"
    rows = run(["--runs", str(runs), "--archs", "tiny-causal", "tiny", "--sequences", "1", "--frames", "8", "8",
                "--repeats", "2", "--idle", "8", "8", "--online-memory", "none", "4", "auto", "--out", str(out)])
    online, tight, auto, window = rows
    assert [(r["mode"], r["memory"], r["bound"], r["tracks"]) for r in rows] == [
        ("online", None, None, 1), ("online", 4, 4, 4), ("online", "auto", 6, 2), ("clip", "auto", None, None)]  # T 4
    assert online["segments"] == window["segments"] == 13  # every synthetic action once, and 2 repeats
    # 14 x 8 = 112 frames: the online model steps every frame step (4): 28, x K tracks with a memory;
    # the window (span 16, T 4) every 4 once full: 25 scores of 4 frames
    assert [r["backbone_frames"] for r in rows] == [28, 4 * 28, 2 * 28, 100]
    assert json.loads(out.with_suffix(".json").read_text()) == rows
    text = out.read_text()
    assert ("| tiny-causal | online, unbounded (1 track) |" in text and "| tiny-causal | online, memory 4 (4 tracks) |"
            in text and "| tiny-causal | online, memory 6 (auto) (2 tracks) |" in text)
    with pytest.raises(SystemExit, match="no last.pt for \\['nope'\\]"):
        run(["--runs", str(runs), "--archs", "nope", "--out", str(tmp_path / "x.md")])
    with pytest.raises(SystemExit):  # one line, exit 2
        run(["--runs", str(runs), "--archs", "tiny", "--frames", "9", "3", "--out", str(tmp_path / "y.md")])


def test_a_plan_has_every_class_the_repeats_never_in_a_row_and_one_idle_stretch():
    classes = [f"c{i}" for i in range(11)]
    for seed in range(20):
        labels, lengths = sequence_plan(np.random.default_rng(seed), classes, (32, 96), 5, (48, 96))
        acts = [x for x in labels if x is not None]
        assert sorted(set(acts)) == sorted(classes) and len(acts) == 16
        assert labels.count(None) == 1 and labels[0] is not None and labels[-1] is not None
        assert all(a != b for a, b in zip(acts, acts[1:]))  # no action twice in a row (idle aside)
        assert all((48 if x is None else 32) <= n <= 96 for x, n in zip(labels, lengths))
    labels, _ = sequence_plan(np.random.default_rng(0), classes, (8, 8), 0, (0, 0))
    assert None not in labels and len(labels) == 11


def test_an_event_is_in_the_idle_stretch_when_half_of_it_is():
    ev = {"start_frame": 116, "end_frame": 131}  # 16 frames; lag 16 -> frames 100..115
    assert in_span(ev, 100, 108, 16)  # 8 of 16
    assert not in_span(ev, 100, 107, 16)  # 7 of 16
    assert not in_span(ev, 200, 300, 16)


def test_a_memory_below_a_runs_t_is_refused_before_any_video_is_written(tmp_path, monkeypatch):
    from benchmarks import online_sequences
    from tests.export.helpers import make_causal_checkpoint

    (tmp_path / "runs" / "c").mkdir(parents=True)
    make_causal_checkpoint(tmp_path / "runs" / "c" / "last.pt")  # T = 4
    monkeypatch.setattr(online_sequences, "write_sequences", lambda *a, **k: pytest.fail("videos written"))
    with pytest.raises(SystemExit, match="error: c: online memory must be 'auto', none or a number of sampled "
                                         "frames >= T = 4 .*got 3"):
        run(["--runs", str(tmp_path / "runs"), "--archs", "c", "--online-memory", "auto", "3",
             "--out", str(tmp_path / "x.md")])
