"""benchmarks.online_streams on its smallest run: the two sides alternate, the batched side makes one
session.run per tick over the streams, the per-stream side one per step; both files written."""

import json

from benchmarks.online_streams import main


def test_smallest_run(tmp_path):
    out = tmp_path / "res" / "os"
    assert main(["--streams", "2", "--seconds", "1", "--offline-frames", "8", "--repeats", "2",
                 "--out", str(out)]) == 0
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


def test_with_an_online_memory_each_step_is_a_row_per_track(tmp_path):
    out = tmp_path / "m"
    assert main(["--streams", "2", "--seconds", "1", "--offline-frames", "8", "--repeats", "1",
                 "--online-memory", "16", "--out", str(out)]) == 0
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["meta"]["memory"] == 16
    for r in (r for r in report["runs"] if r["regime"] == "offline"):
        if r["side"] == "batched":  # one run per tick over 2 streams x 2 tracks
            assert r["session_runs"] == r["ticks"] == 8
        else:  # the two tracks of one stream in one run (run_batch falls back to a run per track)
            assert r["session_runs"] == 2 * r["steps"] == 32
    assert "online memory 16: 2 tracks per phase" in out.with_suffix(".md").read_text()
