"""benchmarks.online_streams on its smallest run: the two sides alternate, the batched side makes one
session.run per tick over the streams, the per-stream side one per step; both files written."""

import json

import pytest

from benchmarks.online_streams import main


def test_smallest_run(tmp_path):
    out = tmp_path / "res" / "os"
    assert main(["--streams", "2", "--seconds", "1", "--offline-frames", "8", "--repeats", "2",
                 "--online-memory", "none", "--out", str(out)]) == 0
    report = json.loads(out.with_suffix(".json").read_text())
    runs = report["runs"]
    assert [(r["regime"], r["side"]) for r in runs] == [
        (regime, side) for regime in ("realtime", "offline")
        for side in ("batched", "per_stream", "per_stream", "batched")]  # ABBA
    for r in runs:
        assert r["steps"] == r["frames"] == sum(s["steps"] for s in r["streams"])  # stride 1: a step per frame
        if r["side"] == "batched":
            assert r["session_runs"] == r["ticks"] and r["runs_per_tick"] == 1.0
        else:
            assert r["session_runs"] == r["steps"]
    offline = [r for r in runs if r["regime"] == "offline"]
    assert all(r["frames"] == 16 and r["dropped"] == 0 and r["ticks"] == 8 for r in offline)  # lock-step
    assert set(report["ratios"]) == {"realtime", "offline"}
    assert report["meta"]["batched_check"] <= 1e-5
    text = out.with_suffix(".md").read_text()
    assert "Command: `python -m benchmarks.online_streams --streams 2" in text and "| 8 | offline |" in text


@pytest.mark.parametrize("memory, bound, tracks", [("16", 16, 2), ("auto", 12, 3)])  # T = 8
def test_with_an_online_memory_each_step_is_a_row_per_track(tmp_path, memory, bound, tracks):
    out = tmp_path / "m"
    assert main(["--streams", "2", "--seconds", "1", "--offline-frames", "8", "--repeats", "1",
                 "--online-memory", memory, "--out", str(out)]) == 0
    report = json.loads(out.with_suffix(".json").read_text())
    assert (report["meta"]["bound"], report["meta"]["tracks"]) == (bound, tracks)
    for r in (r for r in report["runs"] if r["regime"] == "offline"):
        if r["side"] == "batched":  # one run per tick over 2 streams x K tracks
            assert r["session_runs"] == r["ticks"] == 8
        else:  # the K tracks of one stream in one run (run_batch falls back to a run per track)
            assert r["session_runs"] == tracks * r["steps"] == tracks * 16
    assert f"online memory {memory} ({bound} sampled frames): {tracks} tracks per phase" in out.with_suffix(".md").read_text()


def test_refuses_a_memory_below_t(capsys):
    with pytest.raises(SystemExit):
        main(["--online-memory", "7", "--out", "unused"])
    assert "online memory must be 'auto', none or a number of sampled frames >= T = 8" in capsys.readouterr().err
